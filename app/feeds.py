"""Followed feeds: the list kept beside the index, and a refresh that fetches only what is new.

A refresh asks for the feed with a conditional GET (ETag / Last-Modified), so an unchanged feed costs
one request and no page. Of a changed feed, the entries already indexed (same link or id, and the same
title, dates and summary) are not fetched again; the others' pages are, one request at a time per
host and within the fetch limits of every ingest, and written through the index's one writer.
Retention drops a feed's articles published before its window.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from app.documents import Article, short_hash
from app.settings import Settings
from ingest.formats import BadInput, Failure, Feed, Origin, parse_feed
from ingest.sources import Limits, Loader, fetch_if_changed, is_url, left_out_line, load_feed_entries, newest_entries

if TYPE_CHECKING:
    from app.engine import Engine

log = logging.getLogger(__name__)

FEEDS_AT_ONCE = 3  # followed feeds refreshed together; their requests still take turns per host
MAX_TITLE_CHARS = 200  # a feed's own title, shown in lists: the feed is someone else's
CHECK_SECONDS = 30.0  # how often the chat page's background refresh looks for feeds that are due
MAX_DURATION_SECONDS = 3650 * 86400  # past this, date arithmetic overflows sooner or later
_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as 90s, 30m, 2h, 90d, 1w or 1h30m; ValueError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (e.g. 30m, 2h, 90d)")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not 0 < seconds <= MAX_DURATION_SECONDS:
        raise ValueError(f"a duration must be longer than 0 and at most 10 years: {text!r}")
    return seconds


def format_duration(seconds: int) -> str:
    """The largest whole unit: 1800 -> 30m, 7776000 -> 90d."""
    for unit in "wdhm":
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def entry_key(entry: dict) -> str:
    """What makes a feed entry the same entry next time: its link, else its id, else its title."""
    return entry.get("link") or entry.get("id") or entry.get("title", "")


def entry_fingerprint(entry: dict) -> str:
    """Changes when the entry does: an entry edited in its feed is fetched again."""
    # dict.get: feedparser's own get answers a missing "updated" with "published", and warns.
    fields = [dict.get(entry, name, "") for name in ("link", "id", "title", "published", "updated", "summary")]
    return short_hash(json.dumps(fields, default=str))


@dataclass
class FollowedFeed:
    url: str
    every: int  # seconds between refreshes
    keep: int | None = None  # seconds: articles published longer ago are dropped; None keeps all
    title: str = ""
    added: str = field(default_factory=lambda: _now().isoformat())
    last_refresh: str = ""  # when it was last asked for (ISO, UTC), successfully or not
    last_error: str = ""
    entries_seen: int = 0  # distinct entries indexed since it was followed
    etag: str = ""
    last_modified: str = ""
    seen: dict[str, str] = field(default_factory=dict)  # entry key -> fingerprint, of its current entries
    articles: dict[str, str] = field(default_factory=dict)  # article id -> published day ("" undated)

    @property
    def name(self) -> str:
        return self.title or self.url

    def due(self, now: datetime) -> bool:
        return not self.last_refresh or datetime.fromisoformat(self.last_refresh) + timedelta(seconds=self.every) <= now

    def as_dict(self) -> dict:
        """What `newsqa feeds --json` and the library tab show (not the refresh bookkeeping)."""
        return {
            "url": self.url,
            "name": self.name,
            "every": format_duration(self.every),
            "keep": format_duration(self.keep) if self.keep else None,
            "last_refresh": self.last_refresh or None,
            "entries_seen": self.entries_seen,
            "articles": len(self.articles),
            "last_error": self.last_error or None,
        }


class FeedStore:
    """The followed feeds, as feeds.json in the index folder; every change re-reads and writes it
    under a file lock, so `newsqa follow` and a refresh in the chat page's process do not lose each
    other's writes."""

    def __init__(self, settings: Settings):
        self.path = Path(settings.index) / "feeds.json"
        self._lock = FileLock(self.path.with_suffix(".json.lock"))
        self._refresh_lock = self.path.with_suffix(".refresh.lock")

    def load(self) -> list[FollowedFeed]:
        if not self.path.exists():  # nothing followed: no lock file, no index folder made for it
            return []
        with self._lock:
            return self._read()

    def _read(self) -> list[FollowedFeed]:
        if not self.path.exists():
            return []
        try:
            return [FollowedFeed(**record) for record in json.loads(self.path.read_text(encoding="utf-8"))["feeds"]]
        except (ValueError, KeyError, TypeError) as error:
            raise RuntimeError(f"cannot read the followed feeds in {self.path}: {error}; fix or delete it") from None

    def _save(self, feeds: list[FollowedFeed]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps({"feeds": [asdict(f) for f in feeds]}, indent=1), encoding="utf-8")
        temporary.replace(self.path)  # a reader never sees half a file

    @contextmanager
    def _changing(self) -> Iterator[list[FollowedFeed]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            feeds = self._read()
            yield feeds
            self._save(feeds)

    def follow(self, url: str, every: int, keep: int | None = None) -> FollowedFeed:
        """Follow `url`, or change how an already followed one is refreshed and kept."""
        if not is_url(url):
            raise ValueError(f"not a http(s) URL: {url}")
        with self._changing() as feeds:
            for feed in feeds:
                if feed.url == url:
                    feed.every, feed.keep = every, keep
                    return feed
            feeds.append(FollowedFeed(url, every, keep))
            return feeds[-1]

    def unfollow(self, url: str) -> bool:
        with self._changing() as feeds:
            kept = [f for f in feeds if f.url != url]
            found = len(kept) < len(feeds)
            feeds[:] = kept
        return found

    def save_refreshed(self, refreshed: FollowedFeed) -> None:
        """Write one feed's refresh back, unless it was unfollowed meanwhile."""
        with self._changing() as feeds:
            feeds[:] = [refreshed if f.url == refreshed.url else f for f in feeds]

    @contextmanager
    def refreshing(self, wait: bool) -> Iterator[bool]:
        """One refresh run at a time per index; yields False (nothing held) when another process is
        refreshing and `wait` is false."""
        self._refresh_lock.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self._refresh_lock)
        try:
            lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()


