"""The chat page's login: where it comes from (--auth, --auth-file, NEWSQA_AUTH), when it is
required (any address but loopback), how it is checked (constant time), and the throttle that makes
guessing it slow. The page, the API and any other door of the server share one `Login`, so a guesser
gets one allowance, not one a door.

The throttle keeps a record per (address, user), where the user is the login's own name or "any
other name" (a guesser who does not know the name shares one record on its address):

- A request without a login (no key, an empty one, one without USER:PASS) is a 401 and counts for
  nothing: it guesses nothing. Open WebUI's model fetches with its key still empty lock no one out.
- A wrong password counts once: sent again (a client left with a stale key retries it) it is a 401
  at once, neither checked nor counted, since it tells its sender nothing new. Only distinct wrong
  passwords are guesses.
- The LOGIN_ATTEMPTS-th distinct wrong password makes the record wait LOGIN_BACKOFF_SECONDS, and
  each after it twice as long as the one before, up to LOGIN_MAX_WAIT_SECONDS. While it waits, every
  password but a known-wrong one is answered 429 without being checked, the right one too: checking
  it would tell a guesser, at any rate, which of its guesses is right. A record is forgotten after
  LOGIN_FORGET_SECONDS without a wrong password.
- A correct login does not clear the record: on a shared address the right user's client signs in
  with every request, and a guesser beside it would get a fresh allowance each time.

So the right user keeps working beside clients with no key, a stale key or another name, and is
held up only while someone on the same address guesses the right name's password. With the constants
below a guesser gets about 40 passwords checked the first day and 24 a day after, on each address
(IPv6: each /64, which one host may hold whole).

Addresses are the connection's own. Gradio serves through uvicorn, which believes X-Forwarded-For
from the addresses in its FORWARDED_ALLOW_IPS, 127.0.0.1 and ::1 by default: any local client could
choose the address the throttle sees. `forwarded_allow_ips` sets it from NEWSQA_TRUSTED_PROXIES,
empty (no proxy believed) unless a reverse proxy is named.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Module constants so that tests can shorten them.
LOGIN_ATTEMPTS = 5  # distinct wrong passwords an (address, user) may send before it must wait
LOGIN_BACKOFF_SECONDS = 2.0  # the first wait; each further wrong password doubles it
LOGIN_MAX_WAIT_SECONDS = 3600.0
LOGIN_FORGET_SECONDS = 86400.0  # longer than the longest wait, so that waiting it out gains nothing
REMEMBERED_WRONG = 16  # wrong passwords of an (address, user) known, so that a retry is not a guess
REMEMBERED_CLIENTS = 100_000  # (address, user) records kept at most, the least recent dropped
LOGIN_BODY_BYTES = 64_000  # the page's login form is a few hundred bytes


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
        return hmac.compare_digest(_utf8(given_user), user) & hmac.compare_digest(_utf8(given_password), password)

    return check


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate is a wrong password, not an error


def given_login(authorization: str) -> tuple[str, str] | None:
    """(user, password) from an Authorization header, `Bearer USER:PASS` or `Basic base64(USER:PASS)`;
    None when absent, malformed, or either part is empty."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    user, _, password = value.strip().partition(":")
    return (user, password) if user and password else None


