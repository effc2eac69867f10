"""Serving the chat page: behind its login (app/ui/auth.py), with the upload limit, and the model
loaded before the page opens, so that the first question is answered as fast as the next."""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
import webbrowser
from typing import TYPE_CHECKING

from app.ui.auth import Login, LoginThrottle, close_gradio_routes, forwarded_allow_ips

if TYPE_CHECKING:
    import gradio as gr

    from app.engine import Engine


def check_free(host: str, port: int) -> None:
    """Fail now, not after loading the model, when the address cannot be bound."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = (
                "the port is in use (choose another with --port)"
                if error.errno == errno.EADDRINUSE
                else error.strerror or str(error)
            )
            raise OSError(error.errno, reason) from None


def launch(
    blocks: gr.Blocks,
    host: str,
    port: int,
    login: Login | None,
    max_file_bytes: int,
    css: str | None = None,
    theme: gr.Theme | None = None,
    trusted_proxies: str | None = None,
    lifespan=None,
) -> str:
    """Start serving `blocks` in the background, behind `login` and its throttle, believing
    X-Forwarded-For from `trusted_proxies` only, running `lifespan` (an async context manager
    factory, given the app) while it serves; the page's URL."""
    from starlette.middleware import Middleware

    app_kwargs = {"lifespan": lifespan} if lifespan else {}
    gradio_login = (
        {
            "auth": login.matches,
            "auth_message": "newsqa: sign in",
            "app_kwargs": {**app_kwargs, "middleware": [Middleware(LoginThrottle, login=login)]},
        }
        if login
        else {"app_kwargs": app_kwargs}
    )
    forwarded_allow_ips(trusted_proxies or "")
    blocks.queue(default_concurrency_limit=2)
    _, url, _ = blocks.launch(
        server_name=host,
        server_port=port,
        max_file_size=max_file_bytes,
        show_error=False,
        quiet=True,
        footer_links=["api"],
        css=css,
        theme=theme,
        prevent_thread_lock=True,
        enable_monitoring=False,  # its dashboard's key would be printed to the log for any signed-in visitor
        **gradio_login,
    )
    if login:
        close_gradio_routes(blocks.server_app)
    return url


def serve(engine: Engine, host: str, port: int, credentials: tuple[str, str] | None) -> None:
    """Serve the page, the API beside it and the followed feeds' refresh until interrupted."""
    started = time.perf_counter()
    check_free(host, port)
    from app.feeds import BackgroundRefresh
    from app.ui.api import add_api_routes
    from app.ui.article_route import add_article_route
    from app.ui.mcp_server import HttpDoor
    from app.ui.page import CSS, THEME, build_page  # Gradio loads only once the address is known to be free

    engine.warm_up()
    blocks = build_page(engine)
    login = Login(credentials) if credentials else None
    settings = engine.settings
    mcp = HttpDoor(engine, login, host)
    url = launch(
        blocks,
        host,
        port,
        login,
        int(settings.max_file_mb * 1e6),
        css=CSS,
        theme=THEME,
        trusted_proxies=settings.trusted_proxies,
        lifespan=mcp.sessions,
    )
    add_article_route(blocks.server_app, engine)
    add_api_routes(blocks.server_app, engine, login)
    mcp.add_route(blocks.server_app)
    BackgroundRefresh(engine, refuse_private=not engine.settings.allow_private_urls).start()
    print(f"newsqa chat: OpenAI-compatible API at {url}v1 (models newsqa, newsqa-extractive)", flush=True)
    print(f"newsqa chat: MCP at {url}mcp", flush=True)
    # The address last and alone on its line, where it is easy to find and to copy.
    print(f"newsqa chat: ready in {time.perf_counter() - started:.1f} s (Ctrl+C to stop); open:\n{url}", flush=True)
    if wants_browser():
        webbrowser.open(url)
    blocks.block_thread()


def wants_browser() -> bool:
    """Whether to open the page in a browser: when there is a display to show it on, unless
    NEWSQA_OPEN_BROWSER=0."""
    if os.environ.get("NEWSQA_OPEN_BROWSER", "1").strip() == "0":
        return False
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
