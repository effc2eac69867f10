"""`python -m app.cli`: the `newsqa` command."""

import sys

from app.cli import main

sys.exit(main())
