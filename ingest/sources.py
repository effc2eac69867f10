"""Sources into Articles: files, folders (recursive), http(s) URLs and RSS/Atom feeds.

`Loader.load` gives, for every article found, an Article, and for everything that could not be
read a Failure with its reason; one bad source never stops the others. Articles already read (a
followed feed's new entries) pass through as they are.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import httpx

from app.documents import Article
from ingest.content_encoding import DECODE_ERRORS, DECODERS
from ingest.formats import (
    FEED_CONTENT_TYPES,
    FEED_SUFFIXES,
    PARSERS_BY_CONTENT_TYPE,
    PARSERS_BY_SUFFIX,
    BadInput,
    Failure,
    Feed,
    Origin,
    article_from_entry,
    entry_date,
    parse_feed,
)

SUPPORTED_SUFFIXES = set(PARSERS_BY_SUFFIX) | FEED_SUFFIXES
MAX_REDIRECTS = 5
FEED_WORKERS = 4  # linked pages of a feed fetched at once
FEED_WORKERS_PER_HOST = 2  # of which from one site at once: news sites answer bursts with refusals
FEED_TIMEOUTS = 3  # the linked pages of one feed get this many fetch timeouts in all
# Entries read of one feed at a time, the newest: a feed of 10,000 took 7 minutes and 1.1 GB to ingest;
# news feeds carry tens.
MAX_FEED_ENTRIES = 200
MAX_ENCODINGS = 2  # content encodings stacked on one body ("gzip, gzip"); servers send one

# Set while the chat page ingests (`refusing_private_urls`): the ingest run makes its Limits deep inside.
_REFUSE_PRIVATE = ContextVar("refuse_private_urls", default=False)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    timeout: float  # seconds for one URL in all: connecting, redirects and every read
    # Refuse URLs whose host is a loopback, private, link-local or other non-public address: on for
    # the chat page, whose visitors must not read the server's own network through it; off for the
    # command line, which runs as the user on their own machine.
    refuse_private: bool = field(default_factory=_REFUSE_PRIVATE.get)


@dataclass(frozen=True)
class Fetched:
    """What a URL gave: its body (empty for 304 Not Modified) and what a conditional GET sends next time."""

    data: bytes
    content_type: str
    charset: str
    status: int = 200
    etag: str = ""
    last_modified: str = ""


@contextmanager
def refusing_private_urls(refuse: bool = True) -> Iterator[None]:
    """Limits made within this block (by this thread) refuse URLs into non-public networks when `refuse`."""
    token = _REFUSE_PRIVATE.set(refuse)
    try:
        yield
    finally:
        _REFUSE_PRIVATE.reset(token)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def expand(sources: Iterable[str | Article | Failure]) -> list[str | Article | Failure]:
    """Each source as files and URLs to read: a folder gives its supported files, sorted, recursively;
    what cannot be found or read gives a Failure with the reason. Articles and Failures stay as they are."""
    items: list[str | Article | Failure] = []
    for source in sources:
        if isinstance(source, Article | Failure):
            items.append(source)
            continue
        path = Path(source).expanduser()
        try:
            if is_url(source):
                items.append(source)
            elif path.is_dir():
                items.extend(_folder(path))
            elif path.is_file():
                items.append(str(path))
            else:
                items.append(Failure(source, _not_a_file(path)))
        except OSError as error:  # e.g. a path inside a folder this user may not enter
            items.append(Failure(source, f"cannot read: {error.strerror or error}"))
    return items


def _not_a_file(path: Path) -> str:
    """Why a path that is neither a folder nor a regular file cannot be read (never opened: a FIFO
    would block until something wrote to it)."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symlink loop"
        return "a broken symlink" if path.is_symlink() else "no such file, folder or URL"
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or special file"
    return f"not a regular file: {kind}"


def _folder(root: Path) -> list[str | Failure]:
    """The supported files under `root`, sorted, hidden files and folders left out, then a Failure for
    each folder that cannot be listed (Path.rglob would skip those without a word)."""
    failures: list[str | Failure] = []

    def unreadable(error: OSError) -> None:
        failures.append(Failure(str(error.filename), f"cannot read folder: {error.strerror or error}"))

    files = []
    for folder, subfolders, names in os.walk(root, onerror=unreadable):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        files += [
            Path(folder, name)
            for name in names
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES
        ]
    return [str(p) for p in sorted(files) if p.is_file()] + failures


