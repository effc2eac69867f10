"""The login's throttle on a real page and API served on 127.0.0.1 (any 127.x is this machine, so each
test's clients are told apart by the address they connect from): a forwarded address is believed
only from a named proxy, the page and the API count together, a request without a login counts for
nothing, and the right client keeps working beside others on its address that send wrong or missing
keys. The back-off's arithmetic is checked on the Login itself, with a clock of the test's own."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from app.engine import Engine
from app.ui import auth, server
from app.ui.api import add_api_routes
from tests.conftest import free_port

USER, PASSWORD = LOGIN = ("ann", "s3cret")
KEY = f"Bearer {USER}:{PASSWORD}"


def serve(engine: Engine, trusted_proxies: str | None = None) -> Iterator[str]:
    """The page behind LOGIN with the API beside it, as `newsqa chat` serves them; its URL."""
    import gradio as gr

    with gr.Blocks() as blocks:
        gr.Markdown("behind the login")
    login = auth.Login(LOGIN)
    url = server.launch(blocks, "127.0.0.1", free_port(), login, 1000, trusted_proxies=trusted_proxies)
    add_api_routes(blocks.server_app, engine, login)
    yield url
    blocks.close()


@pytest.fixture
def url(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(auth, "LOGIN_BACKOFF_SECONDS", 60.0)  # a wait that lasts the test
    yield from serve(engine)


@pytest.fixture
def proxied_url(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(auth, "LOGIN_BACKOFF_SECONDS", 60.0)
    yield from serve(engine, trusted_proxies="127.0.0.1")


class Client:
    """One client of the page and the API, connecting from `address`."""

    def __init__(self, url: str, address: str):
        self.url = url
        self.http = httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)

    def page(self, password: str, user: str = USER, headers: dict | None = None) -> int:
        """POST the page's login form, as Gradio's page does; the status."""
        return self.http.post(
            f"{self.url}login", data={"username": user, "password": password}, headers=headers
        ).status_code

    def answer(self, authorization: str | None, headers: dict | None = None) -> httpx.Response:
        """GET /v1/models with this Authorization header (None: none)."""
        given = {"Authorization": authorization} if authorization is not None else {}
        return self.http.get(f"{self.url}v1/models", headers={**given, **(headers or {})})

    def api(self, authorization: str | None, headers: dict | None = None) -> int:
        return self.answer(authorization, headers).status_code


def guesses(n: int, prefix: str = "guess") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("door", ["page", "api"])
def test_a_rotating_x_forwarded_for_is_refused_as_soon_as_a_fixed_address(url: str, door: str):
    def attempt(client: Client, password: str, forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        if door == "page":
            return client.page(password, headers=headers)
        return client.api(f"Bearer {USER}:{password}", headers=headers)

    wrong = 400 if door == "page" else 401
    expected = [wrong] * auth.LOGIN_ATTEMPTS + [429]
    fixed, rotating = Client(url, "127.0.0.2"), Client(url, "127.0.0.3")
    attempts = guesses(auth.LOGIN_ATTEMPTS + 1)
    assert [attempt(fixed, p, "10.9.9.9") for p in attempts] == expected
    assert [attempt(rotating, p, f"10.0.0.{i}") for i, p in enumerate(attempts)] == expected
    # The address it claimed is not the one held: its right password from elsewhere still works.
    assert Client(url, "127.0.0.4").page(PASSWORD, headers={"X-Forwarded-For": "10.9.9.9"}) == 200


@pytest.mark.slow
def test_a_named_proxy_is_believed(proxied_url: str):
    """Behind a proxy on 127.0.0.1 the clients it names are apart; a client beside it is not."""
    proxy = Client(proxied_url, "127.0.0.1")
    attempts = guesses(auth.LOGIN_ATTEMPTS + 1)
    assert [proxy.page(p, headers={"X-Forwarded-For": f"10.0.0.{i}"}) for i, p in enumerate(attempts)] == [400] * 6
    beside = Client(proxied_url, "127.0.0.5")  # not the proxy: what it forwards is not believed
    statuses = [beside.page(p, headers={"X-Forwarded-For": f"10.0.1.{i}"}) for i, p in enumerate(attempts)]
    assert statuses == [400] * auth.LOGIN_ATTEMPTS + [429]


@pytest.mark.slow
def test_the_page_and_the_api_count_together(url: str):
    client = Client(url, "127.0.0.2")
    on_page = guesses(3, "page")
    on_api = guesses(auth.LOGIN_ATTEMPTS - 3, "api")
    assert [client.page(p) for p in on_page] == [400] * 3
    assert [client.api(f"Bearer {USER}:{p}") for p in on_api] == [401] * (auth.LOGIN_ATTEMPTS - 3)
    assert client.api(f"Bearer {USER}:one-more") == 429
    assert client.page("one-more") == 429


@pytest.mark.slow
def test_a_request_without_a_login_is_a_401_and_counts_for_nothing(url: str):
    client = Client(url, "127.0.0.2")
    missing = [None, "", "Bearer", "Bearer sk-placeholder", f"Bearer {USER}:", "Bearer :x", "Basic !!", "Token x"]
    for _ in range(3):
        for authorization in missing:
            response = client.answer(authorization)
            assert response.status_code == 401, authorization
            assert response.json()["error"]["message"].startswith("sign in: send the page's login as the API key")
    assert client.page("") == 422  # FastAPI's answer to an empty form field, from Gradio's route
    assert client.api(KEY) == 200
    # The allowance is whole: none of the above was a guess.
    assert [client.api(f"Bearer {USER}:{p}") for p in guesses(auth.LOGIN_ATTEMPTS + 1)] == [401] * 5 + [429]


@pytest.mark.slow
def test_the_right_client_keeps_answering_beside_wrong_and_missing_keys(url: str):
    """Open WebUI with its key empty or stale, a script with another user's name: all on the right
    client's address, and none of them holds it up."""
    right, other = Client(url, "127.0.0.2"), Client(url, "127.0.0.2")
    stale, missing, names = [], [], []
    for n in range(3 * auth.LOGIN_ATTEMPTS):
        stale.append(other.api(f"Bearer {USER}:stale-key"))
        missing.append(other.api(None))
        names.append(other.api(f"Bearer bob:guess-{n}"))
        assert right.api(KEY) == 200, n
        assert right.page(PASSWORD) == 200, n
    assert stale == [401] * len(stale)  # a wrong key sent again is not another guess
    assert missing == [401] * len(missing)
    assert names == [401] * auth.LOGIN_ATTEMPTS + [429] * (len(names) - auth.LOGIN_ATTEMPTS)  # guessing names waits
    assert other.api(f"Bearer {USER}:stale-key") == 401


