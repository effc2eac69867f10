"""The records that flow through newsqa: an Article, and the Chunks it is indexed as."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date


def short_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


@dataclass(frozen=True)
class Article:
    """One news article, whatever format it came in.

    `origin` is what makes it the same article next time (its URL, else its file, plus the record
    number for JSON lines): a changed body under the same origin is an update, not a new article.
    """

    title: str
    body: str
    origin: str
    published: date | None = None
    source: str = ""
    url: str = ""
    authors: tuple[str, ...] = ()
    file: str = ""

    @property
    def id(self) -> str:
        return short_hash(self.origin)

    @property
    def content_hash(self) -> str:
        return short_hash(f"{self.title}\n{self.body}")


@dataclass(frozen=True)
class Chunk:
    """A passage of an article, sized to fit the embedding model's window.

    `embed_text` is what is embedded and searched (the title and date head it); `text` is the slice
    `body[start:end]` of the article, what a reader is shown.
    """

    article: Article
    index: int
    count: int
    text: str
    start: int
    end: int
    embed_text: str = field(repr=False)

    @property
    def id(self) -> str:
        return f"{self.article.id}-{self.article.content_hash[:8]}-{self.index}"