@dataclass(frozen=True)
class RefreshResult:
    url: str
    status: str  # "not modified" (304), "refreshed", "failed", "busy" (another refresh was running)
    new_entries: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0  # articles dropped by retention
    errors: tuple[str, ...] = ()  # the feed's error, or its entries' failures
    left_out: int = 0  # older entries past ingest.sources.MAX_FEED_ENTRIES, not read

    @property
    def failed(self) -> bool:
        """The feed, or one of its entries, could not be had (the entries are tried again next time)."""
        return self.status == "failed" or bool(self.errors)

    def line(self) -> str:
        if self.status in ("failed", "busy"):
            return f"{self.url}: {self.status}: {'; '.join(self.errors)}"
        counts = f"{self.new_entries} new or changed entries, {self.added} added, {self.updated} updated"
        dropped = f", {self.removed} dropped (older than the feed's --keep)" if self.removed else ""
        cut = f"; {left_out_line(self.left_out)}" if self.left_out else ""
        problems = "".join(f"\n  failed: {e}" for e in self.errors)
        return f"{self.url}: {self.status}; {counts}{dropped}{cut}{problems}"

    def as_dict(self) -> dict:
        return {**asdict(self), "errors": list(self.errors)}


def refresh_feed(engine: Engine, feed: FollowedFeed, loader: Loader) -> RefreshResult:
    """Fetch what is new in one feed and index it; `feed` is updated in place (not saved). Writing
    waits for the index's writer; questions never do."""
    feed.last_refresh = _now().isoformat()
    try:
        fetched = fetch_if_changed(feed.url, loader, feed.etag, feed.last_modified)
        parsed = parse_feed(fetched.data) if fetched.status != 304 else None
    except BadInput as error:
        feed.last_error = str(error)
        return RefreshResult(feed.url, "failed", errors=(feed.last_error,))
    added = updated = left_out = 0
    errors: list[str] = []
    new: list[dict] = []
    if parsed is not None:
        parsed, left_out = newest_entries(parsed)
        feed.title = parsed.title[:MAX_TITLE_CHARS] or feed.title
        new = [e for e in parsed.entries if feed.seen.get(entry_key(e)) != entry_fingerprint(e)]
        origin = Origin(feed.url, is_url=True, charset=fetched.charset)
        loaded = load_feed_entries(Feed(parsed.title, new), origin, loader) if new else []
        failed = {r.source: r.reason for r in loaded if isinstance(r, Failure)}
        if any(isinstance(r, Article) for r in loaded):
            report = engine.add(loaded, progress=False)
            failed.update((o.source, o.reason) for o in report.of("failed"))
            added, updated = report.counts()["added"], report.counts()["updated"]
        feed.articles.update(
            (a.id, a.published.isoformat() if a.published else "") for a in loaded if isinstance(a, Article)
        )
        errors = [f"{source}: {reason}" for source, reason in failed.items()]
        feed.seen = _seen_after(feed, parsed.entries, failed)
        # With an entry failed, ask for the whole feed next time (no 304) so that it is tried again.
        feed.etag, feed.last_modified = ("", "") if failed else (fetched.etag, fetched.last_modified)
    removed = drop_expired(engine, feed)
    feed.last_error = f"{len(errors)} entries failed; first: {errors[0]}" if errors else ""
    status = "refreshed" if parsed is not None else "not modified"
    return RefreshResult(feed.url, status, len(new), added, updated, removed, tuple(errors), left_out)


