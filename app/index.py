"""The index: the one module that talks to Chroma, and keeps the lexical index in step with it.

Every chunk is a Chroma record whose metadata carries its article's fields, so the collection is
the single source of truth: the article list is read from the first chunk of each article, and the
BM25 index is rebuilt from the collection whenever its revision changes.

Writes are idempotent and self-healing: chunk ids are derived from the article and its content,
an article's new chunks are written before its stale ones are deleted, and the collection revision
is bumped before and after every write, so an ingest killed at any point and run again converges.
One process writes at a time (`Index.writing`), and a chunk stored without its vector leaves its
article incomplete, so the next ingest writes it again.
"""

from __future__ import annotations

import operator
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.errors import InternalError
from filelock import FileLock, Timeout

from app.documents import Chunk, short_hash
from app.lexical import LexicalIndex
from app.settings import Settings

# A metadata filter makes Chroma read every chunk's metadata (about 1 s a request at 100k chunks),
# while the nearest chunks come back in milliseconds: a filtered search first takes this many times
# the chunks asked for, unfiltered, and filters them here; only a filter that admits too few of
# them is left to Chroma.
OVERSAMPLE = 4
OVERSAMPLE_LIMIT = 2048
# Only operators whose meaning on a missing field is plain (it fails them); `$ne` and `$nin` are not.
_COMPARISONS = {"$eq": operator.eq, "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}

# The revision is read from Chroma at most once in this many seconds: another process's write is
# seen within it, and a busy reader does not ask Chroma (a round trip to a server) on every question.
REVISION_TTL_SECONDS = 1.0
BACKEND_SUFFIX = re.compile(r" \((onnx-int8|torch)\)$")


class IndexBusy(RuntimeError):
    """Another process is writing to the index, and this one was told not to wait."""


@dataclass(frozen=True)
class StoredArticle:
    """An indexed article as the index knows it (what `newsqa list` shows)."""

    id: str
    title: str
    published: date | None
    source: str
    url: str
    file: str
    authors: tuple[str, ...]
    content_hash: str
    chunks: int

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "published": self.published.isoformat() if self.published else None,
            "source": self.source,
            "url": self.url,
            "file": self.file,
            "authors": list(self.authors),
            "chunks": self.chunks,
        }


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict


def day_number(day: date) -> int:
    """A date as the integer YYYYMMDD, so Chroma can compare it with $gte / $lte."""
    return day.year * 10000 + day.month * 100 + day.day


def chunk_metadata(chunk: Chunk) -> dict:
    article = chunk.article
    metadata = {
        "article_id": article.id,
        "content_hash": article.content_hash,
        "title": article.title,
        "source": article.source,
        "url": article.url,
        "file": article.file,
        "origin": article.origin,
        "authors": "; ".join(article.authors),
        "chunk_index": chunk.index,
        "chunk_count": chunk.count,
        "char_start": chunk.start,
        "char_end": chunk.end,
        # Chroma has no "field is missing" test, so date windows that keep undated articles ask for this.
        "dated": article.published is not None,
    }
    if article.published:
        metadata["published"] = article.published.isoformat()
        metadata["published_day"] = day_number(article.published)
    return metadata


def article_fields(metadata: dict) -> dict:
    """The article a chunk's metadata describes: title, date (from its ISO text), source, URL, file."""
    published = metadata.get("published")
    return {
        "title": metadata["title"],
        "published": date.fromisoformat(published) if published else None,
        "source": metadata.get("source", ""),
        "url": metadata.get("url", ""),
        "file": metadata.get("file", ""),
    }


def stored_article(metadata: dict) -> StoredArticle:
    """The article a chunk's metadata (any of its chunks') describes, as the index knows it."""
    return StoredArticle(
        id=metadata["article_id"],
        **article_fields(metadata),
        authors=tuple(a for a in metadata.get("authors", "").split("; ") if a),
        content_hash=metadata["content_hash"],
        chunks=metadata["chunk_count"],
    )


def admits(where: dict, metadata: dict) -> bool:
    """Whether Chroma's `where` admits a record with this metadata, as Chroma decides it (a missing
    field fails every condition on it), for the operators newsqa's filters use."""
    for key, condition in where.items():
        if key in ("$and", "$or"):
            results = (admits(clause, metadata) for clause in condition)
            if not (all(results) if key == "$and" else any(results)):
                return False
            continue
        if key not in metadata:
            return False
        value = metadata[key]
        ((operation, operand),) = condition.items() if isinstance(condition, dict) else (("$eq", condition),)
        if operation == "$in":
            matched = value in operand
        elif operation in _COMPARISONS:
            matched = _COMPARISONS[operation](value, operand)
        else:
            raise ValueError(f"filter operator {operation} is not evaluated here")
        if not matched:
            return False
    return True


