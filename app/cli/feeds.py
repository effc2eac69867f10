"""The feed commands: `newsqa follow`, `unfollow`, `feeds` and `refresh`, each parser beside its handler."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.common import add_json, engine_from
from app.documents import printable


def _duration(text: str) -> int:
    from app.feeds import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_follow(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "follow",
        help="follow an RSS/Atom feed: refreshed by `newsqa refresh` and while `newsqa chat` runs",
        description="Follow a feed. A refresh asks for it with a conditional GET and fetches only the pages of "
        "entries not indexed yet (or changed). Following a followed feed again changes its options.",
    )
    parser.add_argument("url", metavar="URL", help="the feed's http(s) URL")
    parser.add_argument(
        "--every",
        type=_duration,
        default="30m",
        metavar="DURATION",
        help="how often `newsqa chat` refreshes it (e.g. 15m, 2h, 1d; default 30m)",
    )
    parser.add_argument(
        "--keep",
        type=_duration,
        metavar="DURATION",
        help="drop the feed's articles published longer ago than this (e.g. 90d); default: keep all",
    )
    parser.set_defaults(run=cmd_follow)


def cmd_follow(args: argparse.Namespace) -> int:
    from app.feeds import FeedStore, format_duration

    try:
        feed = FeedStore(engine_from(args).settings).follow(args.url, args.every, args.keep)
    except ValueError as error:
        print(f"newsqa: {error}", file=sys.stderr)
        return 2
    kept = f", dropping articles older than {format_duration(feed.keep)}" if feed.keep else ""
    print(
        f"following {feed.url} (refreshed every {format_duration(feed.every)}{kept}); "
        "`newsqa refresh` fetches it now, `newsqa chat` on its schedule"
    )
    return 0


def add_unfollow(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("unfollow", help="stop following a feed (its articles stay)")
    parser.add_argument("url", metavar="URL")
    parser.set_defaults(run=cmd_unfollow)


def cmd_unfollow(args: argparse.Namespace) -> int:
    from app.feeds import FeedStore

    if not FeedStore(engine_from(args).settings).unfollow(args.url):
        print(f"not followed: {args.url} (see `newsqa feeds`)", file=sys.stderr)
        return 1
    print(f"unfollowed {args.url}; its articles stay indexed (`newsqa remove` deletes them)")
    return 0


def add_feeds(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("feeds", help="list the followed feeds: last refresh, entries seen, last error")
    add_json(parser, "print a JSON list")
    parser.set_defaults(run=cmd_feeds)


def cmd_feeds(args: argparse.Namespace) -> int:
    from app.feeds import FeedStore

    feeds = [f.as_dict() for f in FeedStore(engine_from(args).settings).load()]
    if args.json:
        print(json.dumps(feeds, indent=2))
        return 0
    if not feeds:
        print("no feeds followed; follow one with: newsqa follow URL")
    for f in feeds:
        kept = f", keep {f['keep']}" if f["keep"] else ""
        print(
            f"{printable(f['name'])}  [{printable(f['url'])}]\n  every {f['every']}{kept}; last refresh {f['last_refresh'] or 'never'}; "
            f"{f['entries_seen']} entries seen, {f['articles']} articles"
            + (f"\n  last error: {printable(f['last_error'])}" if f["last_error"] else "")
        )
    return 0


def add_refresh(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("refresh", help="refresh every followed feed once; exit code 1 if any failed")
    add_json(parser, "print each feed's result as JSON")
    parser.set_defaults(run=cmd_refresh)


def cmd_refresh(args: argparse.Namespace) -> int:
    from app.feeds import refresh_all

    results = refresh_all(engine_from(args))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    elif not results:
        print("no feeds followed; follow one with: newsqa follow URL")
    for result in results if not args.json else ():
        print(printable(result.line(), "\n"), file=sys.stderr if result.failed else sys.stdout)
    return 1 if any(r.failed for r in results) else 0