def _seen_after(feed: FollowedFeed, entries: list[dict], failed: dict[str, str]) -> dict[str, str]:
    """The current entries indexed now or before; the entries counted as seen grow by the new ones."""
    seen = {}
    for entry in entries:
        key = entry_key(entry)
        label = f"{feed.url} entry {entry.get('title', '?')!r}"  # how a failure names a link-less entry
        if entry.get("link", "") in failed or label in failed:
            continue
        if key not in feed.seen:
            feed.entries_seen += 1
        seen[key] = entry_fingerprint(entry)
    return seen


def drop_expired(engine: Engine, feed: FollowedFeed) -> int:
    """Remove the feed's articles published before its retention window (undated ones stay); how many."""
    if not feed.keep:
        return 0
    cutoff = date.today() - timedelta(seconds=feed.keep)
    expired = [a for a, day in feed.articles.items() if day and date.fromisoformat(day) < cutoff]
    if not expired:
        return 0
    with engine.index.writing():
        for article_id in expired:
            engine.index.remove(article_id)
        engine.index.lexical()
    for article_id in expired:
        del feed.articles[article_id]
    return len(expired)


def refresh_all(
    engine: Engine, due_only: bool = False, refuse_private: bool = False, wait: bool = True
) -> list[RefreshResult]:
    """Refresh the followed feeds (only those due, with `due_only`), FEEDS_AT_ONCE at a time, one
    request at a time per host. `refuse_private`: the chat page's guard against URLs into non-public
    networks. With `wait` false, nothing is done while another process refreshes. A feed that fails
    in a way nobody has met yet fails alone, its reason kept as its last error."""
    store = FeedStore(engine.settings)
    with store.refreshing(wait) as held:
        if not held:
            return [RefreshResult(f.url, "busy", errors=("another refresh is running",)) for f in store.load()]
        now = _now()
        feeds = [f for f in store.load() if f.due(now) or not due_only]
        if not feeds:
            return []
        limits = Limits(
            max_bytes=int(engine.settings.max_file_mb * 1e6),
            timeout=engine.settings.fetch_timeout,
            refuse_private=refuse_private,
        )

        def refresh_one(feed: FollowedFeed) -> RefreshResult:
            try:
                return refresh_feed(engine, feed, loader)
            except Exception as error:  # noqa: BLE001 (the other feeds, and a background refresher, go on)
                log.exception("refreshing %s failed", feed.url)
                feed.last_error = f"{type(error).__name__}: {error}"
                return RefreshResult(feed.url, "failed", errors=(feed.last_error,))
            finally:
                store.save_refreshed(feed)

        with Loader(limits, per_host=1) as loader, ThreadPoolExecutor(FEEDS_AT_ONCE, "feed-refresh") as pool:
            return list(pool.map(refresh_one, feeds))


class BackgroundRefresh:
    """Refreshes the followed feeds that are due, in a daemon thread, while the chat page runs. It
    writes through the index's writer lock as any ingest does; questions read without taking it, so
    none waits for a refresh. A round is skipped while another process refreshes."""

    def __init__(self, engine: Engine, refuse_private: bool, check_seconds: float = CHECK_SECONDS):
        self.engine = engine
        self.refuse_private = refuse_private
        self.check_seconds = check_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed-refresh", daemon=True)

    def start(self) -> BackgroundRefresh:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                results = refresh_all(self.engine, due_only=True, refuse_private=self.refuse_private, wait=False)
            except Exception:  # noqa: BLE001 (an unreadable feeds.json, a full disk: try again next round)
                log.exception("refreshing the followed feeds failed")
                results = []
            for result in results:
                if result.added or result.updated or result.removed or result.failed:
                    print(f"newsqa chat: feed {result.line()}", flush=True)
            self._stop.wait(self.check_seconds)
