"""Serving the chat page: who may sign in, how fast they may guess, the upload limit, and the model
loaded before the page opens, so that the first question is answered as fast as the next."""

from __future__ import annotations

import errno
import hmac
import ipaddress
import math
import os
import socket
import sys
import threading
import time
import webbrowser
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

    from app.engine import Engine

# A client (one IP address) that has tried this many logins without success within the window is
# refused for the lockout, right password or not. Module constants so that tests can shorten them.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 60.0
LOGIN_LOCKOUT_SECONDS = 300.0


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """USER:PASS as Gradio's (user, password); ValueError with a one-line reason when malformed."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must be USER:PASS, both non-empty")
    return user, password


def read_auth_file(path: Path) -> tuple[str, str]:
    """The one USER:PASS line of `path`. A file other users may read or change is refused, as ssh
    refuses such a key: the password would be theirs too."""
    try:
        mode = path.stat().st_mode
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as error:
        raise ValueError(f"cannot read the auth file {path}: {error.strerror or error}") from None
    if os.name == "posix" and mode & 0o077:
        raise ValueError(f"the auth file {path} is open to other users (mode {mode & 0o777:o}); "
                         f"run: chmod 600 {path}")
    if len(lines) != 1:
        raise ValueError(f"the auth file {path} must hold one USER:PASS line")
    try:
        return parse_auth(lines[0])
    except ValueError as error:
        raise ValueError(f"the auth file {path}: {error}") from None


def is_loopback(host: str) -> bool:
    """Whether `host` is served to this machine only (a name other than localhost counts as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_login(host: str, auth: str | None = None, auth_file: Path | None = None, configured: str | None = None,
                 no_auth: bool = False) -> tuple[str, str] | None:
    """The login the page asks for: --auth, else --auth-file, else NEWSQA_AUTH (`configured`);
    none with --no-auth. ValueError rather than an open page on an address others can reach."""
    if no_auth:
        return None
    credentials = read_auth_file(auth_file) if auth_file else parse_auth(auth or configured)
    if credentials is None and not is_loopback(host):
        raise ValueError(f"--host {host} would serve the page to the network without a login: give --auth-file "
                         "FILE or NEWSQA_AUTH, or --no-auth to serve it open on purpose")
    return credentials


def login_check(credentials: tuple[str, str]) -> Callable[[str, str], bool]:
    """Gradio's auth function: both parts compared in constant time, and both always compared, so
    the time taken tells nothing about how much of a guess was right."""
    user, password = (part.encode() for part in credentials)

    def check(given_user: str, given_password: str) -> bool:
        return hmac.compare_digest(given_user.encode(), user) & hmac.compare_digest(given_password.encode(), password)

    return check


@dataclass
class _Client:
    attempts: deque[float] = field(default_factory=deque)  # logins tried and not succeeded, oldest first
    locked_until: float = 0.0

    def forgotten(self, now: float) -> bool:
        """Neither locked out nor with an attempt in the window: nothing left to remember."""
        return self.locked_until <= now and not (self.attempts and self.attempts[-1] > now - LOGIN_WINDOW_SECONDS)


class LoginThrottle:
    """ASGI middleware in front of Gradio's POST /login (its auth function is not told who is
    asking): a client with LOGIN_ATTEMPTS logins in the window and none succeeded gets 429 for
    LOGIN_LOCKOUT_SECONDS. An attempt counts from when it starts, so parallel guesses count too.
    Clients are told apart by address: behind a reverse proxy they share the proxy's."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.clients: dict[str, _Client] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/login":
            return await self.app(scope, receive, send)
        host = scope["client"][0] if scope.get("client") else ""
        wait = self.admit(host)
        if wait:
            from fastapi.responses import JSONResponse

            seconds = math.ceil(wait)
            refusal = JSONResponse({"detail": f"Too many failed logins: try again in {seconds} s."},
                                   status_code=429, headers={"Retry-After": str(seconds)})
            return await refusal(scope, receive, send)
        status = 0

        async def send_watched(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_watched)
        if status == 200:
            with self.lock:
                self.clients.pop(host, None)

    def locked_for(self, host: str) -> float:
        """The seconds `host` is still locked out for (0: not locked)."""
        with self.lock:
            client = self.clients.get(host)
            return max(0.0, client.locked_until - time.monotonic()) if client else 0.0

    def admit(self, host: str) -> float:
        """Count an attempt from `host`; the seconds it must wait instead (0: go ahead)."""
        now = time.monotonic()
        with self.lock:
            for forgotten in [h for h, c in self.clients.items() if c.forgotten(now)]:
                del self.clients[forgotten]
            client = self.clients.setdefault(host, _Client())
            if client.locked_until > now:
                return client.locked_until - now
            while client.attempts and client.attempts[0] <= now - LOGIN_WINDOW_SECONDS:
                client.attempts.popleft()
            if len(client.attempts) >= LOGIN_ATTEMPTS:
                client.attempts.clear()
                client.locked_until = now + LOGIN_LOCKOUT_SECONDS
                return LOGIN_LOCKOUT_SECONDS
            client.attempts.append(now)
            return 0.0


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


def launch(blocks: gr.Blocks, host: str, port: int, credentials: tuple[str, str] | None,
           max_file_bytes: int, css: str | None = None, theme: gr.Theme | None = None) -> str:
    """Start serving `blocks` in the background, behind the login and its throttle; the page's URL."""
    from starlette.middleware import Middleware

    login = {"auth": login_check(credentials), "auth_message": "newsqa: sign in",
             "app_kwargs": {"middleware": [Middleware(LoginThrottle)]}} if credentials else {}
    blocks.queue(default_concurrency_limit=2)
    _, url, _ = blocks.launch(server_name=host, server_port=port, max_file_size=max_file_bytes, show_error=False,
                              quiet=True, footer_links=["api"], css=css, theme=theme, prevent_thread_lock=True,
                              **login)
    return url


def serve(engine: Engine, host: str, port: int, credentials: tuple[str, str] | None) -> None:
    """Serve the page, the API beside it and the followed feeds' refresh until interrupted."""
    started = time.perf_counter()
    check_free(host, port)
    from app.feeds import BackgroundRefresh
    from app.ui.api import add_api_routes
    from app.ui.article_route import add_article_route
    from app.ui.page import CSS, THEME, build_page  # Gradio loads only once the address is known to be free

    warm_up(engine)
    blocks = build_page(engine)
    url = launch(blocks, host, port, credentials, int(engine.settings.max_file_mb * 1e6), css=CSS, theme=THEME)
    add_article_route(blocks.server_app, engine)
    add_api_routes(blocks.server_app, engine, credentials)
    BackgroundRefresh(engine, refuse_private=not engine.settings.allow_private_urls).start()
    print(f"newsqa chat: OpenAI-compatible API at {url}v1 (models newsqa, newsqa-extractive)", flush=True)
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