def open_client(settings: Settings, folder: Path | None = None):
    """A client of the Chroma server, or of the local store in `folder` (the index's own by default)."""
    chroma_settings = chromadb.Settings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "localhost", port=url.port or 8000, ssl=url.scheme == "https", settings=chroma_settings
        )
    return chromadb.PersistentClient(path=str(folder or settings.index / "chroma"), settings=chroma_settings)


class Index:
    def __init__(self, settings: Settings, embedding_model: str):
        store = settings.index / "chroma"
        # Chroma writes to its store to open it, even to read: an index this user may not write (a
        # read-only disk, someone else's files) is read from a copy, which this process alone uses.
        self.read_only = not settings.chroma_url and store.is_dir() and not os.access(store, os.W_OK)
        self._copy = tempfile.TemporaryDirectory(prefix="newsqa-read-only-") if self.read_only else None
        if self._copy:
            store = Path(shutil.copytree(store, Path(self._copy.name) / "chroma"))
        else:
            settings.index.mkdir(parents=True, exist_ok=True)
        self._index_folder = settings.index
        # Processes opening a new local store at once race through Chroma's creation of its tables
        # ("table collections already exists"): they take turns, which costs nothing once it exists.
        with FileLock(settings.index / "open.lock") if not (settings.chroma_url or self.read_only) else nullcontext():
            self._client = open_client(settings, store)
            self._collection = self._client.get_or_create_collection(
                settings.collection,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedding_model": embedding_model},
                embedding_function=None,
            )
        # Older indexes name the backend too ("MODEL (onnx-int8)"): its vectors suit every backend.
        stored_model = BACKEND_SUFFIX.sub("", (self._collection.metadata or {}).get("embedding_model") or "")
        if stored_model and stored_model != embedding_model:
            raise RuntimeError(
                f"the index at {settings.index} was built with embedding model {stored_model!r}, "
                f"not {embedding_model!r}: use another NEWSQA_INDEX or NEWSQA_COLLECTION, or the "
                "model it was built with (NEWSQA_EMBEDDING_MODEL)"
            )
        self._embedding_model = embedding_model
        # A server's collection is shared by many machines; each keeps its lexical cache locally.
        where = settings.index / "lexical" / (short_hash(settings.chroma_url) if settings.chroma_url else "local")
        self._lexical_folder = where / settings.collection
        self._lexical: LexicalIndex | None = None
        self._revision: tuple[float, str] | None = None  # (when read, revision)
        self._lexical_lock = threading.Lock()  # held by the one thread bringing the BM25 index up to date
        # Processes writing to one embedded Chroma store at once lose vectors (the chunks' records kept,
        # their vectors gone: 296 of 1,800 chunks with three ingests), so writers take turns on this
        # lock. A server serializes writes itself; its lock, kept in this machine's index folder, still
        # keeps two ingests from here from classifying the same articles at once.
        self._lock_file = settings.index / (
            "write.lock"
            if not settings.chroma_url
            else f"write-{short_hash(settings.chroma_url)}-{settings.collection}.lock"
        )
        # Also the most ids or values any one request names: SQLite refuses a statement with more than
        # 32,766 variables, and Chroma turns a listed id, a listed value or a returned record into one.
        self._batch = self._client.get_max_batch_size()

    # -- revision: bumped around every write, so readers can tell the collection has changed

    def revision(self) -> str:
        now = time.monotonic()
        if self._revision is None or now - self._revision[0] > REVISION_TTL_SECONDS:
            # By id: a Chroma server answers lookups by name from a cache for a few seconds, which
            # would hide another client's write for that long.
            collection = self._client.get_collection_by_id(self._collection.id, embedding_function=None)
            self._revision = (now, (collection.metadata or {}).get("revision", ""))
        return self._revision[1]

    def _bump_revision(self) -> None:
        revision = uuid.uuid4().hex
        self._collection.modify(metadata={"embedding_model": self._embedding_model, "revision": revision})
        self._revision = (time.monotonic(), revision)  # this process sees its own writes at once

    # -- writes, each run (an ingest, a removal) holding the writer lock

    @contextmanager
    def writing(self, wait: bool = True) -> Iterator[None]:
        """Hold the writer lock for a run of writes; another writer waits for it (saying so once on
        stderr), or with `wait` false raises IndexBusy. Readers never take it."""
        if self.read_only:
            raise RuntimeError(f"the index at {self._index_folder} is read-only: it can be read, not changed")
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self._lock_file)  # one per run: threads of one process (the page) take turns too
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise IndexBusy(
                    f"another ingest or remove is writing to this index (lock {self._lock_file}); "
                    "try again when it has finished"
                ) from None
            print("waiting for another ingest to finish", file=sys.stderr, flush=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def write(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        """Store the chunks of whole articles, then drop any older chunk those articles had."""
        if not chunks:
            return
        self._bump_revision()
        for start in range(0, len(chunks), self._batch):
            part = chunks[start : start + self._batch]
            self._collection.upsert(
                ids=[c.id for c in part],
                embeddings=embeddings[start : start + self._batch],
                documents=[c.text for c in part],
                metadatas=[chunk_metadata(c) for c in part],
            )
        keep = {c.id for c in chunks}
        article_ids = sorted({c.article.id for c in chunks})
        self._delete([i for i in self._chunk_ids(article_ids) if i not in keep])
        self._bump_revision()

    def remove(self, article_id: str) -> int:
        """Delete an article's chunks; the number deleted."""
        ids = self._chunk_ids([article_id])
        if ids:
            self._bump_revision()
            self._delete(ids)
            self._bump_revision()
        return len(ids)

    def _delete(self, ids: list[str]) -> None:
        for part in self._parts(ids):
            self._collection.delete(ids=part)

    # -- reads, each request naming and returning at most a page (`_batch`) of records

    def _parts(self, values: Sequence) -> Iterator[list]:
        for start in range(0, len(values), self._batch):
            yield list(values[start : start + self._batch])

    def _pages(self, include: list[str], where: dict | None = None) -> Iterator[dict]:
        """The records `where` admits (all when None), as Chroma `get` results of a page each."""
        offset = 0
        while True:
            page = self._collection.get(where=where, include=include, limit=self._batch, offset=offset)
            yield page
            if len(page["ids"]) < self._batch:
                return
            offset += self._batch

    def _metadatas(self, where: dict) -> Iterator[dict]:
        for page in self._pages(["metadatas"], where):
            yield from page["metadatas"]

    def _chunk_ids(self, article_ids: list[str]) -> list[str]:
        return [
            i
            for part in self._parts(article_ids)
            for page in self._pages([], {"article_id": {"$in": part}})
            for i in page["ids"]
        ]

    def complete_articles(self, article_ids: list[str]) -> dict[str, str]:
        """Of these articles, those stored whole: id to content hash. An article whose chunks are
        missing, of mixed versions (a write cut short) or without their vector is left out, so it gets
        written again."""
        chunks: dict[str, list[dict]] = {}
        chunk_ids: dict[str, list[str]] = {}
        for part in self._parts(article_ids):
            for page in self._pages(["metadatas"], {"article_id": {"$in": part}}):
                for chunk_id, metadata in zip(page["ids"], page["metadatas"]):
                    chunks.setdefault(metadata["article_id"], []).append(metadata)
                    chunk_ids.setdefault(metadata["article_id"], []).append(chunk_id)
        # Chunks written before the `dated` field count as incomplete: ingesting again adds it.
        complete = {
            article_id: stored[0]["content_hash"]
            for article_id, stored in chunks.items()
            if len({m["content_hash"] for m in stored}) == 1
            and all("dated" in m for m in stored)
            and sorted(m["chunk_index"] for m in stored) == list(range(stored[0]["chunk_count"]))
        }
        vectorless = set(self._without_vector([i for a in complete for i in chunk_ids[a]]))
        return {a: h for a, h in complete.items() if vectorless.isdisjoint(chunk_ids[a])}

    def chunks_without_vector(self) -> list[StoredChunk]:
        """Every chunk Chroma holds without its vector (a chunk other writers' writes lost)."""
        ids = [i for page in self._pages([]) for i in page["ids"]]
        return self.chunks(self._without_vector(ids))

    def _without_vector(self, ids: list[str]) -> list[str]:
        """Of these chunk ids, those whose vector Chroma cannot read. Chroma 1.5 fails a whole request
        (InternalError: Error finding id / Error getting embedding) when one of its records has none,
        so a failed part is halved until the culprits are alone."""
        missing = []
        for part in self._parts(ids):
            try:
                self._collection.get(ids=part, include=["embeddings"])
            except InternalError:
                if len(part) == 1:
                    missing += part
                else:
                    half = len(part) // 2
                    missing += self._without_vector(part[:half]) + self._without_vector(part[half:])
        return missing

    def articles_with_content(self, content_hashes: list[str]) -> dict[str, str]:
        """For each content hash already indexed, the id of the article holding it."""
        return {
            m["content_hash"]: m["article_id"]
            for part in self._parts(content_hashes)
            for m in self._metadatas({"$and": [{"content_hash": {"$in": part}}, {"chunk_index": 0}]})
        }

    def articles(self) -> list[StoredArticle]:
        return sorted(
            map(stored_article, self._metadatas({"chunk_index": 0})),
            key=lambda a: (a.published or date.min, a.title),
            reverse=True,
        )

    def find_articles(self, key: str) -> list[StoredArticle]:
        """Articles whose id, file name, origin (path or URL) or URL is `key`."""
        matches = []
        for field in ("article_id", "file", "origin", "url"):
            result = self._collection.get(where={"$and": [{field: key}, {"chunk_index": 0}]}, include=["metadatas"])
            matches.extend(stored_article(m) for m in result["metadatas"])
        return list({a.id: a for a in matches}.values())

    def article_chunks(self, article_id: str) -> list[StoredChunk]:
        """The chunks of the article with this id; none when no such article is indexed."""
        return self.chunks(self._chunk_ids([article_id]))

    def count(self) -> int:
        return self._collection.count()

    def all_chunks(self) -> Iterator[StoredChunk]:
        """Every chunk in the collection, read a page at a time."""
        for page in self._pages(["documents", "metadatas"]):
            yield from map(StoredChunk, page["ids"], page["documents"], page["metadatas"])

    def chunks(self, ids: Sequence[str]) -> list[StoredChunk]:
        by_id = {}
        for part in self._parts(ids):  # no request for an empty list: Chroma refuses one
            result = self._collection.get(ids=part, include=["documents", "metadatas"])
            by_id.update(
                (i, StoredChunk(i, d, m)) for i, d, m in zip(result["ids"], result["documents"], result["metadatas"])
            )
        return [by_id[i] for i in ids if i in by_id]

    # -- retrieval reads: `where` is a Chroma metadata filter, so every side is filtered alike

    def dense(self, embedding: np.ndarray, k: int, where: dict | None = None) -> list[tuple[str, float]]:
        """Chunk ids and cosine similarities to `embedding`, best first, among the chunks `where` admits."""
        if where is not None:
            # Judged on the fields the lexical index keeps when it can: reading the candidates'
            # metadata from Chroma took ten times as long as the search itself.
            lexical = self.lexical()
            mask = lexical.admitting(where)
            include = ["distances"] if mask is not None else ["distances", "metadatas"]
            total, wanted = self.count(), k * OVERSAMPLE
            while True:
                wanted = min(wanted, total)
                result = self._collection.query(query_embeddings=[embedding], n_results=wanted, include=include)
                ids, distances = result["ids"][0], result["distances"][0]
                kept = (
                    lexical.admitted(ids, mask)
                    if mask is not None
                    else [admits(where, m) for m in result["metadatas"][0]]
                )
                hits = [(i, 1.0 - d) for i, d, keep in zip(ids, distances, kept) if keep]
                if len(hits) >= k or wanted >= total:
                    return hits[:k]
                if wanted >= OVERSAMPLE_LIMIT:
                    break
                wanted *= OVERSAMPLE
        result = self._collection.query(query_embeddings=[embedding], n_results=k, where=where, include=["distances"])
        return [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0])]

    def admits_any(self, where: dict) -> bool:
        """Whether `where` admits at least one chunk."""
        return bool(self._collection.get(where=where, include=[], limit=1)["ids"])

    def ids_if_few(self, where: dict) -> set[str] | None:
        """Ids of the chunks `where` admits when they fit in one page, else None."""
        ids = self._collection.get(where=where, include=[], limit=self._batch)["ids"]
        return set(ids) if len(ids) < self._batch else None

    def admitted(self, ids: Sequence[str], where: dict) -> set[str]:
        """Of these chunk ids, those `where` admits (their metadata read by id, and judged here)."""
        admitted = set()
        for part in self._parts(ids):
            result = self._collection.get(ids=part, include=["metadatas"])
            admitted.update(i for i, m in zip(result["ids"], result["metadatas"]) if admits(where, m))
        return admitted

    # -- lexical index

    def lexical(self) -> LexicalIndex:
        """The BM25 index, as of the collection's current revision. While one thread brings it up to
        date, the others go on with the one before (a few chunks behind, as between two reads of the
        revision) rather than wait for it or rebuild it too: questions asked while a followed feed is
        written raced to rebuild and save it, and failed."""
        revision = self.revision()
        current = self._lexical
        if current is not None and current.revision == revision:
            return current
        if not self._lexical_lock.acquire(blocking=current is None):
            return current
        try:
            if self._lexical is None or self._lexical.revision != revision:
                saved = LexicalIndex.load(self._lexical_folder)
                self._lexical = saved if saved and saved.revision == revision else self._rebuild_lexical(revision)
            return self._lexical
        finally:
            self._lexical_lock.release()

    def _rebuild_lexical(self, revision: str) -> LexicalIndex:
        lexical = LexicalIndex.build(
            revision, ((c.id, f"{c.metadata['title']}\n{c.text}", c.metadata) for c in self.all_chunks())
        )
        try:
            lexical.save(self._lexical_folder)
        except OSError:  # another process swapped in its copy at the same moment; this one is only a cache
            pass
        return lexical
