"""newsqa as an MCP server, for Claude Desktop, VS Code, Cursor and any other MCP client: over stdio
(`newsqa mcp`) and over streamable HTTP at /mcp on the chat server, behind the page's login.

Tools: `search_news` (passages), `ask` (a cited Answer, as `newsqa ask --json` gives it),
`list_articles` and `get_article`; with `allow_writes`, `add_articles` too, behind the writer lock
and the page's URL rules. Each article is also a resource, `newsqa://article/{id}`.

Every argument is bounded and every result capped: a client is a program that may send anything. A
failure comes back as the tool's error, one line, never a traceback.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from app.documents import Filters, shortened
from app.index import stored_article
from app.ui import library
from app.ui.api import HISTORY_TURNS, MAX_QUESTION_CHARS
from app.ui.article_route import article_text

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.engine import Engine
    from app.ui.auth import Login

PATH = "/mcp"  # on the chat server

ARTICLE_URI = "newsqa://article/{article_id}"
MAX_PASSAGES = 20
MAX_PAGE = 200  # articles a list_articles call gives at most
MAX_ARTICLE_CHARS = 100_000  # of get_article's text; the rest is cut, and said to be
MAX_PASSAGE_CHARS = 4_000
MAX_ADDED = 20  # URLs and texts an add_articles call takes
MAX_SOURCE_CHARS = 200

Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]
Source = Annotated[str | None, Field(max_length=MAX_SOURCE_CHARS, description="only articles of this source")]
Since = Annotated[date | None, Field(description="only articles published on or after this day")]
Until = Annotated[date | None, Field(description="only articles published on or before this day")]
ArticleId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class PastedArticle(BaseModel):
    title: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1)


def _link(article_id: str, url: str) -> str:
    """Where a reader finds the article: its web page, else its resource."""
    return url or ARTICLE_URI.format(article_id=article_id)


def _filters(since: date | None, until: date | None, source: str | None) -> Filters:
    if since and until and since > until:
        raise ToolError(f"since ({since}) is after until ({until})")
    return Filters(source=source or None, since=since, until=until)


class _Server(MCPServer):
    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        """As MCPServer's, with arguments that fail validation refused in one line (the SDK gives
        pydantic's report, several lines and a link)."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            if not isinstance(error.__cause__, ValidationError):
                raise
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.__cause__.errors())
            raise ToolError(f"bad arguments to {name}: {problems}") from None


