"""`newsqa mcp`: the index as an MCP server over stdio, for an MCP client to start (app/ui/mcp_server.py)."""

from __future__ import annotations

import argparse
import sys

from app.cli.common import add_llm, engine_from


def add_mcp(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "mcp",
        help="serve the index to an MCP client over stdio (Claude Desktop, VS Code, Cursor...)",
        description="Speak MCP on stdin and stdout until the client closes them: tools search_news, ask, "
        "list_articles and get_article, and each article as the resource newsqa://article/ID. The client "
        "starts this command itself; see the README for its configuration. Over HTTP, `newsqa chat` "
        "serves the same at /mcp, behind its login.",
    )
    parser.add_argument(
        "--allow-writes",
        action="store_true",
        help="add the add_articles tool (fetch URLs, index pasted text), under the page's URL rules "
        "(no private addresses unless NEWSQA_ALLOW_PRIVATE_URLS)",
    )
    add_llm(parser)
    parser.set_defaults(run=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    from app.ui.mcp_server import build_server

    engine = engine_from(args)
    print("newsqa mcp: loading the index and the model", file=sys.stderr)
    engine.warm_up()  # before the client's first call, so that it is answered as fast as the next
    print(f"newsqa mcp: serving {engine.settings.index} on stdio", file=sys.stderr)
    build_server(engine, allow_writes=args.allow_writes).run("stdio")
    return 0
