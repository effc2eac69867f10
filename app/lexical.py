"""The lexical (BM25) side of the index, built from the Chroma collection and saved beside it.

Chroma's own sparse index exists only in Chroma Cloud, so BM25 lives here (bm25s). It is a cache
of the collection: it records the collection revision it was built from, and is rebuilt whenever
the collection has moved on, so it cannot drift out of step even after a crash or another writer.

It also keeps, for each chunk, the two fields filters name (publication day and source), so that a
filtered BM25 search is one masked search instead of checking hits against Chroma batch by batch.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from rapidfuzz import process
from rapidfuzz.distance import OSA

_STEMMER = Stemmer.Stemmer("english")
# Texts tokenised at a time while building: enough to keep the tokeniser busy, few enough that a
# page of texts is small beside the index itself.
BUILD_PAGE = 5000
# Shorter terms are not corrected: one typo away from a short word lies another real word.
SHORTEST_CORRECTED = 4


_COMPARE = {"$eq": np.equal, "$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}


def _day_test(index: LexicalIndex, operation: str, operand) -> np.ndarray:
    return (index.days > 0) & _COMPARE[operation](index.days, operand)  # undated chunks have no day


def _dated_test(index: LexicalIndex, operation: str, operand) -> np.ndarray:
    return _COMPARE[operation](index.days > 0, operand)


def _source_test(index: LexicalIndex, operation: str, operand) -> np.ndarray:
    wanted = operand if operation == "$in" else [operand] if operation == "$eq" else None
    if wanted is None:
        raise KeyError(operation)
    codes = [n for n, name in enumerate(index.source_names) if name in wanted]
    return np.isin(index.sources, codes)


# The fields filters name, with how each is tested; a field not here is judged by Chroma.
_FIELD_TESTS = {"published_day": _day_test, "dated": _dated_test, "source": _source_test}


def tokenize(texts: list[str], *, as_ids: bool):
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=as_ids, show_progress=False)


# Question words the tokenizer keeps: they say what is asked, not what about.
QUESTION_WORDS = frozenset(tokenize(["who whom whose what when where why how which many much"], as_ids=False)[0])


@dataclass
class LexicalIndex:
    revision: str
    ids: list[str]
    bm25: bm25s.BM25 | None  # None when the collection is empty
    days: np.ndarray  # per chunk: its publication day as YYYYMMDD, 0 when undated
    source_names: list[str]
    sources: np.ndarray  # per chunk: its source as a position in source_names

    @classmethod
    def build(cls, revision: str, documents: Iterable[tuple[str, str, dict]]) -> LexicalIndex:
        """From (chunk id, text, metadata) triples, taken and tokenised a page at a time: only the
        token ids of the texts read so far are kept (a small array each), never all the texts at once."""
        ids: list[str] = []
        token_ids: list[np.ndarray] = []
        vocabulary: dict[str, int] = {}
        days: list[int] = []
        source_codes: dict[str, int] = {}
        sources: list[int] = []
        triples = iter(documents)
        while page := list(islice(triples, BUILD_PAGE)):
            ids += [chunk_id for chunk_id, _, _ in page]
            days += [metadata.get("published_day", 0) for _, _, metadata in page]
            sources += [
                source_codes.setdefault(metadata.get("source", ""), len(source_codes)) for _, _, metadata in page
            ]
            for tokens in tokenize([text for _, text, _ in page], as_ids=False):
                token_ids.append(
                    np.fromiter(
                        (vocabulary.setdefault(t, len(vocabulary)) for t in tokens), dtype=np.int32, count=len(tokens)
                    )
                )
        fields = (np.array(days, dtype=np.int32), list(source_codes), np.array(sources, dtype=np.int32))
        if not ids:
            return cls(revision, [], None, *fields)
        bm25 = bm25s.BM25()
        bm25.index((token_ids, vocabulary), show_progress=False)
        return cls(revision, ids, bm25, *fields)

    def search(self, query: str | list[str], k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores for a query (text, or terms as `tokenize` makes them), best
        first; chunks sharing no term with the query, or left out by `mask` (see `admitting`), are
        left out."""
        if self.bm25 is None or k <= 0:
            return []
        terms = tokenize([query], as_ids=False)[0] if isinstance(query, str) else query
        if not terms:
            return []
        documents, scores = self.bm25.retrieve(
            [terms],
            k=min(k, len(self.ids)),
            show_progress=False,
            n_threads=1,
            weight_mask=None if mask is None else mask.astype(np.float32),
        )
        return [(self.ids[d], float(s)) for d, s in zip(documents[0], scores[0]) if s > 0]

    def admitting(self, where: dict) -> np.ndarray | None:
        """Per chunk, whether Chroma's `where` admits it, judged on the fields kept here (as
        app.index.admits judges them: a missing field fails every condition on it); None when
        `where` names another field or operator."""
        try:
            return self._admitting(where)
        except KeyError:
            return None

    def admitted(self, ids: Sequence[str], mask: np.ndarray) -> list[bool]:
        """Whether each chunk id is admitted by `mask` (from `admitting`); an id this index does not
        hold (written since it was built) is not."""
        rows = self._rows
        return [i in rows and bool(mask[rows[i]]) for i in ids]

    def days_of(self, ids: Sequence[str]) -> list[int]:
        """Each chunk's publication day as YYYYMMDD; 0 when undated or not held here."""
        rows = self._rows
        return [int(self.days[rows[i]]) if i in rows else 0 for i in ids]

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {chunk_id: row for row, chunk_id in enumerate(self.ids)}

    def _admitting(self, where: dict) -> np.ndarray:
        admitted = np.ones(len(self.ids), dtype=bool)
        for key, condition in where.items():
            if key in ("$and", "$or"):
                parts = [self._admitting(clause) for clause in condition]
                admitted &= np.logical_and.reduce(parts) if key == "$and" else np.logical_or.reduce(parts)
                continue
            ((operation, operand),) = condition.items() if isinstance(condition, dict) else (("$eq", condition),)
            admitted &= _FIELD_TESTS[key](self, operation, operand)
        return admitted

    @cached_property
    def _terms(self) -> list[str]:
        return list(self.bm25.vocab_dict) if self.bm25 is not None else []

    def corrected(self, query: str) -> list[str] | None:
        """The query's terms with each one the index lacks replaced by an indexed term one typo away
        (a letter added, dropped, changed, or two neighbours swapped: most misspellings), or None
        when no term was replaced."""
        if self.bm25 is None:
            return None
        terms, changed = tokenize([query], as_ids=False)[0], False
        for n, term in enumerate(terms):
            if term in self.bm25.vocab_dict or len(term) < SHORTEST_CORRECTED:
                continue
            match = process.extractOne(term, self._terms, scorer=OSA.distance, score_cutoff=1)
            if match:
                terms[n], changed = match[0], True
        return terms if changed else None

    def save(self, folder: Path) -> None:
        """Written beside the target and swapped in, so a crash leaves the old copy or none, never half.
        The copies being written are this process's own: two processes saving at once (a writer and the
        chat page) do not write into each other's; OSError when the other one swapped its copy in first."""
        own = f"{os.getpid()}-{threading.get_ident()}"
        staging, old = folder.with_name(f"{folder.name}.new-{own}"), folder.with_name(f"{folder.name}.old-{own}")
        try:
            staging.mkdir(parents=True)
            if self.bm25 is not None:
                self.bm25.save(staging / "bm25", show_progress=False)
            np.save(staging / "ids.npy", np.array(self.ids, dtype=str))
            np.savez(
                staging / "fields.npz",
                days=self.days,
                sources=self.sources,
                source_names=np.array(self.source_names, dtype=str),
            )
            (staging / "revision.json").write_text(json.dumps({"revision": self.revision}))
            if folder.exists():
                folder.rename(old)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none or it cannot be read (it is then rebuilt)."""
        try:
            revision = json.loads((folder / "revision.json").read_text())["revision"]
            ids = np.load(folder / "ids.npy").tolist()
            bm25 = bm25s.BM25.load(folder / "bm25", show_progress=False) if ids else None
            with np.load(folder / "fields.npz") as fields:  # an index saved before fields were kept has none
                days, sources, source_names = fields["days"], fields["sources"], fields["source_names"].tolist()
        except (OSError, ValueError, KeyError):
            return None
        return cls(revision, ids, bm25, days, source_names, sources)