def build_server(engine: Engine, allow_writes: bool = False) -> MCPServer:
    """The MCP server over `engine`'s index; `allow_writes` adds the `add_articles` tool."""
    # MCPServer sets up the root logger when built (logging.basicConfig, INFO, to stderr), which would
    # print every library's debug lines in the chat server too: a handler already there stops it.
    root, placeholder = logging.getLogger(), logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server = _Server(
            "newsqa",
            instructions="Questions about the indexed news articles: `ask` gives a cited answer, or says the "
            "articles do not hold one; `search_news` gives the passages themselves.",
        )
    finally:
        root.removeHandler(placeholder)

    @server.tool(annotations=READ_ONLY)
    def search_news(
        query: Question,
        since: Since = None,
        until: Until = None,
        source: Source = None,
        k: Annotated[int, Field(ge=1, le=MAX_PASSAGES)] = 5,
    ) -> list[dict[str, Any]]:
        """The k passages of the indexed articles that best match `query`, best first, each with its
        article's title, date, source and link."""
        passages = engine.retrieve(query, filters=_filters(since, until, source), k=k)
        return [
            {**p.where_from(), "link": _link(p.article_id, p.url), "text": shortened(p.text, MAX_PASSAGE_CHARS)}
            for p in passages
        ]

    @server.tool(annotations=READ_ONLY)
    def ask(
        question: Question,
        as_of: Annotated[date | None, Field(description="answer as of this day (default today)")] = None,
        history: Annotated[
            list[tuple[str, str]],
            Field(max_length=HISTORY_TURNS, description="earlier (question, answer) turns, oldest first"),
        ] = [],  # noqa: B006 (the SDK copies defaults into the schema; nothing mutates it)
    ) -> dict[str, Any]:
        """A short answer from the indexed articles with numbered citations, or `refused` when they do
        not hold one; `sentences` says for each sentence whether a cited passage supports it."""
        try:
            return engine.ask(question, history, as_of).as_dict()
        except ValueError as error:  # e.g. a question of spaces
            raise ToolError(str(error)) from None

    @server.tool(annotations=READ_ONLY)
    def list_articles(
        source: Source = None,
        since: Since = None,
        until: Until = None,
        offset: Annotated[int, Field(ge=0)] = 0,
        limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50,
    ) -> dict[str, Any]:
        """The indexed articles, newest first, a page at a time: `next_offset` is null on the last."""
        _filters(since, until, source)
        chosen = [
            a
            for a in engine.articles()
            if (source is None or a.source == source)
            and (since is None or (a.published and a.published >= since))
            and (until is None or (a.published and a.published <= until))
        ]
        page = chosen[offset : offset + limit]
        following = offset + len(page)
        return {
            "total": len(chosen),
            "articles": [{**a.as_dict(), "link": _link(a.id, a.url)} for a in page],
            "next_offset": following if following < len(chosen) else None,
        }

    @server.tool(annotations=READ_ONLY)
    def get_article(article_id: ArticleId) -> dict[str, Any]:
        """One indexed article: its metadata and its text as indexed (cut past 100,000 characters)."""
        chunks = engine.index.article_chunks(article_id)
        if not chunks:
            raise ToolError(f"no indexed article has the id {article_id}")
        found, text = stored_article(chunks[0].metadata), article_text(chunks)
        return {
            **found.as_dict(),
            "link": _link(article_id, found.url),
            "text": shortened(text, MAX_ARTICLE_CHARS),
            "truncated": len(text) > MAX_ARTICLE_CHARS,
        }

    @server.resource(ARTICLE_URI, mime_type="text/plain")
    def article(article_id: str) -> str:
        """An indexed article as plain text: title, date and source, then its text."""
        chunks = engine.index.article_chunks(article_id)
        if not chunks:
            raise ResourceNotFoundError(f"no indexed article has the id {article_id}")
        return article_text(chunks)

    if allow_writes:

        @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
        def add_articles(
            urls: Annotated[
                list[str], Field(max_length=MAX_ADDED, description="http(s) URLs of articles or feeds")
            ] = [],  # noqa: B006
            texts: Annotated[list[PastedArticle], Field(max_length=MAX_ADDED)] = [],  # noqa: B006
        ) -> dict[str, Any]:
            """Fetch and index articles from URLs, or index pasted texts; what became of each."""
            good, others = library.split_urls(" ".join(urls))
            if others:
                raise ToolError(f"not a http(s) URL: {others[0]}")
            try:
                paths = [library.store_pasted(t.title, t.text, engine.settings) for t in texts]
            except ValueError as error:
                raise ToolError(str(error)) from None
            if not good and not paths:
                raise ToolError("give at least one URL or text")
            with library.url_guard(engine.settings):
                report = engine.add([*good, *paths], progress=False)
            return report.as_dict()

    return server


class HttpDoor:
    """MCP over streamable HTTP at PATH on the chat server, behind its `login` (the page's USER:PASS
    as a bearer token or by basic auth, throttled with the page's and the API's logins).

    Built before the server starts, whose lifespan must run `sessions` (the SDK's session manager
    keeps its tasks there); `add_route` then serves PATH."""

    def __init__(self, engine: Engine, login: Login | None, host: str, allow_writes: bool = False):
        self.login = login
        server = build_server(engine, allow_writes)
        # The SDK guards a loopback server against DNS rebinding by the Host header; elsewhere the login does.
        server.streamable_http_app(streamable_http_path=PATH, host=host)
        self.manager = server.session_manager

    def sessions(self, app) -> AbstractAsyncContextManager[None]:
        """The lifespan the server must run: the session manager's tasks."""
        return self.manager.run()

    async def __call__(self, scope, receive, send) -> None:
        from fastapi.responses import JSONResponse

        if self.login is not None:
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            verdict = self.login.authorise(authorization, scope["client"][0] if scope.get("client") else "")
            if not verdict.ok:
                headers = (
                    {"Retry-After": str(verdict.retry_after)}
                    if verdict.status == 429
                    else {"WWW-Authenticate": 'Basic realm="newsqa"'}
                )
                refusal = JSONResponse({"error": verdict.reason}, status_code=verdict.status, headers=headers)
                return await refusal(scope, receive, send)
        await self.manager.handle_request(scope, receive, send)

    def add_route(self, app: FastAPI) -> None:
        from starlette.routing import Route

        app.router.routes.append(Route(PATH, endpoint=self, methods=["GET", "POST", "DELETE"]))
