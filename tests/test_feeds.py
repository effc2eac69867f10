"""Followed feeds against a real HTTP server on 127.0.0.1 that honours ETag / If-None-Match and
counts what it is asked for: a refresh fetches only what is new, on the command line and in the
background while questions are answered."""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app import cli
from app.engine import Engine
from app.feeds import BackgroundRefresh, FeedStore, format_duration, parse_duration, refresh_all
from ingest import sources
from ingest.formats import Failure
from ingest.sources import Limits, Loader, fetch_if_changed
from tests.conftest import SEEDS, free_port, make_settings

STORIES = {
    "ferry": (
        "Island ferry gets a second daily crossing",
        "The island ferry will sail twice a day from April, the harbour board said on Monday. "
        "The second crossing leaves the mainland at six in the evening. Islanders had asked for a later "
        "boat for years, so that workers could come home after a full day on the mainland.",
    ),
    "library": (
        "Town library opens on Sundays",
        "The town library will open on Sundays from noon to five, the council decided on Tuesday. "
        "Volunteers from the reading club will staff the desk on Sunday afternoons. The council said the "
        "trial will run for six months before it decides whether to keep the Sunday hours.",
    ),
    "orchard": (
        "Old orchard saved by a village cooperative",
        "A cooperative of villagers bought the old pear orchard on the hill for 80,000 euros on Friday. "
        "The orchard holds forty kinds of pear, some found nowhere else in the region. The cooperative "
        "plans to sell juice and to open the orchard to school classes in the autumn.",
    ),
}


def page(title: str, body: str, day: date) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title>"
        f'<meta property="article:published_time" content="{day.isoformat()}"></head><body><article>'
        f"<h1>{title}</h1><p>{body}</p></article></body></html>"
    ).encode()


def rss(base: str, items: list[tuple[str, date]]) -> bytes:
    entries = "".join(
        f"<item><title>{STORIES[slug][0]}</title><link>{base}/{slug}.html</link>"
        f"<guid>{base}/{slug}.html</guid>"
        f"<pubDate>{format_datetime(datetime(day.year, day.month, day.day, 6, tzinfo=UTC), usegmt=True)}"
        "</pubDate></item>"
        for slug, day in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Valley Courier</title>'
        f"<link>{base}/</link><description>Local news</description>{entries}</channel></rss>"
    ).encode()


class Site(BaseHTTPRequestHandler):
    """Serves `pages` with an ETag each (or, with `last_modified`, a Last-Modified date instead) and
    answers a matching If-None-Match (If-Modified-Since) with 304; logs every request and the most it
    served at once (each taking `delay` seconds)."""

    pages: dict[str, tuple[str, bytes]] = {}
    log: list[tuple[str, int]] = []
    last_modified = False
    delay = 0.0
    active = peak = 0
    counting = threading.Lock()

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        with self.counting:
            Site.active += 1
            Site.peak = max(Site.peak, Site.active)
        try:
            time.sleep(self.delay)
            self._answer()
        finally:
            with self.counting:
                Site.active -= 1

    def _answer(self) -> None:
        content_type, body = self.pages.get(self.path, ("text/html", b""))
        digest = hashlib.sha256(body).hexdigest()
        if self.last_modified:  # a date of its own for each version of the body
            name = "Last-Modified"
            value = format_datetime(
                datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=int(digest[:6], 16)), usegmt=True
            )
            unchanged = self.headers.get("If-Modified-Since") == value
        else:
            name, value = "ETag", f'"{digest[:16]}"'
            unchanged = self.headers.get("If-None-Match") == value
        status = 404 if not body else 304 if unchanged else 200
        self.log.append((self.path, status))
        self.send_response(status)
        self.send_header(name, value)
        if status == 200:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status == 200:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    Site.pages, Site.log, Site.delay, Site.peak, Site.last_modified = {}, [], 0.0, 0, False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def publish(base: str, items: list[tuple[str, date]]) -> None:
    for slug, day in items:
        Site.pages[f"/{slug}.html"] = ("text/html; charset=utf-8", page(*STORIES[slug], day))
    Site.pages["/feed.rss"] = ("application/rss+xml", rss(base, items))


def requests_since(mark: int) -> list[tuple[str, int]]:
    return Site.log[mark:]