class Loader:
    """Reads files and URLs into Articles; holds the HTTP connection pool while open.

    `per_host`: at most this many requests to one host at once through this loader, whatever feed or
    thread makes them (0: no limit beyond a feed's own); followed feeds refreshed together use 1."""

    def __init__(self, limits: Limits, per_host: int = 0):
        self.limits = limits
        self.per_host = per_host
        self._hosts: dict[str, threading.Semaphore] = {}
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()  # a feed's pages are fetched by several threads

    @property
    def client(self) -> httpx.Client:
        # Made on the first URL: its TLS set-up takes about 50 ms, 5% of ingesting 30 local articles.
        # Redirects are followed by _fetch, which checks every hop.
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    headers={"User-Agent": "newsqa (+article ingestion)", "Accept-Encoding": ", ".join(DECODERS)}
                )
            return self._client

    @contextmanager
    def host_turn(self, url: str) -> Iterator[None]:
        """Wait for a turn to ask `url`'s host, when the loader limits requests per host."""
        if not self.per_host:
            yield
            return
        with self._client_lock:
            slot = self._hosts.setdefault(_host(url), threading.Semaphore(self.per_host))
        with slot:
            yield

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._client is not None:
            self._client.close()

    def load(self, item: str | Article) -> list[Article | Failure]:
        if isinstance(item, Article):
            return [item]
        try:
            if is_url(item):
                return _load_url(item, self)
            return _load_file(Path(item), self)
        except BadInput as error:
            return [Failure(item, str(error))]
        except OSError as error:
            return [Failure(item, f"cannot read: {error.strerror or error}")]
        except (ValueError, RecursionError, MemoryError) as error:
            # A parser's error nobody has met yet: this source fails alone, the batch goes on.
            return [Failure(item, f"cannot parse: {type(error).__name__}: {error}")]


