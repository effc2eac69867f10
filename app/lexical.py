"""The lexical (BM25) side of the index, built from the Chroma collection and saved beside it.

Chroma's own sparse index exists only in Chroma Cloud, so BM25 lives here (bm25s). It is a cache
of the collection: it records the collection revision it was built from, and is rebuilt whenever
the collection has moved on, so it cannot drift out of step even after a crash or another writer.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
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


def tokenize(texts: list[str], *, as_ids: bool):
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=as_ids, show_progress=False)


@dataclass
class LexicalIndex:
    revision: str
    ids: list[str]
    bm25: bm25s.BM25 | None  # None when the collection is empty

    @classmethod
    def build(cls, revision: str, documents: Iterable[tuple[str, str]]) -> LexicalIndex:
        """From (chunk id, text) pairs, taken and tokenised a page at a time: only the token ids of
        the texts read so far are kept (a small array each), never all the texts at once."""
        ids: list[str] = []
        token_ids: list[np.ndarray] = []
        vocabulary: dict[str, int] = {}
        pairs = iter(documents)
        while page := list(islice(pairs, BUILD_PAGE)):
            ids += [chunk_id for chunk_id, _ in page]
            for tokens in tokenize([text for _, text in page], as_ids=False):
                token_ids.append(np.fromiter((vocabulary.setdefault(t, len(vocabulary)) for t in tokens),
                                             dtype=np.int32, count=len(tokens)))
        if not ids:
            return cls(revision, [], None)
        bm25 = bm25s.BM25()
        bm25.index((token_ids, vocabulary), show_progress=False)
        return cls(revision, ids, bm25)

    def search(self, query: str | list[str], k: int) -> list[tuple[str, float]]:
        """Chunk ids and BM25 scores for a query (text, or terms as `tokenize` makes them), best
        first; chunks sharing no term with the query are left out."""
        if self.bm25 is None or k <= 0:
            return []
        terms = tokenize([query], as_ids=False)[0] if isinstance(query, str) else query
        if not terms:
            return []
        documents, scores = self.bm25.retrieve([terms], k=min(k, len(self.ids)), show_progress=False, n_threads=1)
        return [(self.ids[d], float(s)) for d, s in zip(documents[0], scores[0]) if s > 0]

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
        """Written beside the target and swapped in, so a crash leaves the old copy or none, never half."""
        staging = folder.with_name(folder.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if self.bm25 is not None:
            self.bm25.save(staging / "bm25", show_progress=False)
        np.save(staging / "ids.npy", np.array(self.ids, dtype=str))
        (staging / "revision.json").write_text(json.dumps({"revision": self.revision}))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none or it cannot be read (it is then rebuilt)."""
        try:
            revision = json.loads((folder / "revision.json").read_text())["revision"]
            ids = np.load(folder / "ids.npy").tolist()
            bm25 = bm25s.BM25.load(folder / "bm25", show_progress=False) if ids else None
        except (OSError, ValueError, KeyError):
            return None
        return cls(revision, ids, bm25)
