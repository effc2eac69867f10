"""URL and feed ingestion against a real HTTP server on 127.0.0.1, started by the tests."""

from __future__ import annotations

import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.sources import Failure, Limits, Loader
from tests.conftest import free_port

FIXTURES = Path(__file__).resolve().parent / "fixtures"

STORY = (FIXTURES / "articles" / "library_page.html").read_bytes()
SECOND = b"""<!DOCTYPE html><html><head><title>Night trains return to the coast line</title>
<meta property="article:published_time" content="2024-03-20"></head><body><article>
<h1>Night trains return to the coast line</h1>
<p>Night trains will run again on the coast line from May, the rail operator said on Wednesday, after a break of six years.</p>
<p>Sleeper cars bought from a Swiss operator have been refitted with new beds and washrooms.</p>
</article></body></html>"""
UNDATED = b"""<html><head><title>Beekeepers count their losses</title></head><body><article>
<p>Beekeepers in the hill villages lost close to half of their hives over the winter, their union said.</p>
<p>A mild autumn followed by a sudden cold spell is blamed for the losses.</p></article></body></html>"""
POLISH = "Władze Łodzi ogłosiły nowe przepisy\nZażółć gęślą jaźń: nowe przepisy dotyczą ruchu drogowego w centrum."


def feed(base: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Local Desk</title><link>{base}/</link><description>News</description>
<item><title>Night trains return</title><link>{base}/second.html</link>
<pubDate>Thu, 21 Mar 2024 06:00:00 GMT</pubDate></item>
<item><title>Beekeepers count their losses</title><link>{base}/undated.html</link>
<pubDate>Fri, 22 Mar 2024 06:00:00 GMT</pubDate></item>
<item><title>Harbour dredging to start in June</title><link>{base}/gone.html</link>
<pubDate>Sat, 23 Mar 2024 06:00:00 GMT</pubDate>
<description>Dredging of the harbour mouth will start in June and last ten weeks, the port authority said.</description></item>
<item><title>Photo of the day</title><link>{base}/photo.png</link></item>
</channel></rss>""".encode()


class Site(BaseHTTPRequestHandler):
    pages: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        if self.path == "/old-story":
            self.send_response(301)
            self.send_header("Location", "/story.html")
            self.end_headers()
            return
        status, content_type, body = self.pages.get(self.path, (404, "text/html", b"<h1>Not found</h1>"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Site.pages = {
        "/story.html": (200, "text/html; charset=utf-8", STORY),
        "/second.html": (200, "text/html", SECOND),
        "/undated.html": (200, "text/html", UNDATED),
        "/menu.html": (200, "text/html", (FIXTURES / "bad" / "no_text.html").read_bytes()),
        "/photo.png": (200, "image/png", (FIXTURES / "bad" / "photo.txt").read_bytes()),
        "/big.html": (200, "text/html", b"<html><body><p>" + b"word " * 50_000 + b"</p></body></html>"),
        "/polish.txt": (200, "text/plain; charset=iso-8859-2", POLISH.encode("iso-8859-2")),
        "/records.json": (200, "application/json", (FIXTURES / "articles" / "wire_records.json").read_bytes()),
        "/feed.rss": (200, "application/rss+xml", feed(base)),
        "/feed-as-text": (200, "text/plain", feed(base)),  # a mislabelled feed is still seen for what it is
        "/broken-feed.xml": (200, "application/rss+xml", (FIXTURES / "bad" / "malformed.rss").read_bytes()),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    server.server_close()


def load(url: str, max_bytes: int = 10**6) -> list:
    with Loader(Limits(max_bytes=max_bytes, timeout=5)) as loader:
        return loader.load(url)


def failure(url: str, **limits) -> str:
    [result] = load(url, **limits)
    assert isinstance(result, Failure), f"{url} was accepted: {result}"
    assert result.source == url and "\n" not in result.reason
    return result.reason


def test_html_page(site):
    [article] = load(f"{site}/story.html")
    assert article.title == "City library reopens after two-year renovation"
    assert article.published == date(2023, 9, 2)
    assert article.url == article.origin == f"{site}/story.html"
    assert article.file == "story.html"
    assert article.body.startswith("The Northfield central library reopened")


def test_redirect_is_followed(site):
    [article] = load(f"{site}/old-story")
    assert article.title == "City library reopens after two-year renovation"


def test_declared_charset_is_used(site):
    [article] = load(f"{site}/polish.txt")
    assert article.title == "Władze Łodzi ogłosiły nowe przepisy"
    assert article.body.startswith("Zażółć gęślą jaźń")


def test_json_records_by_url(site):
    articles = load(f"{site}/records.json")
    assert [a.url for a in articles] == ["https://wire.example/rail-strike", "https://wire.example/statue-returned"]


@pytest.mark.parametrize("path", ["/feed.rss", "/feed-as-text"])
def test_feed_entries_are_their_linked_pages(site, path):
    results = load(site + path)
    articles = [r for r in results if not isinstance(r, Failure)]
    failures = [r for r in results if isinstance(r, Failure)]
    assert [a.title for a in articles] == [
        "Night trains return to the coast line",
        "Beekeepers count their losses",
        "Harbour dredging to start in June",
    ]
    trains, bees, dredging = articles
    assert trains.url == f"{site}/second.html" and trains.published == date(2024, 3, 20)  # the page's own date
    assert trains.body.startswith("Night trains will run again")
    assert bees.published == date(2024, 3, 22)  # the page has none: the feed's
    # The page is gone (404): the entry's own text stands in, still known by its link.
    assert dredging.url == dredging.origin == f"{site}/gone.html"
    assert (
        dredging.body == "Dredging of the harbour mouth will start in June and last ten weeks, the port authority said."
    )
    assert dredging.source == "Local Desk"
    assert failures == [Failure(f"{site}/photo.png", "not an article page: content type image/png")]


def test_malformed_feed_by_url(site):
    assert failure(f"{site}/broken-feed.xml") == "malformed feed: no element found (line 4)"


def test_non_html_url(site):
    assert failure(f"{site}/photo.png") == "not an article page: content type image/png"


def test_page_without_article_text(site):
    assert failure(f"{site}/menu.html") == "no article text found in the page"


def test_missing_page(site):
    assert failure(f"{site}/nothing-here") == "HTTP 404 Not Found"


def test_page_over_the_size_limit(site):
    assert failure(f"{site}/big.html", max_bytes=100_000) == "page is over the 0.1 MB limit (NEWSQA_MAX_FILE_MB)"


def test_unreachable_url():
    reason = failure(f"http://127.0.0.1:{free_port()}/story.html")  # a port nobody listens on
    assert reason.startswith("cannot fetch: ")


@pytest.mark.slow
def test_url_and_feed_ingestion_into_the_index(engine, site):
    report = engine.add([f"{site}/story.html", f"{site}/feed.rss"], progress=False)
    assert report.counts() == {"added": 4, "updated": 0, "unchanged": 0, "duplicate": 0, "failed": 1}
    assert {a.url for a in engine.articles()} == {
        f"{site}/{p}" for p in ("story.html", "second.html", "undated.html", "gone.html")
    }
    again = engine.add([f"{site}/feed.rss", f"{site}/story.html"], progress=False)
    assert again.counts()["unchanged"] == 4
    lexical = engine.index.lexical()
    [(best, _score), *_] = lexical.search("sleeper cars refitted washrooms", k=3)
    assert engine.index.chunks([best])[0].metadata["url"] == f"{site}/second.html"
