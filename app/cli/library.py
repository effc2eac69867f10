"""The commands that change or read the library of articles: `newsqa ingest`, `list`, `remove` and
`check`, each parser beside its handler."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.common import BUSY, add_json, add_no_wait, engine_from
from app.documents import printable


def add_ingest(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ingest",
        help="add or update articles: files, folders, URLs, RSS/Atom feeds",
        description="Index articles. Files: .txt (headline line, then text), .md (YAML front matter), "
        ".html, .json, .jsonl, .xml/.rss/.atom feeds. Folders are read recursively. "
        "Unchanged articles are skipped; changed ones replace their old version.",
    )
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="file, folder, http(s) URL or feed")
    add_json(parser, "print the report as JSON")
    add_no_wait(parser)
    parser.set_defaults(run=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    from app.index import IndexBusy

    engine = engine_from(args)
    try:
        report = engine.add(args.sources, progress=False if args.json else None, wait=not args.no_wait)
    except KeyboardInterrupt:
        print("interrupted: what was written is whole; run the same command again to finish", file=sys.stderr)
        return 130
    except IndexBusy as error:
        print(f"newsqa: {error}", file=sys.stderr)
        return BUSY
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def add_list(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="list the indexed articles")
    add_json(parser, "print a JSON list")
    parser.set_defaults(run=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    articles = engine_from(args).articles()
    if args.json:
        print(json.dumps([a.as_dict() for a in articles], indent=2))
        return 0
    if not articles:
        print("no articles indexed; add some with: newsqa ingest PATH_OR_URL")
        return 0
    # Columns under a header; an undated article's date is left blank; the title, last, runs on.
    rows = [("ID", "DATE", "CHUNKS", "SOURCE", "TITLE")]
    rows += [
        (a.id, a.published.isoformat() if a.published else "", str(a.chunks), a.source or a.file, a.title)
        for a in articles
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].ljust(widths[3]),
            row[4],
        ]
        print(printable("  ".join(cells).rstrip()))
    return 0


def add_remove(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("remove", help="remove articles by id, file name, path or URL")
    parser.add_argument("keys", nargs="+", metavar="ID_OR_FILE")
    add_no_wait(parser)
    parser.set_defaults(run=cmd_remove)


def cmd_remove(args: argparse.Namespace) -> int:
    from app.index import IndexBusy

    engine = engine_from(args)
    missing = 0
    for key in args.keys:
        try:
            removed = engine.remove(key, wait=not args.no_wait)
        except IndexBusy as error:
            print(f"newsqa: {error}", file=sys.stderr)
            return BUSY
        if not removed:
            print(f"not found: {printable(key)} (see `newsqa list` for ids and files)", file=sys.stderr)
            missing += 1
        for article in removed:
            print(f"removed {article.id}  {printable(article.title)}")
    return 1 if missing else 0


def add_check(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check",
        help="find chunks stored without their vector; exit code 1 if any",
        description="Read every chunk's vector. A chunk without one is left out of "
        "the embedding search; the next ingest of its article's source "
        "writes the article again.",
    )
    parser.set_defaults(run=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Count the chunks stored without their vector: invisible to `list` and BM25, never found by the
    embedding search, and (their article incomplete) written again by the next ingest of their source."""
    index = engine_from(args).index
    vectorless = index.chunks_without_vector()
    articles = {c.metadata["article_id"]: c.metadata for c in vectorless}
    print(f"{index.count()} chunks, {len(vectorless)} without a vector, in {len(articles)} articles")
    for article_id, metadata in articles.items():
        print(printable(f"  {article_id}  {metadata['title']}  [{metadata.get('origin') or metadata.get('file')}]"))
    if articles:
        print("ingest these articles' sources again to repair them")
    return 1 if articles else 0