def _load_file(path: Path, loader: Loader) -> list[Article | Failure]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadInput(
            f"unsupported file type {suffix or '(no extension)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    size = path.stat().st_size
    if size > loader.limits.max_bytes:
        raise BadInput(
            f"file is {size / 1e6:.1f} MB, over the {loader.limits.max_bytes / 1e6:g} MB limit (NEWSQA_MAX_FILE_MB)"
        )
    data = path.read_bytes()
    origin = Origin(str(path.resolve()))
    if suffix in FEED_SUFFIXES:
        return _load_feed(data, origin, loader)
    return list(PARSERS_BY_SUFFIX[suffix](data, origin))


def fetch_if_changed(url: str, loader: Loader, etag: str = "", last_modified: str = "") -> Fetched:
    """A conditional GET: status 304 and no body when the server says the URL is unchanged since the
    response that gave `etag` and `last_modified`. BadInput when it cannot be had."""
    headers = {name: value for name, value in (("If-None-Match", etag), ("If-Modified-Since", last_modified)) if value}
    return _fetch(url, loader, headers)


def _fetch(url: str, loader: Loader, headers: dict[str, str] | None = None) -> Fetched:
    """The body, content type and declared charset of a URL, following its redirects, within the
    time limit, refusing bodies over the size limit."""
    limits = loader.limits
    deadline = time.monotonic() + limits.timeout
    try:
        request = loader.client.build_request("GET", url, headers=headers)
        for hop in range(MAX_REDIRECTS + 1):
            if limits.refuse_private:
                _refuse_private_host(request.url.raw_host.decode("ascii"), redirected=hop > 0)
            # httpx's timeouts count per step and per read: a server sending a byte every few
            # seconds held one URL for minutes. Each request gets what is left of the URL's time, and
            # the body is checked against the deadline as it comes (a read already waiting may still
            # run past it, by less than the time the request was given).
            with loader.host_turn(str(request.url)):
                request.extensions["timeout"] = httpx.Timeout(_time_left(deadline, limits)).as_dict()
                response = loader.client.send(request, stream=True)
                try:
                    if response.next_request is None:
                        return _read_body(response, deadline, limits)
                    request = response.next_request
                finally:
                    response.close()
        raise BadInput(f"more than {MAX_REDIRECTS} redirects")
    except httpx.TimeoutException:
        raise BadInput(_too_slow(limits)) from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise BadInput(f"cannot fetch: {error or type(error).__name__}") from None


def _read_body(response: httpx.Response, deadline: float, limits: Limits) -> Fetched:
    if response.status_code >= 400:
        raise BadInput(f"HTTP {response.status_code} {response.reason_phrase}")
    validators = {"etag": response.headers.get("etag", ""), "last_modified": response.headers.get("last-modified", "")}
    if response.status_code == 304:
        return Fetched(b"", "", "", 304, **validators)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    encodings = [e.strip().lower() for e in response.headers.get_list("content-encoding", split_commas=True)]
    encodings = [e for e in encodings if e not in ("", "identity")]
    if len(encodings) > MAX_ENCODINGS:
        raise BadInput(f"more than {MAX_ENCODINGS} content encodings: {', '.join(encodings)}")
    unknown = [e for e in encodings if e not in DECODERS]
    if unknown:
        raise BadInput(f"unsupported content encoding {unknown[0]!r}; supported: {', '.join(DECODERS)}")
    # Every stage, the body as sent included, is held to the size limit and the deadline as it comes,
    # so a stage that expands what it is given (or eats it without output) stops in time.
    pieces = _within_limits(response.iter_raw(), deadline, limits)
    for encoding in reversed(encodings):  # listed in the order they were applied
        pieces = _within_limits(DECODERS[encoding](pieces), deadline, limits)
    try:
        data = b"".join(pieces)
    except DECODE_ERRORS as error:
        raise BadInput(f"cannot decode the page ({', '.join(encodings)}): {error}") from None
    return Fetched(data, content_type, response.charset_encoding or "", response.status_code, **validators)


def _within_limits(pieces: Iterable[bytes], deadline: float, limits: Limits) -> Iterator[bytes]:
    """The pieces, failing as soon as they add up to more than the size limit or the time is up."""
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > limits.max_bytes:
            raise BadInput(f"page is over the {limits.max_bytes / 1e6:g} MB limit (NEWSQA_MAX_FILE_MB)")
        _time_left(deadline, limits)
        yield piece


def _time_left(deadline: float, limits: Limits) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise BadInput(_too_slow(limits))
    return left


def _too_slow(limits: Limits) -> str:
    return f"not fetched within {limits.timeout:g} s (NEWSQA_FETCH_TIMEOUT)"


def _refuse_private_host(host: str, redirected: bool) -> None:
    """Raise BadInput unless every address `host` resolves to is a public one.

    httpx looks the name up again to connect, so a DNS server that answers a public address here and
    a private one a moment later (DNS rebinding) can still steer that connection; pinning the checked
    address would take a connection layer of our own under httpx. Hosts written as addresses, in any
    notation (0x7f000001, 2130706433, 127.1), resolve to themselves and are checked exactly."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except OSError as error:
        raise BadInput(f"cannot fetch: cannot resolve {host}: {error.strerror or error}") from None
    for address in sorted(addresses):
        kind = _non_public(ipaddress.ip_address(address.split("%")[0]))  # without an IPv6 zone (%eth0)
        if kind:
            named = host if host == address else f"{host} ({address})"
            what = f"redirected to {named}, {kind}" if redirected else f"{named} is {kind}"
            raise BadInput(f"refused: {what} address; set NEWSQA_ALLOW_PRIVATE_URLS=1 to allow")


def _non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of non-public address this is ("a loopback", ...); None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1; Python 3.11 does not say so
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind.replace('_', '-')}"
    return None if address.is_global else "a non-public"  # e.g. shared addresses, 100.64.0.0/10


def _looks_like_feed(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith(b"<?xml") and (b"<rss" in head or b"<feed" in head or b"<rdf" in head)


def _load_url(url: str, loader: Loader, in_feed: bool = False) -> list[Article | Failure]:
    fetched = _fetch(url, loader)
    data, content_type, charset = fetched.data, fetched.content_type, fetched.charset
    origin = Origin(url, is_url=True, charset=charset)
    if content_type in FEED_CONTENT_TYPES or _looks_like_feed(data):
        if in_feed:  # a feed linking feeds, itself perhaps, would be read without end
            raise BadInput("the entry links to another feed; feeds linked from feeds are not read")
        return _load_feed(data, origin, loader)
    parser = PARSERS_BY_CONTENT_TYPE.get(content_type)
    if parser is None:
        raise BadInput(f"not an article page: content type {content_type or 'unknown'}")
    return list(parser(data, origin))


def _load_feed(data: bytes, origin: Origin, loader: Loader) -> list[Article | Failure]:
    return load_feed_entries(parse_feed(data), origin, loader)


def newest_entries(feed: Feed) -> tuple[Feed, int]:
    """The feed with its newest MAX_FEED_ENTRIES entries, in the feed's order (undated ones counted
    oldest), and how many were left out."""
    by_age = sorted(feed.entries, key=lambda entry: entry_date(entry) or date.min, reverse=True)
    kept = {id(entry) for entry in by_age[:MAX_FEED_ENTRIES]}
    return Feed(feed.title, [e for e in feed.entries if id(e) in kept]), max(len(feed.entries) - MAX_FEED_ENTRIES, 0)


def left_out_line(count: int) -> str:
    return f"{count} older entries left out: at most {MAX_FEED_ENTRIES} are read of a feed at a time"


def load_feed_entries(feed: Feed, origin: Origin, loader: Loader) -> list[Article | Failure]:
    """Each entry's linked page is the article; the entry's own text stands in when the page fails.
    Of a long feed only the newest entries are read: the rest is a Failure of the feed's."""
    feed, left_out = newest_entries(feed)
    results: list[Article | Failure] = [Failure(origin.location, left_out_line(left_out))] if left_out else []
    pages = _linked_pages([entry.get("link", "") for entry in feed.entries], loader)
    for entry in feed.entries:
        link = entry.get("link", "")
        try:
            if not is_url(link):
                results.append(article_from_entry(entry, origin, feed.title))
            elif isinstance(pages[link], BadInput):
                try:
                    results.append(article_from_entry(entry, Origin(link, is_url=True), feed.title))
                except BadInput:
                    raise pages[link] from None
            else:
                results.extend(_with_feed_date(pages[link], entry))
        except BadInput as error:
            results.append(Failure(link or f"{origin.location} entry {entry.get('title', '?')!r}", str(error)))
    return results