def newsqa(index: Path, *args: str) -> int:
    return cli.main(["--index", str(index), *args])


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("90d", 7776000), ("1h30m", 5400), ("1w", 604800)]
)
def test_durations_read_and_written(text: str, seconds: int):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "0m", "30 minutes", "-5m", "1.5h", "99999999999w"])
def test_a_bad_duration_is_refused(text: str):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_follow_unfollow_and_the_list_beside_the_index(tmp_path: Path, capsys):
    index = tmp_path / "index"
    assert newsqa(index, "follow", "https://news.example.org/feed.rss", "--every", "2h", "--keep", "90d") == 0
    assert newsqa(index, "follow", "file:///etc/passwd") == 2
    assert "not a http(s) URL" in capsys.readouterr().err
    assert newsqa(index, "feeds") == 0
    out = capsys.readouterr().out
    assert "every 2h, keep 90d; last refresh never; 0 entries seen, 0 articles" in out
    assert (index / "feeds.json").is_file()
    assert newsqa(index, "follow", "https://news.example.org/feed.rss", "--every", "15m") == 0  # options changed
    [feed] = FeedStore(make_settings(index)).load()
    assert (feed.every, feed.keep) == (900, None)
    assert newsqa(index, "unfollow", "https://news.example.org/feed.rss") == 0
    assert newsqa(index, "unfollow", "https://news.example.org/feed.rss") == 1
    assert FeedStore(make_settings(index)).load() == []


def test_an_unreadable_feed_list_is_a_one_line_error(tmp_path: Path, capsys):
    index = tmp_path / "index"
    index.mkdir()
    (index / "feeds.json").write_text("{not json")
    assert newsqa(index, "feeds") == 2
    assert capsys.readouterr().err.startswith(f"newsqa: cannot read the followed feeds in {index / 'feeds.json'}: ")


@pytest.mark.slow
def test_a_refresh_fetches_only_what_is_new(site: str, tmp_path: Path, capsys):
    index = tmp_path / "index"
    today = date.today()
    publish(site, [("ferry", today - timedelta(days=2)), ("library", today - timedelta(days=1))])

    assert newsqa(index, "follow", f"{site}/feed.rss") == 0
    mark = len(Site.log)
    assert newsqa(index, "refresh") == 0
    first = requests_since(mark)
    assert sorted(first) == [("/feed.rss", 200), ("/ferry.html", 200), ("/library.html", 200)]
    assert "refreshed; 2 new or changed entries, 2 added" in capsys.readouterr().out

    mark = len(Site.log)
    assert newsqa(index, "refresh") == 0
    second = requests_since(mark)
    assert second == [("/feed.rss", 304)]  # unchanged: no page fetched
    assert "not modified; 0 new or changed entries" in capsys.readouterr().out

    publish(site, [("ferry", today - timedelta(days=2)), ("library", today - timedelta(days=1)), ("orchard", today)])
    mark = len(Site.log)
    assert newsqa(index, "refresh") == 0
    third = requests_since(mark)
    assert third == [("/feed.rss", 200), ("/orchard.html", 200)]  # only the new entry's page

    engine = Engine(make_settings(index, llm="extractive"))
    answer = engine.ask("How much did the cooperative pay for the pear orchard?")
    assert "80,000" in answer.answer and answer.citations[0].title == STORIES["orchard"][0]
    assert len(engine.articles()) == 3
    assert newsqa(index, "feeds", "--json") == 0
    listed = capsys.readouterr().out
    assert '"entries_seen": 3' in listed and '"name": "Valley Courier"' in listed and '"last_error": null' in listed
    print(f"\nrequests: first refresh {first}; second {second}; third {third}")


def test_a_server_that_gives_dates_only_is_asked_with_if_modified_since(site: str):
    Site.last_modified = True
    publish(site, [("ferry", date.today())])
    with Loader(Limits(max_bytes=1_000_000, timeout=5)) as loader:
        first = fetch_if_changed(f"{site}/feed.rss", loader)
        again = fetch_if_changed(f"{site}/feed.rss", loader, first.etag, first.last_modified)
        publish(site, [("ferry", date.today()), ("orchard", date.today())])
        changed = fetch_if_changed(f"{site}/feed.rss", loader, first.etag, first.last_modified)
    assert (first.status, first.etag, bool(first.last_modified)) == (200, "", True)
    assert (again.status, again.data) == (304, b"")
    assert changed.status == 200 and b"orchard" in changed.data


@pytest.mark.slow
def test_feeds_on_one_host_are_refreshed_one_request_at_a_time(site: str, tmp_path: Path):
    index = tmp_path / "index"
    today = date.today()
    publish(site, [("ferry", today), ("library", today), ("orchard", today)])
    Site.pages["/more.rss"] = ("application/rss+xml", rss(site, [("orchard", today)]))
    Site.pages["/feed.rss"] = ("application/rss+xml", rss(site, [("ferry", today), ("library", today)]))
    Site.delay = 0.2
    for feed in ("feed.rss", "more.rss"):
        assert newsqa(index, "follow", f"{site}/{feed}") == 0
    results = refresh_all(Engine(make_settings(index)))
    assert [r.added for r in results] == [2, 1]
    assert len(Site.log) == 5 and Site.peak == 1  # two feeds and three pages, never two at once


