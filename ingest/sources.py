"""Sources into Articles: files, folders (recursive), http(s) URLs and RSS/Atom feeds.

`Loader.load` gives, for every article found, an Article, and for everything that could not be
read a Failure with its reason; one bad source never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import httpx

from app.documents import Article
from ingest.formats import (
    FEED_CONTENT_TYPES,
    FEED_SUFFIXES,
    PARSERS_BY_CONTENT_TYPE,
    PARSERS_BY_SUFFIX,
    BadInput,
    Failure,
    Origin,
    article_from_entry,
    entry_date,
    parse_feed,
)

SUPPORTED_SUFFIXES = set(PARSERS_BY_SUFFIX) | FEED_SUFFIXES


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    timeout: float


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def expand(sources: Iterable[str]) -> list[str | Failure]:
    """Each source as files and URLs to read: a folder gives its supported files, sorted, recursively."""
    items: list[str | Failure] = []
    for source in sources:
        path = Path(source).expanduser()
        if is_url(source) or path.is_file():
            items.append(source if is_url(source) else str(path))
        elif path.is_dir():
            items.extend(str(p) for p in sorted(path.rglob("*"))
                         if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                         and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            items.append(Failure(source, "no such file, folder or URL"))
    return items


class Loader:
    """Reads files and URLs into Articles; holds the HTTP connection pool while open."""

    def __init__(self, limits: Limits):
        self.limits = limits

    @cached_property
    def client(self) -> httpx.Client:
        # Made on the first URL: its TLS set-up takes about 50 ms, 5% of ingesting 30 local articles.
        return httpx.Client(follow_redirects=True, timeout=self.limits.timeout,
                            headers={"User-Agent": "newsqa (+article ingestion)"})

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc_info) -> None:
        if "client" in self.__dict__:
            self.client.close()

    def load(self, item: str) -> list[Article | Failure]:
        try:
            if is_url(item):
                return _load_url(item, self)
            return _load_file(Path(item), self)
        except BadInput as error:
            return [Failure(item, str(error))]
        except OSError as error:
            return [Failure(item, f"cannot read: {error.strerror or error}")]


def _load_file(path: Path, loader: Loader) -> list[Article | Failure]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise BadInput(f"unsupported file type {suffix or '(no extension)'}; "
                       f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    size = path.stat().st_size
    if size > loader.limits.max_bytes:
        raise BadInput(f"file is {size / 1e6:.1f} MB, over the {loader.limits.max_bytes / 1e6:g} MB limit "
                       "(NEWSQA_MAX_FILE_MB)")
    data = path.read_bytes()
    origin = Origin(str(path.resolve()))
    if suffix in FEED_SUFFIXES:
        return _load_feed(data, origin, loader)
    return list(PARSERS_BY_SUFFIX[suffix](data, origin))


def _fetch(url: str, loader: Loader) -> tuple[bytes, str, str]:
    """The body, content type and declared charset of a URL, refusing bodies over the size limit."""
    try:
        with loader.client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise BadInput(f"HTTP {response.status_code} {response.reason_phrase}")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            data = bytearray()
            for part in response.iter_bytes():
                data += part
                if len(data) > loader.limits.max_bytes:
                    raise BadInput(f"page is over the {loader.limits.max_bytes / 1e6:g} MB limit (NEWSQA_MAX_FILE_MB)")
            return bytes(data), content_type, response.charset_encoding or ""
    except httpx.TimeoutException:
        raise BadInput(f"no answer within {loader.limits.timeout:g} s") from None
    except httpx.HTTPError as error:
        raise BadInput(f"cannot fetch: {error or type(error).__name__}") from None


def _looks_like_feed(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith(b"<?xml") and (b"<rss" in head or b"<feed" in head or b"<rdf" in head)


def _load_url(url: str, loader: Loader) -> list[Article | Failure]:
    data, content_type, charset = _fetch(url, loader)
    origin = Origin(url, is_url=True, charset=charset)
    if content_type in FEED_CONTENT_TYPES or _looks_like_feed(data):
        return _load_feed(data, origin, loader)
    parser = PARSERS_BY_CONTENT_TYPE.get(content_type)
    if parser is None:
        raise BadInput(f"not an article page: content type {content_type or 'unknown'}")
    return list(parser(data, origin))


def _load_feed(data: bytes, origin: Origin, loader: Loader) -> list[Article | Failure]:
    """Each entry's linked page is the article; the entry's own text stands in when the page fails."""
    results: list[Article | Failure] = []
    feed = parse_feed(data)
    for entry in feed.entries:
        link = entry.get("link", "")
        try:
            if not is_url(link):
                results.append(article_from_entry(entry, origin, feed.title))
                continue
            try:
                page = _load_url(link, loader)
            except BadInput as page_error:
                try:
                    results.append(article_from_entry(entry, Origin(link, is_url=True), feed.title))
                except BadInput:
                    raise page_error from None
                continue
            results.extend(_with_feed_date(page, entry))
        except BadInput as error:
            results.append(Failure(link or f"{origin.location} entry {entry.get('title', '?')!r}", str(error)))
    return results


def _with_feed_date(page: list[Article | Failure], entry: dict) -> list[Article | Failure]:
    """A page without a date of its own takes the date its feed entry gives."""
    published = entry_date(entry)
    return [replace(a, published=published) if isinstance(a, Article) and a.published is None else a
            for a in page]
