"""Serving the chat page: login, upload limit, and the model loaded before the page opens, so the
first question is answered as fast as the next."""

from __future__ import annotations

import errno
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.engine import Engine


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """USER:PASS as Gradio's (user, password); ValueError with a one-line reason when malformed."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must be USER:PASS, both non-empty")
    return user, password


def warm_up(engine: Engine) -> None:
    """Open the index, bring the lexical index up to date, load the embedding model and choose the
    answer backend (for `auto`, a probe of the local Ollama server)."""
    engine.index.lexical()
    engine.embedder.encode(["warm up"])
    engine.backend  # noqa: B018 (a cached property: chosen now, not on the first question)


def check_free(host: str, port: int) -> None:
    """Fail now, not after loading the model, when the address cannot be bound."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "the port is in use (choose another with --port)" if error.errno == errno.EADDRINUSE \
                else error.strerror or str(error)
            raise OSError(error.errno, reason) from None


def serve(engine: Engine, host: str, port: int, credentials: tuple[str, str] | None) -> None:
    """Serve the page until interrupted."""
    started = time.perf_counter()
    check_free(host, port)
    from app.ui.page import CSS, build_page  # Gradio loads only once the address is known to be free

    warm_up(engine)
    blocks = build_page(engine)
    blocks.queue(default_concurrency_limit=2)
    _, url, _ = blocks.launch(
        server_name=host, server_port=port, auth=credentials, auth_message="newsqa: sign in",
        max_file_size=int(engine.settings.max_file_mb * 1e6), show_error=False, quiet=True,
        footer_links=["api"], css=CSS, prevent_thread_lock=True,
    )
    print(f"newsqa chat: {url} (ready in {time.perf_counter() - started:.1f} s; Ctrl+C to stop)", flush=True)
    blocks.block_thread()