@pytest.mark.slow
def test_guessing_the_right_name_holds_its_address_only(url: str):
    """The one case that holds the right password up: someone on its address guessing its password
    (checking it then would tell the guesser which guess is right). Elsewhere it works."""
    guesser = Client(url, "127.0.0.2")
    assert [guesser.api(f"Bearer {USER}:{p}") for p in guesses(auth.LOGIN_ATTEMPTS)] == [401] * 5
    assert guesser.api(KEY) == 429
    assert guesser.page(PASSWORD) == 429
    assert Client(url, "127.0.0.3").api(KEY) == 200


@pytest.mark.slow
def test_a_login_form_the_throttle_cannot_read_goes_no_further(url: str):
    """Gradio's route never sees a password that the throttle did not: a form it cannot parse, or
    one too large, is refused in front of it."""
    client = Client(url, "127.0.0.2")
    broken = client.http.post(
        f"{url}login",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nann\r\n--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400 and broken.json() == {"detail": "The login form cannot be read."}
    padded = {"username": USER, "password": PASSWORD, "padding": "x" * auth.LOGIN_BODY_BYTES}
    too_large = client.http.post(f"{url}login", data=padded)
    assert too_large.status_code == 413 and too_large.json() == {"detail": "The login form is too large."}
    multipart = client.http.post(f"{url}login", data={"username": USER, "password": PASSWORD}, files={"x": b""})
    assert multipart.status_code == 200  # a multipart form, as a browser's FormData sends it, is read too


# -- the back-off, on the Login itself


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(auth.time, "monotonic", clock)
    return clock


def test_each_guess_past_the_allowance_doubles_the_wait(clock: Clock):
    login = auth.Login(LOGIN)
    assert [login.check("10.0.0.1", USER, p).status for p in guesses(auth.LOGIN_ATTEMPTS)] == [401] * 5
    waits = []
    for n in range(14):
        refused = login.check("10.0.0.1", USER, f"next-{n}")
        assert refused.status == 429
        waits.append(refused.retry_after)
        clock.now += refused.retry_after
        assert login.check("10.0.0.1", USER, f"next-{n}").status == 401  # checked, and wrong
    backoff = auth.LOGIN_BACKOFF_SECONDS
    assert waits == [min(backoff * 2**n, auth.LOGIN_MAX_WAIT_SECONDS) for n in range(14)]
    assert login.check("10.0.0.1", USER, PASSWORD).status == 429  # the right one waits too
    clock.now += auth.LOGIN_MAX_WAIT_SECONDS
    assert login.check("10.0.0.1", USER, PASSWORD).ok


def test_months_of_guessing_keep_the_longest_wait(clock: Clock):
    login = auth.Login(LOGIN)
    for n in range(1200):  # about 24 a day: some fifty days
        verdict = login.check("10.0.0.1", USER, f"guess-{n}")
        assert verdict.status == 401, n
        clock.now += auth.LOGIN_MAX_WAIT_SECONDS
    assert login.check("10.0.0.1", USER, "one more").status == 401
    assert login.check("10.0.0.1", USER, PASSWORD).retry_after == auth.LOGIN_MAX_WAIT_SECONDS


def test_a_record_is_forgotten_after_a_quiet_day(clock: Clock):
    login = auth.Login(LOGIN)
    for p in guesses(auth.LOGIN_ATTEMPTS):
        login.check("10.0.0.1", USER, p)
    clock.now += auth.LOGIN_FORGET_SECONDS - 1
    assert login.check("10.0.0.1", USER, "another").status == 401  # still remembered: the next must wait
    assert login.check("10.0.0.1", USER, "one more").status == 429
    clock.now += auth.LOGIN_FORGET_SECONDS
    assert [login.check("10.0.0.1", USER, p).status for p in guesses(auth.LOGIN_ATTEMPTS, "new")] == [401] * 5


def test_an_ipv6_host_counts_as_its_64_and_a_mapped_ipv4_address_as_itself(clock: Clock):
    login = auth.Login(LOGIN)
    for n, p in enumerate(guesses(auth.LOGIN_ATTEMPTS)):
        assert login.check(f"2001:db8:1:2::{n + 1}", USER, p).status == 401
    assert login.check("2001:db8:1:2:ffff::9", USER, PASSWORD).status == 429
    assert login.check("2001:db8:1:3::1", USER, PASSWORD).ok
    for p in guesses(auth.LOGIN_ATTEMPTS):
        login.check("::ffff:10.0.0.7", USER, p)
    assert login.check("10.0.0.7", USER, PASSWORD).status == 429


def test_the_authorization_header_gives_the_login_or_nothing():
    basic = "Basic " + base64.b64encode(b"ann:s3 cret:x").decode()
    assert auth.given_login(basic) == ("ann", "s3 cret:x")
    assert auth.given_login("bearer ann:s3cret") == ("ann", "s3cret")
    for header in ["", "Bearer", "Bearer ann", "Bearer ann:", "Bearer :pw", "Basic ann:pw", "Digest ann:pw"]:
        assert auth.given_login(header) is None, header
