"""What the commands share: the settings and engine the global options describe, and the options
more than one command takes (`--llm`, `--json`, `--no-wait`) with their argument types."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from app.settings import Settings

# sysexits' EX_TEMPFAIL: `--no-wait` found another process writing to the index; try again later.
BUSY = 75


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        "index": args.index,
        "embedding_model": args.embedding_model,
        "chroma_url": args.chroma_url,
        "collection": args.collection,
        "llm": getattr(args, "llm", None),
    }
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def engine_from(args: argparse.Namespace):
    from app.engine import Engine  # heavy imports wait until a command needs them

    return Engine(settings_from(args))


def add_llm(parser: argparse.ArgumentParser, more: str = "") -> None:
    """`--llm BACKEND`, the answer backend for this command (NEWSQA_LLM); `more` adds to its help."""
    parser.add_argument(
        "--llm",
        metavar="BACKEND",
        help="answer backend: auto, extractive, ollama:MODEL, openai:MODEL, llamacpp:PATH.gguf (NEWSQA_LLM)" + more,
    )


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json`, always a flag: `what` the command prints (or writes, with `--out`) as JSON."""
    parser.add_argument("--json", action="store_true", help=what)


def add_no_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="when another ingest or remove is writing to "
        f"the index, fail at once (exit code {BUSY}) instead of waiting for it",
    )


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_json_out(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json` and the `--out FILE` it writes to (stdout without it), for the commands whose JSON is a
    file worth keeping."""
    add_json(parser, what)
    parser.add_argument("--out", metavar="FILE", type=Path, help="with --json: write the JSON to FILE, not stdout")


def out_has_json(args: argparse.Namespace, command: str) -> bool:
    """Whether `--out FILE` came with the `--json` it is for; says so on stderr when not."""
    if args.out is not None and not args.json:
        print(
            f"newsqa: {command}: --out FILE is where --json writes: add --json (the Markdown report is --report)",
            file=sys.stderr,
        )
        return False
    return True
