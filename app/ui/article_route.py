"""The page's route to an indexed article's stored text, for sources that have no web page of their
own (local files, uploads, pasted text): a citation link opens it in a new tab.

Only what the index holds is served, looked up by article id: the route never reads a path from the
request, so it cannot reach other files on the server's disk. It sits behind the page's own login.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.retrieval import merge_text

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.engine import Engine
    from app.index import StoredChunk

PATH = "/article/{article_id}"


def article_text(chunks: Sequence[StoredChunk]) -> str:
    """An article, from all its chunks (`Index.article_chunks`), as plain text: title, date and
    source, then its text as indexed."""
    meta = chunks[0].metadata
    about = " · ".join(part for part in (meta.get("published"), meta.get("source") or meta.get("file")) if part)
    return f"{meta['title']}\n{about}\n\n{merge_text(chunks)[0].strip()}\n"


def _endpoint(routes, path: str):
    """The function of the route at `path`, looked for in included routers too (FastAPI keeps an
    included router whole, its routes under it)."""
    for route in routes:
        if getattr(route, "path", None) == path and hasattr(route, "endpoint"):
            return route.endpoint
        included = getattr(route, "original_router", None)
        found = _endpoint(included.routes, path) if included is not None else None
        if found is not None:
            return found
    return None


def add_article_route(app: FastAPI, engine: Engine) -> None:
    """Serve GET /article/ID on the page's app, behind the same login check as Gradio's own routes."""
    from fastapi import Depends, HTTPException
    from fastapi.responses import PlainTextResponse
    from gradio.route_utils import API_PREFIX

    login_check = _endpoint(app.router.routes, f"{API_PREFIX}/login_check")

    def article(article_id: str) -> PlainTextResponse:
        chunks = engine.index.article_chunks(article_id)
        if not chunks:
            raise HTTPException(status_code=404, detail="no indexed article has this id")
        text = article_text(chunks)
        # Plain text, never sniffed as HTML: the article's words cannot become markup or script.
        return PlainTextResponse(
            text, headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"}
        )

    if login_check is None:  # serving the text without the login would be worse than not serving it
        raise RuntimeError("cannot find the chat page's login check to put the article route behind")
    app.add_api_route(PATH, article, methods=["GET"], dependencies=[Depends(login_check)], include_in_schema=False)
