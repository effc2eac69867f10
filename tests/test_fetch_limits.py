"""Fetching safely: one deadline per URL and per feed, bounded redirects, the private-address guard of
the chat page, and folders that cannot be read. Real HTTP servers on 127.0.0.1, started by the tests."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.settings import Settings
from app.ui import library
from ingest import sources
from ingest.sources import FEED_TIMEOUTS, Failure, Limits, Loader, expand

STORY = (Path(__file__).resolve().parent / "fixtures" / "articles" / "library_page.html").read_bytes()
STORY_TITLE = "City library reopens after two-year renovation"
HANGING_LINKS = 8
GUARDED = Limits(max_bytes=10**6, timeout=5, refuse_private=True)


class Misbehaving(BaseHTTPRequestHandler):
    """A story, and the ways a server can hold or mislead a fetcher."""

    release = threading.Event()  # set when the tests are done: hanging handlers let go
    elsewhere = ""  # base URL that /elsewhere redirects to

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        if self.path == "/story.html":
            self._send(200, "text/html", STORY)
        elif self.path == "/drip":  # a byte a second: each read is quick, the page never ends
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                while not self.release.wait(1):
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:  # the fetcher gave up
                pass
        elif self.path.startswith("/hang"):  # connected, never answers
            self.release.wait(30)
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/elsewhere":
            self._redirect(f"{self.elsewhere}/story.html")
        elif self.path == "/feed.rss":
            base = f"http://{self.headers['Host']}"
            links = [f"{base}/story.html"] + [f"{base}/hang/{n}" for n in range(HANGING_LINKS)]
            self._send(200, "application/rss+xml", feed_of(links))
        elif self.path == "/feed-of-feeds.rss":
            self._send(200, "application/rss+xml", feed_of([f"http://{self.headers['Host']}/feed-of-feeds.rss"]))
        else:
            self._send(404, "text/html", b"<h1>Not found</h1>")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # keep the test output clean
        pass


def feed_of(links: list[str]) -> bytes:
    """An RSS feed with an entry linking to each of `links`."""
    items = "".join(f"<item><title>Entry {n}</title><link>{link}</link></item>" for n, link in enumerate(links))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Desk</title>'
        f"<link>http://desk.example/</link><description>News</description>{items}</channel></rss>"
    ).encode()


def serve(handler: type[BaseHTTPRequestHandler], address: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, str]:
    """`handler`'s server on `address`, serving in a thread, and its base URL."""
    server = ThreadingHTTPServer((address, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{address}:{server.server_address[1]}"


@pytest.fixture(scope="module")
def site():
    Misbehaving.release.clear()
    server, base = serve(Misbehaving)
    yield base
    Misbehaving.release.set()
    server.shutdown()
    server.server_close()


def load(url: str, limits: Limits) -> list:
    with Loader(limits) as loader:
        return loader.load(url)


def failure(url: str, limits: Limits) -> str:
    [result] = load(url, limits)
    assert isinstance(result, Failure), f"{url} was accepted: {result}"
    assert result.source == url and "\n" not in result.reason
    return result.reason


# -- one deadline per URL


@pytest.mark.parametrize("path", ["/drip", "/hang"])
def test_a_slow_or_silent_server_fails_within_the_deadline(site, path):
    timeout = 2
    started = time.monotonic()
    reason = failure(site + path, Limits(max_bytes=10**6, timeout=timeout))
    elapsed = time.monotonic() - started
    assert reason == "not fetched within 2 s (NEWSQA_FETCH_TIMEOUT)"
    assert elapsed < 3 * timeout  # one read timeout per byte would have taken 1000 s for /drip


def test_a_redirect_loop_ends_in_a_failure(site):
    assert failure(f"{site}/loop", Limits(max_bytes=10**6, timeout=5)) == "more than 5 redirects"


# -- a feed's deadline


def test_a_feed_with_hanging_links_finishes_within_its_deadline(site):
    timeout = 1
    started = time.monotonic()
    results = load(f"{site}/feed.rss", Limits(max_bytes=10**6, timeout=timeout))
    elapsed = time.monotonic() - started
    [article] = [r for r in results if not isinstance(r, Failure)]
    assert article.title == STORY_TITLE
    failures = {r.source: r.reason for r in results if isinstance(r, Failure)}
    assert set(failures) == {f"{site}/hang/{n}" for n in range(HANGING_LINKS)}
    slow = "not fetched within 1 s (NEWSQA_FETCH_TIMEOUT)"
    late = "not fetched within the feed's 3 s (3 x NEWSQA_FETCH_TIMEOUT)"
    assert set(failures.values()) == {slow, late}  # two at a time from one host: not all were tried
    assert elapsed < 2 * (1 + FEED_TIMEOUTS) * timeout  # the feed's own fetch, then its links' time


def test_feeds_linked_from_a_feed_are_not_read(site):
    [result] = load(f"{site}/feed-of-feeds.rss", Limits(max_bytes=10**6, timeout=5))
    assert result == Failure(
        f"{site}/feed-of-feeds.rss", "the entry links to another feed; feeds linked from feeds are not read"
    )


# -- the private-address guard of the chat page


def test_the_command_line_fetches_loopback_addresses(site):
    [article] = load(f"{site}/story.html", Limits(max_bytes=10**6, timeout=5))
    assert article.title == STORY_TITLE


def test_loopback_and_private_urls_are_refused_when_guarded(site):
    port = site.rsplit(":", 1)[1]
    hint = "; set NEWSQA_ALLOW_PRIVATE_URLS=1 to allow"
    assert failure(f"{site}/story.html", GUARDED) == f"refused: 127.0.0.1 is a loopback address{hint}"
    assert (
        failure(f"http://0x7f000001:{port}/story.html", GUARDED)
        == f"refused: 0x7f000001 (127.0.0.1) is a loopback address{hint}"
    )
    assert (
        failure(f"http://[::ffff:127.0.0.1]:{port}/story.html", GUARDED)
        == f"refused: ::ffff:127.0.0.1 is a loopback address{hint}"
    )
    assert failure(f"http://0.0.0.0:{port}/story.html", GUARDED) == f"refused: 0.0.0.0 is an unspecified address{hint}"
    # Refused before any connection is tried: the cloud metadata service and an intranet.
    assert (
        failure("http://169.254.169.254/latest/meta-data/", GUARDED)
        == f"refused: 169.254.169.254 is a link-local address{hint}"
    )
    assert failure("http://10.1.2.3/", GUARDED) == f"refused: 10.1.2.3 is a private address{hint}"


@pytest.fixture
def outside(site, monkeypatch):
    """A second server, on 127.0.0.2, which the guard takes for a public host; /elsewhere redirects to
    the site on 127.0.0.1. No public address can be served by a test: this one is made to pass."""
    real = sources._non_public
    monkeypatch.setattr(sources, "_non_public", lambda address: None if str(address) == "127.0.0.2" else real(address))
    monkeypatch.setattr(Misbehaving, "elsewhere", site)
    server, base = serve(Misbehaving, "127.0.0.2")
    yield base
    server.shutdown()
    server.server_close()


def test_a_redirect_to_loopback_is_refused_when_guarded(outside):
    [article] = load(f"{outside}/story.html", GUARDED)  # the first hop alone passes
    assert article.title == STORY_TITLE
    assert (
        failure(f"{outside}/elsewhere", GUARDED)
        == "refused: redirected to 127.0.0.1, a loopback address; set NEWSQA_ALLOW_PRIVATE_URLS=1 to allow"
    )
    [article] = load(f"{outside}/elsewhere", Limits(max_bytes=10**6, timeout=5))
    assert article.title == STORY_TITLE


def test_the_page_guard_and_allow_private_urls(site, tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSQA_CONFIG", str(tmp_path / "no-config.toml"))
    url = f"{site}/story.html"
    with library.url_guard(Settings(index=tmp_path)):
        limits = Limits(max_bytes=10**6, timeout=5)  # made inside, as the ingest run makes its own
    assert limits.refuse_private
    assert failure(url, limits).startswith("refused: 127.0.0.1 is a loopback address")
    monkeypatch.setenv("NEWSQA_ALLOW_PRIVATE_URLS", "1")
    with library.url_guard(Settings(index=tmp_path)):
        [article] = load(url, Limits(max_bytes=10**6, timeout=5))
    assert article.title == STORY_TITLE
    assert not Limits(max_bytes=1, timeout=1).refuse_private  # outside the page: off


@pytest.mark.slow
def test_the_page_url_box_refuses_loopback(engine, site):
    from app.ui.page import Page

    def no_progress(*args, **kwargs):
        pass

    report = Page(engine).add_urls(f"{site}/story.html\n{site}/hang", progress=no_progress)
    hint = "refused: 127.0.0.1 is a loopback address; set NEWSQA_ALLOW_PRIVATE_URLS=1 to allow"
    assert report.splitlines() == [
        "0 added, 0 updated, 0 unchanged, 0 duplicate, 2 failed",
        f"  failed: {site}/story.html: {hint}",
        f"  failed: {site}/hang: {hint}",
    ]
    engine.settings.allow_private_urls = True
    assert Page(engine).add_urls(f"{site}/story.html", progress=no_progress).startswith("1 added")


# -- folders that cannot be read


def test_an_unreadable_folder_or_file_is_a_failure(tmp_path):
    news = tmp_path / "news"
    (news / "locked").mkdir(parents=True)
    (news / "locked" / "inside.txt").write_text("Hidden headline\nHidden text.\n")
    (news / "open.txt").write_text("Open headline\nOpen text.\n")
    (news / "secret.txt").write_text("Secret headline\nSecret text.\n")
    (news / "locked").chmod(0)
    (news / "secret.txt").chmod(0)
    try:
        if os.access(news / "locked", os.R_OK):
            pytest.skip("this user reads folders whatever their mode (root)")
        assert expand([str(news)]) == [
            str(news / "open.txt"),
            str(news / "secret.txt"),
            Failure(str(news / "locked"), "cannot read folder: Permission denied"),
        ]
        assert expand([str(news / "locked" / "inside.txt")]) == [
            Failure(str(news / "locked" / "inside.txt"), "cannot read: Permission denied")
        ]
        assert load(str(news / "secret.txt"), Limits(max_bytes=10**6, timeout=5)) == [
            Failure(str(news / "secret.txt"), "cannot read: Permission denied")
        ]
    finally:
        (news / "locked").chmod(0o755)
        (news / "secret.txt").chmod(0o644)
