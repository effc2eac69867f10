"""The README's settings table is the one `app.settings_table` makes from the fields of Settings."""

from __future__ import annotations

import re

from app.settings import Settings
from app.settings_table import settings_table
from conftest import ROOT

BLOCK = re.compile(
    r"<!-- settings table: made by `python -m app.settings_table` -->\n(.*?)\n<!-- end of settings table -->", re.DOTALL
)


def test_the_readme_table_is_made_from_the_settings():
    block = BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block, "README.md has lost the settings table's markers"
    assert block.group(1) == settings_table(), "README.md's settings table is stale: run python -m app.settings_table"


def test_every_setting_has_a_row_with_its_variable_and_description():
    rows = settings_table().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for row, (name, field) in zip(rows, Settings.model_fields.items()):
        assert row.startswith(f"| `{name}` | `NEWSQA_{name.upper()}` | ") and field.description in row
    assert (
        "| `ingest_processes` | `NEWSQA_INGEST_PROCESSES` | one a core, at most 8 |"
        in rows[list(Settings.model_fields).index("ingest_processes")]
    )
