"""The chat page's login: where it comes from (--auth, --auth-file, NEWSQA_AUTH), when it is
required (any address but loopback), how it is checked (constant time), and the throttle in front of
it that locks out a client guessing passwords. The page and the API beside it share all of it.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
        raise ValueError(f"the auth file {path} is open to other users (mode {mode & 0o777:o}); run: chmod 600 {path}")
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


def choose_login(
    host: str,
    auth: str | None = None,
    auth_file: Path | None = None,
    configured: str | None = None,
    no_auth: bool = False,
) -> tuple[str, str] | None:
    """The login the page asks for: --auth, else --auth-file, else NEWSQA_AUTH (`configured`);
    none with --no-auth. ValueError rather than an open page on an address others can reach."""
    if no_auth:
        return None
    credentials = read_auth_file(auth_file) if auth_file else parse_auth(auth or configured)
    if credentials is None and not is_loopback(host):
        raise ValueError(
            f"--host {host} would serve the page to the network without a login: give --auth-file "
            "FILE or NEWSQA_AUTH, or --no-auth to serve it open on purpose"
        )
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
            refusal = JSONResponse(
                {"detail": f"Too many failed logins: try again in {seconds} s."},
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )
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