def client_key(host: str) -> str:
    """Who a connection from `host` counts as: its address; an IPv6 address's /64, which one host
    may hold whole (an IPv4 address mapped into IPv6 as itself)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def forwarded_allow_ips(trusted_proxies: str) -> None:
    """Let uvicorn believe X-Forwarded-For from `trusted_proxies` (comma-separated addresses or
    networks) alone: it reads FORWARDED_ALLOW_IPS when Gradio starts it, and an empty value trusts
    no one."""
    os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxies


@dataclass(frozen=True)
class Verdict:
    """What a door answers a request: 200 signed in, 401 no login or a wrong one, 429 wait."""

    status: int
    reason: str = ""
    retry_after: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 200


SIGNED_IN = Verdict(200)
NO_LOGIN = Verdict(401, "sign in: send the page's login as the API key (Bearer USER:PASS) or by basic auth")
WRONG_LOGIN = Verdict(401, "wrong login: send the page's USER:PASS as the API key (Bearer) or by basic auth")


@dataclass
class _Record:
    """The wrong passwords one (address, user) sent: how many distinct, the latest few (as keyed
    digests), when the last came and until when the next must wait."""

    wrong: int = 0
    known: deque[bytes] = field(default_factory=lambda: deque(maxlen=REMEMBERED_WRONG))
    last: float = 0.0
    wait_until: float = 0.0


class Login:
    """The server's one login and its throttle (see the module's docstring), for every door: the
    page's POST /login, the API, and whatever else needs the login."""

    def __init__(self, credentials: tuple[str, str]):
        self.user = credentials[0]
        self.matches = login_check(credentials)
        self._digest_key = secrets.token_bytes(32)  # wrong passwords are kept only as digests
        self._lock = threading.Lock()
        self._records: OrderedDict[tuple[str, bool], _Record] = OrderedDict()

    def authorise(self, authorization: str, host: str) -> Verdict:
        """The verdict on a request with this Authorization header from the address `host`."""
        given = given_login(authorization)
        return self.check(host, *given) if given else NO_LOGIN

    def check(self, host: str, user: str, password: str) -> Verdict:
        """The verdict on `user` signing in with `password` from `host`; counted at once, so that
        guesses sent in parallel count too."""
        if not user or not password:
            return NO_LOGIN
        own_name = hmac.compare_digest(_utf8(user), _utf8(self.user))
        key = (client_key(host), own_name)
        digest = hmac.new(self._digest_key, _utf8(password), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            self._forget(now)
            record = self._records.get(key)
            if record and digest in record.known:
                return WRONG_LOGIN  # a retry tells nothing new: neither checked nor counted
            if record and record.wait_until > now:
                seconds = math.ceil(record.wait_until - now)
                return Verdict(429, f"too many wrong logins: try again in {seconds} s", seconds)
            if self.matches(user, password):
                return SIGNED_IN
            record = self._records.pop(key, None) or _Record()
            self._records[key] = record  # the most recent last
            record.wrong += 1
            record.known.append(digest)
            record.last = now
            if record.wrong >= LOGIN_ATTEMPTS:
                doublings = min(record.wrong - LOGIN_ATTEMPTS, 64)  # past the cap long before; no float overflow
                wait = LOGIN_BACKOFF_SECONDS * 2**doublings
                record.wait_until = now + min(wait, LOGIN_MAX_WAIT_SECONDS)
            return WRONG_LOGIN

    def _forget(self, now: float) -> None:
        """Drop the records quiet for LOGIN_FORGET_SECONDS, and the least recent beyond
        REMEMBERED_CLIENTS (the oldest come first)."""
        while self._records:
            key, oldest = next(iter(self._records.items()))
            if oldest.last > now - LOGIN_FORGET_SECONDS and len(self._records) <= REMEMBERED_CLIENTS:
                break
            del self._records[key]


def close_gradio_routes(app) -> None:
    """Put Gradio's POST /gradio_api/cancel and /reset, which it serves without its login, behind it:
    the same endpoints with Gradio's own login check, placed ahead of Gradio's routes, which are
    matched in order. (Cancelling needs a session's random hash; /reset does nothing: closed all the
    same, so that nothing on the page answers a stranger.)"""
    from fastapi import Depends
    from gradio.route_utils import API_PREFIX

    from app.ui.article_route import _endpoint

    login_check = _endpoint(app.router.routes, f"{API_PREFIX}/login_check")
    for path in (f"{API_PREFIX}/cancel", f"{API_PREFIX}/reset", f"{API_PREFIX}/reset/"):
        endpoint = _endpoint(app.router.routes, path)
        app.add_api_route(
            path, endpoint, methods=["POST"], dependencies=[Depends(login_check)], include_in_schema=False
        )
        app.router.routes.insert(0, app.router.routes.pop())


class LoginThrottle:
    """ASGI middleware in front of Gradio's POST /login, whose auth function is not told who is
    asking: it reads the form as Gradio will, answers 429 when `login` says wait, and otherwise lets
    Gradio answer (which checks the same login again). A form it cannot read is refused here, so that
    no password reaches Gradio's check without passing the throttle."""

    def __init__(self, app, login: Login):
        self.app = app
        self.login = login

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/login":
            return await self.app(scope, receive, send)
        from fastapi.responses import JSONResponse
        from starlette.exceptions import HTTPException
        from starlette.formparsers import MultiPartException
        from starlette.requests import Request

        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > LOGIN_BODY_BYTES:
                return await JSONResponse({"detail": "The login form is too large."}, 413)(scope, receive, send)
            if not message.get("more_body"):
                break
        unread = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replay():
            """The body once more, then what the connection says (a disconnect)."""
            return unread.pop() if unread else await receive()

        try:
            form = await Request(scope, replay).form()
        except (HTTPException, MultiPartException):
            return await JSONResponse({"detail": "The login form cannot be read."}, 400)(scope, receive, send)
        user, password = form.get("username"), form.get("password")
        await form.close()
        unread.append({"type": "http.request", "body": bytes(body), "more_body": False})
        if isinstance(user, str) and isinstance(password, str):
            # Gradio strips the name as well, so both judge the same login.
            verdict = self.login.check(scope["client"][0] if scope.get("client") else "", user.strip(), password)
            if verdict.status == 429:
                refusal = JSONResponse(
                    {"detail": f"Too many wrong logins: try again in {verdict.retry_after} s."},
                    status_code=429,
                    headers={"Retry-After": str(verdict.retry_after)},
                )
                return await refusal(scope, receive, send)
        await self.app(scope, replay, send)