def long_feed(site: str, monkeypatch) -> None:
    """Three entries, the oldest listed first, where a feed may give two."""
    monkeypatch.setattr(sources, "MAX_FEED_ENTRIES", 2)
    today = date.today()
    publish(site, [("ferry", today - timedelta(days=3)), ("library", today), ("orchard", today - timedelta(days=1))])


def test_a_long_feed_read_directly_gives_its_newest_entries_and_says_so(site: str, monkeypatch):
    long_feed(site, monkeypatch)
    with Loader(Limits(max_bytes=10**6, timeout=5)) as loader:
        results = loader.load(f"{site}/feed.rss")
    assert results[0] == Failure(f"{site}/feed.rss", "1 older entries left out: at most 2 are read of a feed at a time")
    assert [a.title for a in results[1:]] == [STORIES["library"][0], STORIES["orchard"][0]]  # in the feed's order
    assert "/ferry.html" not in {path for path, _ in Site.log}


@pytest.mark.slow
def test_a_refresh_reads_only_the_newest_entries_of_a_long_feed(site: str, tmp_path: Path, capsys, monkeypatch):
    long_feed(site, monkeypatch)
    index = tmp_path / "index"
    assert newsqa(index, "follow", f"{site}/feed.rss") == 0
    assert newsqa(index, "refresh") == 0
    assert sorted(Site.log) == [("/feed.rss", 200), ("/library.html", 200), ("/orchard.html", 200)]
    assert (
        f"{site}/feed.rss: refreshed; 2 new or changed entries, 2 added, 0 updated; "
        "1 older entries left out: at most 2 are read of a feed at a time"
    ) in capsys.readouterr().out


@pytest.mark.slow
def test_a_failing_feed_fails_the_refresh_with_its_reason(site: str, tmp_path: Path, capsys):
    index = tmp_path / "index"
    assert newsqa(index, "follow", f"{site}/gone.rss") == 0
    assert newsqa(index, "refresh") == 1
    assert f"{site}/gone.rss: failed: HTTP 404 Not Found" in capsys.readouterr().err
    [feed] = FeedStore(make_settings(index)).load()
    assert feed.last_error == "HTTP 404 Not Found" and feed.last_refresh


@pytest.mark.slow
def test_an_entry_whose_page_failed_is_fetched_again_next_time(site: str, tmp_path: Path, capsys):
    index = tmp_path / "index"
    today = date.today()
    publish(site, [("ferry", today), ("library", today)])
    del Site.pages["/library.html"]  # its page is missing, and the entry has no text of its own
    assert newsqa(index, "follow", f"{site}/feed.rss") == 0
    assert newsqa(index, "refresh") == 1
    assert f"failed: {site}/library.html: HTTP 404 Not Found" in capsys.readouterr().err
    [feed] = FeedStore(make_settings(index)).load()
    assert feed.last_error == f"1 entries failed; first: {site}/library.html: HTTP 404 Not Found"

    publish(site, [("ferry", today), ("library", today)])
    mark = len(Site.log)
    assert newsqa(index, "refresh") == 0
    assert requests_since(mark) == [("/feed.rss", 200), ("/library.html", 200)]  # the feed whole, the page again
    [feed] = FeedStore(make_settings(index)).load()
    assert (feed.entries_seen, feed.last_error) == (2, "")


@pytest.mark.slow
def test_retention_drops_the_feeds_articles_older_than_its_window(site: str, tmp_path: Path):
    index = tmp_path / "index"
    today = date.today()
    publish(site, [("ferry", today - timedelta(days=40)), ("library", today - timedelta(days=3))])
    assert newsqa(index, "follow", f"{site}/feed.rss", "--keep", "30d") == 0
    engine = Engine(make_settings(index))
    [result] = refresh_all(engine)
    assert (result.added, result.removed) == (2, 1)
    assert [a.title for a in engine.articles()] == [STORIES["library"][0]]
    mark = len(Site.log)
    [again] = refresh_all(engine)  # the dropped entry is still in the feed: not fetched, not added again
    assert (again.status, again.added) == ("not modified", 0) and requests_since(mark) == [("/feed.rss", 304)]


