"""The records that flow through newsqa: an Article, and the Chunks it is indexed as; and `printable`,
how their text goes to a terminal."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property


def shortened(text: str, limit: int) -> str:
    """`text` whole when it has `limit` characters or fewer; else cut at the last word boundary
    before `limit`, with an ellipsis."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def short_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1


def printable(text: str, keep: str = "") -> str:
    """`text` safe to print on a terminal: each control character but those in `keep` (an answer's
    line breaks) written as its Python escape (\\x1b, \\n), so that a title or file name can neither
    recolour the output, write the clipboard (OSC 52) nor start a line of its own."""
    return _CONTROL.sub(lambda m: m[0] if m[0] in keep else m[0].encode("unicode_escape").decode(), text)


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

    @cached_property
    def content_hash(self) -> str:
        # Cached: every chunk's id reads it, and hashing a long body once per chunk is quadratic.
        return short_hash(f"{self.title}\n{self.body}")


@dataclass(frozen=True)
class Chunk:
    """A passage of an article, sized to fit the embedding model's window.

    `text` is the slice `body[start:end]` of the article: what is searched by words and shown to a
    reader. `embed_text` is the part of it that the chunk's vector is made from, with its article's
    title and date (ingest/chunk_vectors.py); `embed_tokens` counts its word pieces.
    """

    article: Article
    index: int
    count: int
    text: str
    start: int
    end: int
    embed_text: str = field(repr=False)
    embed_tokens: int = field(repr=False)

    @property
    def id(self) -> str:
        return f"{self.article.id}-{self.article.content_hash[:8]}-{self.index}"


@dataclass(frozen=True)
class Filters:
    """Restrictions on what may be retrieved; pushed down into Chroma's `where`."""

    source: str | None = None
    since: date | None = None
    until: date | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved stretch of one article (one chunk, or neighbouring chunks merged)."""

    chunk_ids: tuple[str, ...]
    article_id: str
    title: str
    published: date | None
    source: str
    url: str
    file: str
    text: str
    start: int  # character offsets of `text` in the article body
    end: int
    score: float  # fused retrieval score; higher is better
    rank: int  # 1-based position in the retrieved list

    def where_from(self) -> dict:
        """Its article and rank as JSON values: what a reader needs to find the passage again."""
        return {
            "rank": self.rank,
            "article_id": self.article_id,
            "title": self.title,
            "published": self.published.isoformat() if self.published else None,
            "source": self.source,
            "url": self.url,
            "file": self.file,
        }


@dataclass(frozen=True)
class Citation:
    number: int  # the [n] marker in the answer text
    article_id: str
    title: str
    published: date | None
    source: str
    url: str
    file: str
    passage: str
    sentence: str  # the supporting sentence, a substring of `passage`
    sentence_start: int  # offsets of `sentence` in `passage`
    sentence_end: int
    # The asked-for phrase (a place, a name, a number...) as offsets in `sentence`; None when no
    # phrase of the sentence stands out as the answer.
    highlight: tuple[int, int] | None = None

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data["published"] = self.published.isoformat() if self.published else None
        data["highlight"] = list(self.highlight) if self.highlight else None
        return data


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of an answer, checked against the passages it cites."""

    text: str  # the sentence as the answer says it, [n] markers removed
    citations: tuple[int, ...]  # the [n] of the passages it rests on
    supported: bool  # a cited passage says it, its numbers, dates and names included
    support: str  # the passage sentence that says it; "" when none does

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "supported": self.supported,
            "support": self.support,
        }


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    refused: bool
    citations: tuple[Citation, ...]
    backend: str  # e.g. "extractive", "ollama:llama3.2", "extractive (fallback: ollama timed out)"
    timings: dict[str, float]  # milliseconds: retrieve, generate, total
    standalone_question: str = ""  # the follow-up rewritten with its history, when it was
    passages: tuple[Passage, ...] = ()
    warnings: tuple[str, ...] = ()  # e.g. a quotation not found in the passages
    sentences: tuple[SentenceSupport, ...] = ()  # the answer's sentences, each checked (none when refused)
    finish_reason: str = "stop"  # "length": an LLM's answer ended at the max_tokens asked for
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens, completion_tokens, as the LLM reported

    def as_dict(self) -> dict:
        def closest(passage: Passage) -> dict:
            """A passage of a refused answer, shown so a reader can judge the refusal; its text cut to
            about 300 characters at a word boundary."""
            return {**passage.where_from(), "text": shortened(" ".join(passage.text.split()), 300)}

        return {
            "question": self.question,
            "standalone_question": self.standalone_question or self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.as_dict() for c in self.citations],
            "backend": self.backend,
            "timings": self.timings,
            "warnings": list(self.warnings),
            "sentences": [s.as_dict() for s in self.sentences],
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "closest": [closest(p) for p in self.passages[:3]] if self.refused else [],
        }