def _linked_pages(links: list[str], loader: Loader) -> dict[str, list[Article | Failure] | BadInput]:
    """The page of each http(s) link, or why it could not be had.

    One at a time, each with the whole timeout, five hanging links held a feed for 100 s: pages are
    fetched FEED_WORKERS at a time, FEED_WORKERS_PER_HOST from one host, and the feed has
    FEED_TIMEOUTS fetch timeouts in all; links not fetched by then fail."""
    links = [link for link in dict.fromkeys(links) if is_url(link)]
    per_host = {_host(link): threading.Semaphore(FEED_WORKERS_PER_HOST) for link in links}

    def load(link: str) -> list[Article | Failure] | BadInput:
        with per_host[_host(link)]:
            try:
                return _load_url(link, loader, in_feed=True)
            except BadInput as error:
                # Kept without its traceback, whose frames hold the page read so far (up to the size
                # limit) and its decoders: alive, a page's worth each, until the whole feed is read.
                return error.with_traceback(None)

    seconds = FEED_TIMEOUTS * loader.limits.timeout
    pool = ThreadPoolExecutor(FEED_WORKERS, thread_name_prefix="feed-page")
    futures = {link: pool.submit(load, link) for link in links}
    done, _ = wait(futures.values(), timeout=seconds)
    # Pages not started are dropped; those being fetched end by their own deadline, unwaited for.
    pool.shutdown(wait=False, cancel_futures=True)
    pages: dict[str, list[Article | Failure] | BadInput] = {}
    for link, future in futures.items():
        if future not in done:
            pages[link] = BadInput(
                f"not fetched within the feed's {seconds:g} s ({FEED_TIMEOUTS} x NEWSQA_FETCH_TIMEOUT)"
            )
        else:
            pages[link] = future.result()  # any other error is raised here, as it was before threads
    return pages


def _host(url: str) -> str:
    return url.split("/", 3)[2].lower()  # the authority of an http(s) URL, as good as its host here


def _with_feed_date(page: list[Article | Failure], entry: dict) -> list[Article | Failure]:
    """A page without a date of its own takes the date its feed entry gives."""
    published = entry_date(entry)
    return [replace(a, published=published) if isinstance(a, Article) and a.published is None else a for a in page]