def _ask_timed(engine: Engine, stop: threading.Event, latencies: list[float], errors: list[BaseException]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            answer = engine.ask("Where will the talks with the U.S. take place?")
            assert "Geneva" in answer.answer
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            errors.append(error)
            return
        latencies.append((time.perf_counter() - started) * 1000)


@pytest.mark.slow
def test_background_refresh_while_four_clients_ask(site: str, tmp_path: Path):
    """The page's refresher indexes an entry published after the follow, with no command run, while
    four clients ask: no error. Question latencies before and during the refresh are printed."""
    index = tmp_path / "index"
    engine = Engine(make_settings(index, llm="extractive"))
    engine.add([str(SEEDS)], progress=False)
    engine.ask("warm up")
    today = date.today()
    # Twenty long pages, so that the refresh embeds for a while.
    slugs = [f"story{n}" for n in range(20)]
    for n, slug in enumerate(slugs):
        STORIES[slug] = (
            f"Council minutes, part {n}",
            " ".join(
                f"Item {i} of part {n} was read and noted by the council clerk on the {i}th day." for i in range(60)
            ),
        )
    publish(site, [(slug, today) for slug in slugs])
    store = FeedStore(engine.settings)
    store.follow(f"{site}/feed.rss", every=1)

    def measure(seconds: float | None, until: threading.Event | None = None) -> tuple[list[float], list]:
        stop, latencies, errors = threading.Event(), [], []
        askers = [threading.Thread(target=_ask_timed, args=(engine, stop, latencies, errors)) for _ in range(4)]
        for asker in askers:
            asker.start()
        if until is not None:
            until.wait(120)
        else:
            time.sleep(seconds)
        stop.set()
        for asker in askers:
            asker.join()
        return latencies, errors

    baseline, errors = measure(5.0)
    assert not errors

    refreshed = threading.Event()
    refresher = BackgroundRefresh(engine, refuse_private=False, check_seconds=0.2)
    started = time.perf_counter()

    def watch() -> None:
        while len(engine.articles()) < 21:
            time.sleep(0.1)
        refreshed.set()

    threading.Thread(target=watch, daemon=True).start()
    refresher.start()
    during, errors = measure(None, until=refreshed)
    refresh_seconds = time.perf_counter() - started
    assert not errors and refreshed.is_set()

    # An entry published after the follow, indexed on the feed's schedule with no command run.
    publish(site, [(slug, today) for slug in slugs] + [("orchard", today)])
    deadline = time.monotonic() + 60
    while len(engine.articles()) < 22 and time.monotonic() < deadline:
        time.sleep(0.2)
    refresher.stop()
    answer = engine.ask("How much did the cooperative pay for the pear orchard?")
    assert "80,000" in answer.answer

    def figures(values: list[float]) -> str:
        ordered = sorted(values)
        return (
            f"{len(values)} questions, p50 {statistics.median(values):.0f} ms, "
            f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms, max {ordered[-1]:.0f} ms"
        )

    print(
        f"\nbefore the refresh: {figures(baseline)}\nduring the refresh ({refresh_seconds:.1f} s, "
        f"20 pages): {figures(during)}"
    )


@pytest.mark.slow
def test_the_library_tab_lists_followed_feeds_and_refreshes_them_now(site: str, tmp_path: Path):
    from gradio_client import Client

    from app.ui import library, server
    from app.ui.page import build_page

    publish(site, [("orchard", date.today())])
    index = tmp_path / "index"
    assert newsqa(index, "follow", f"{site}/feed.rss", "--every", "2h") == 0
    guarded = Engine(make_settings(index, llm="extractive"))
    assert (
        library.refresh_feeds(guarded)
        == f"{site}/feed.rss: failed: refused: 127.0.0.1 is a loopback address; set NEWSQA_ALLOW_PRIVATE_URLS=1 to allow"
    )
    [row] = library.feed_rows(guarded.settings)
    assert row[:2] == [f"{site}/feed.rss", "2h"] and row[2] != "never" and row[3] == 0
    assert row[4].startswith("refused: 127.0.0.1 is a loopback address")

    engine = Engine(make_settings(index, llm="extractive", allow_private_urls=True))
    blocks = build_page(engine)
    url = server.launch(blocks, "127.0.0.1", free_port(), None, max_file_bytes=1000)
    try:
        report = Client(url, verbose=False).predict(api_name="/refresh_feeds")
    finally:
        blocks.close()
    assert report.startswith(f"{site}/feed.rss: refreshed; 1 new or changed entries, 1 added")
    [row] = library.feed_rows(engine.settings)
    assert row[0] == "Valley Courier" and row[3] == 1 and row[4] == ""
