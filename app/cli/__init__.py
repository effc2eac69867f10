"""The `newsqa` command: the global options, then the commands, each module keeping a command's
options beside its handler:

- app/cli/library.py: ingest, list, remove, check
- app/cli/feeds.py: follow, unfollow, feeds, refresh
- app/cli/asking.py: ask, chat
- app/cli/evaluation.py: eval, bench
- app/cli/mcp.py: mcp
- app/cli/common.py: what they share (settings and engine from the global options, `--llm`, `--json`)
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from app.cli import asking, evaluation, feeds, library, mcp
from app.documents import printable

EPILOG = """Settings come from NEWSQA_* environment variables (NEWSQA_INDEX, NEWSQA_EMBEDDING_MODEL,
NEWSQA_LLM, ...) and an optional TOML config file (NEWSQA_CONFIG, else ~/.config/newsqa/config.toml);
the options above override both."""

# Each adds one command's parser; in the order `newsqa --help` lists them.
COMMANDS = (
    library.add_ingest,
    library.add_list,
    library.add_remove,
    library.add_check,
    feeds.add_follow,
    feeds.add_unfollow,
    feeds.add_feeds,
    feeds.add_refresh,
    evaluation.add_eval,
    asking.add_ask,
    evaluation.add_bench,
    asking.add_chat,
    mcp.add_mcp,
)


def _version() -> str:
    """The installed distribution's version (pyproject.toml's, once installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsqa")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsqa", description="Ask questions of a folder of news articles; cited answers, offline.", epilog=EPILOG
    )
    parser.add_argument("--version", action="version", version=f"newsqa {_version()}")
    parser.add_argument("--index", help="index folder (NEWSQA_INDEX)")
    parser.add_argument("--embedding-model", help="sentence-transformers model name or path (NEWSQA_EMBEDDING_MODEL)")
    parser.add_argument("--chroma-url", help="use a Chroma server at http://HOST:PORT (NEWSQA_CHROMA_URL)")
    parser.add_argument("--collection", help="Chroma collection name (NEWSQA_COLLECTION)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        print(f"newsqa: bad setting: {printable(problems)}", file=sys.stderr)
    except RuntimeError as error:
        print(f"newsqa: {printable(str(error))}", file=sys.stderr)
    return 2
