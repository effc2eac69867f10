"""Hybrid retrieval: embedding and BM25 candidates, fused by reciprocal rank (each side weighted by
its confidence on the question), filtered by date and source, merged into passages.

1. Time. app/timeframe.py resolves the question's time phrases against its as-of date. A period the
   question names ("this week", "in March") only moves the articles published in or near it up the
   ranking (a ranking by distance in days joins the fusion at TIME_WEIGHT): news of an event is
   often published days before the week a quiz asks about, and a cut there emptied results the
   question would otherwise have. "Recently", "latest" join a newest-first ranking the same way.
2. Filters: one Chroma `where` shared by both sides. A source is the indexed source of that name,
   else every source whose name contains it, case ignored. `since`/`until` are strict (an undated
   article is not "since March"); the as-of date is not: it drops dated articles published after it
   and keeps undated ones, and when no dated article lies after it (asked as of today) no date
   filter is sent at all. The filter names bounds, never lists of days or ids, so its size does not
   grow with the index (SQLite, under Chroma, refuses more than 32,766 variables a statement).
3. Candidates, `retrieval_depth` a side. Under a filter both sides judge chunks on the publication
   day and source the lexical index keeps (a mask of the BM25 search itself; the nearest dense
   chunks, oversampled): reading their metadata from Chroma took ten times as long as the search. A
   filter on another field is judged on Chroma's metadata, BM25 searched ever deeper. A question word
   the index lacks but one typo away from one it holds ("Masschusetts") is corrected, and BM25
   candidates for the corrected question join as a third side, beside the question as typed, not
   instead of it: a "correction" of a word the articles just do not use is a guess.
4. Fusion: weighted reciprocal rank, each side's weight times its confidence (how far its best score
   stands above its 10th): a BM25 ranking that matched only common words is flat, and then the
   embeddings lead. Our own few lines rather than LangChain's EnsembleRetriever, which fuses ranks
   with fixed weights and cannot give both sides one `where`.
5. Passages: walking down the fused ranking, a chunk next to one already taken from the same article
   joins its passage (up to `passage_chunks`) instead of taking a place; the overlap between chunks
   is told once, using their offsets, so `passage.text == body[passage.start:passage.end]`.

eval/README.md has the figures (`python -m eval.bench.compare_retrieval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from app.documents import Filters, Passage
from app.embedding import Embedder
from app.index import OVERSAMPLE_LIMIT, Index, StoredChunk, article_fields, day_number
from app.settings import Settings
from app.timeframe import TimeFrame, resolve

MODES = ("hybrid", "dense", "lexical")
# How a side's confidence is read: its best score against its score at this rank.
CONFIDENCE_RANK = 10
# Weight of a ranking by date (newest first when a question asks for recent news, nearest to the
# period it names otherwise) in the fusion: enough to order equally relevant passages by date, not
# to bring up irrelevant ones. On realtimeqa_2022 the named period as a preference at 0.5 took
# hit@5 from 0.984 (ignored) to 0.991, and cutting at it gave 0.902 (eval/README.md).
TIME_WEIGHT = 0.5


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: float = 60.0
) -> list[tuple[str, float]]:
    """Items of several rankings (best first) by the sum of weight / (k + rank); ties keep the order
    in which the items were first met."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def confidence(scored: Sequence[tuple[str, float]], rank: int = CONFIDENCE_RANK) -> float:
    """How far a ranking's best score stands above its score at `rank`, relative to the best: near 1
    when one candidate stands out, near 0 when all look alike (the side is guessing). A side with
    one candidate, or with scores that cannot be compared this way, counts as sure."""
    if len(scored) < 2 or scored[0][1] <= 0:
        return 1.0
    best, lower = scored[0][1], scored[min(rank, len(scored)) - 1][1]
    return (best - lower) / best


def fuse(
    dense: Sequence[tuple[str, float]],
    lexical: Sequence[tuple[str, float]],
    *,
    depth: int,
    rrf_k: float,
    lexical_weight: float,
    corrected: Sequence[tuple[str, float]] = (),
) -> list[tuple[str, float]]:
    """Embedding and BM25 candidates (id, score; best first) into one ranking.

    The first `depth` of each side are fused by reciprocal rank, each side weighted by its
    confidence on this query: a BM25 ranking that matched only common words is flat, and then the
    embeddings lead. `corrected`, BM25 candidates for the query with its typos corrected, joins as
    a third side weighted like BM25: beside the query as typed, not instead of it, since a
    "correction" of a word the articles just do not use is a guess. Deeper candidates (there when
    many passages are asked for) follow in their own fused order, never above those."""
    weights = [confidence(dense), lexical_weight * confidence(lexical), lexical_weight * confidence(corrected)]
    rankings = [[i for i, _ in side] for side in (dense, lexical, corrected)]
    head = reciprocal_rank_fusion([ranking[:depth] for ranking in rankings], weights, rrf_k)
    taken = {i for i, _ in head}
    floor = head[-1][1] if head else 0.0
    tail = [(i, min(score, floor)) for i, score in reciprocal_rank_fusion(rankings, weights, rrf_k) if i not in taken]
    return head + tail


def matching_sources(wanted: str, known: Sequence[str]) -> list[str]:
    """The indexed sources a user means by `wanted`: the one of that name, else every one whose name
    contains it, ignoring case ("voice of america" finds "Voice of America (voanews.com)")."""
    folded = wanted.strip().casefold()
    exact = [name for name in known if name.casefold() == folded]
    return exact or [name for name in known if folded in name.casefold()]


@dataclass(frozen=True)
class Window:
    """Publication days kept by the "as of" date: dated chunks outside it are left out, undated ones
    kept."""

    earliest: int | None  # YYYYMMDD; None: no lower bound
    latest: int

    @classmethod
    def of(cls, as_of: date) -> Window:
        return cls(None, day_number(as_of))

    def inside(self) -> list[dict]:
        lower = [] if self.earliest is None else [{"published_day": {"$gte": self.earliest}}]
        return lower + [{"published_day": {"$lte": self.latest}}]

    def outside(self) -> dict:
        """The `where` of dated chunks outside the window."""
        later = {"published_day": {"$gt": self.latest}}
        return later if self.earliest is None else {"$or": [{"published_day": {"$lt": self.earliest}}, later]}


def _all(clauses: list[dict]) -> dict | None:
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def metadata_filter(
    *, sources: Sequence[str] = (), since: date | None = None, until: date | None = None, window: Window | None = None
) -> dict | None:
    """The Chroma `where` for the sources and the publication bounds, strict (undated chunks have no
    `published_day`, so `$gte`/`$lte` leave them out), and a window that keeps undated chunks."""
    clauses: list[dict] = []
    if sources:
        clauses.append({"source": {"$in": list(sources)}})
    if since:
        clauses.append({"published_day": {"$gte": day_number(since)}})
    if until:
        clauses.append({"published_day": {"$lte": day_number(until)}})
    if window is not None:
        clauses.append({"$or": [{"dated": False}, _all(window.inside())]})
    return _all(clauses)


@dataclass
class _Group:
    """Chunks of one article with consecutive chunk numbers, becoming one passage."""

    chunks: list[StoredChunk]
    score: float

    @property
    def article_id(self) -> str:
        return self.chunks[0].metadata["article_id"]

    @property
    def first(self) -> int:
        return min(c.metadata["chunk_index"] for c in self.chunks)

    @property
    def last(self) -> int:
        return max(c.metadata["chunk_index"] for c in self.chunks)

    def touches(self, chunk: StoredChunk) -> bool:
        index = chunk.metadata["chunk_index"]
        return chunk.metadata["article_id"] == self.article_id and (index == self.first - 1 or index == self.last + 1)

    def adjoins(self, other: _Group) -> bool:
        return other.article_id == self.article_id and (other.first == self.last + 1 or other.last == self.first - 1)


def merge_text(chunks: Sequence[StoredChunk]) -> tuple[str, int, int]:
    """The text of consecutive chunks of one article, their overlap told once, with its offsets.

    Chunks repeat the last sentences of the one before (the overlap); the offsets say where. A gap
    between chunks holds only the white space between sentences, kept as spaces so that the offsets
    stay true."""
    ordered = sorted(chunks, key=lambda c: c.metadata["chunk_index"])
    text = ordered[0].text
    start, end = ordered[0].metadata["char_start"], ordered[0].metadata["char_end"]
    for chunk in ordered[1:]:
        chunk_start, chunk_end = chunk.metadata["char_start"], chunk.metadata["char_end"]
        if chunk_end <= end:
            continue
        if chunk_start <= end:
            text += chunk.text[end - chunk_start :]
        else:
            text += " " * (chunk_start - end) + chunk.text
        end = chunk_end
    return text, start, end


def merge_passages(ranked: Sequence[tuple[StoredChunk, float]], k: int, max_chunks: int) -> list[Passage]:
    """The top k passages from chunks ranked best first: a chunk next to one already taken from the
    same article joins it (up to `max_chunks` a passage) instead of taking a place of its own."""
    groups: list[_Group] = []
    for chunk, score in ranked:
        home = next((g for g in groups if len(g.chunks) < max_chunks and g.touches(chunk)), None)
        if home is not None:
            home.chunks.append(chunk)
            # A chunk can close the gap between two passages of its article: they become one.
            other = next(
                (
                    g
                    for g in groups
                    if g is not home and home.adjoins(g) and len(g.chunks) + len(home.chunks) <= max_chunks
                ),
                None,
            )
            if other is not None:
                home.chunks.extend(other.chunks)
                groups.remove(other)
        elif len(groups) < k:
            groups.append(_Group([chunk], score))
        else:
            break
    return [_passage(group, rank) for rank, group in enumerate(groups, start=1)]


def _passage(group: _Group, rank: int) -> Passage:
    metadata = group.chunks[0].metadata
    text, start, end = merge_text(group.chunks)
    return Passage(
        chunk_ids=tuple(c.id for c in sorted(group.chunks, key=lambda c: c.metadata["chunk_index"])),
        article_id=metadata["article_id"],
        **article_fields(metadata),
        text=text,
        start=start,
        end=end,
        score=group.score,
        rank=rank,
    )


class Retriever:
    def __init__(self, settings: Settings, index: Index, embedder: Embedder):
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self._sources: tuple[str, list[str]] | None = None  # (index revision, source names)
        self._windows: tuple[str, dict[Window, bool]] = ("", {})  # (index revision, window: leaves any out)

    def retrieve(
        self,
        question: str,
        as_of: date | None = None,
        filters: Filters | None = None,
        k: int | None = None,
        mode: str | None = None,
    ) -> list[Passage]:
        """The k passages that best match the question among the articles published by `as_of`
        (default today) that the filters and the question's own time phrases admit."""
        if not question.strip():
            raise ValueError("the question is empty")
        k = self.settings.top_k if k is None else k
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        mode = mode or self.settings.retrieval
        if mode not in MODES:
            raise ValueError(f"retrieval mode must be one of {', '.join(MODES)}, not {mode!r}")
        as_of = as_of or date.today()
        frame = resolve(question, as_of)
        filters = filters or Filters()
        if filters.since and filters.until and filters.since > filters.until:
            raise ValueError(f"since ({filters.since}) is after until ({filters.until})")
        sources = matching_sources(filters.source, self.sources()) if filters.source else []
        if filters.source and not sources:
            return []
        # Only the "as of" date cuts: the question's own time phrases are a preference (news of an
        # event "this week" is often published the week before; "two years ago" may date the
        # background, not the news).
        window = Window.of(as_of)
        where = metadata_filter(
            sources=sources,
            since=filters.since,
            until=filters.until,
            window=window if self._leaves_out_any(window) else None,
        )
        max_chunks = self.settings.passage_chunks
        reach = k * max_chunks  # enough chunks to fill k passages, however they merge
        ranked = self.rank(frame.query, where, mode, reach)
        if frame.window:
            ranked = self._prefer_period(ranked, frame)
        if frame.recent:
            ranked = self._prefer_recent(ranked)
        top = ranked[:reach]
        chunks = {c.id: c for c in self.index.chunks([chunk_id for chunk_id, _ in top])}
        return merge_passages([(chunks[i], s) for i, s in top if i in chunks], k, max_chunks)

    def sources(self) -> list[str]:
        """The source names of the indexed articles, read once a revision of the index."""
        revision = self.index.revision()
        if self._sources is None or self._sources[0] != revision:
            self._sources = (revision, sorted({a.source for a in self.index.articles() if a.source}))
        return self._sources[1]

    def _leaves_out_any(self, window: Window) -> bool:
        """Whether some dated chunk lies outside the window, read once a revision of the index: most
        questions are asked as of today about older news, and then filtering would only cost time."""
        revision = self.index.revision()
        if self._windows[0] != revision:
            self._windows = (revision, {})
        known = self._windows[1]
        if window not in known:
            known[window] = self.index.admits_any(window.outside())
        return known[window]

    def rank(self, query: str, where: dict | None, mode: str, reach: int) -> list[tuple[str, float]]:
        """At least `reach` chunk ids (as many as there are) and their scores, best first: one
        side's own scores, or fused scores when hybrid."""
        depth = max(self.settings.retrieval_depth, reach)
        if mode == "dense":
            return self._dense(query, depth, where)
        if mode == "lexical":
            return self._lexical(query, depth, where)
        settings = self.settings
        corrected = self.index.lexical().corrected(query)
        return fuse(
            self._dense(query, depth, where),
            self._lexical(query, depth, where),
            depth=settings.retrieval_depth,
            rrf_k=settings.rrf_k,
            lexical_weight=settings.lexical_weight,
            corrected=self._lexical(corrected, depth, where) if corrected else (),
        )

    def _dense(self, query: str, depth: int, where: dict | None) -> list[tuple[str, float]]:
        return self.index.dense(self.embedder.encode([query])[0], depth, where)

    def _lexical(self, query: str | list[str], depth: int, where: dict | None) -> list[tuple[str, float]]:
        lexical = self.index.lexical()
        if where is None:
            return lexical.search(query, depth)
        mask = lexical.admitting(where)
        if mask is not None:
            return lexical.search(query, depth, mask)
        # The best admitted hits may lie deep: search ever deeper until `depth` of them pass, checking
        # only the new hits. Once the search is deep, a filter that admits few chunks is read whole
        # instead (a narrow filter would otherwise have every hit checked).
        few: set[str] | None = None
        kept: list[tuple[str, float]] = []
        checked: set[str] = set()
        reach = depth
        while True:
            hits = lexical.search(query, reach)
            new = [(i, s) for i, s in hits if i not in checked]
            admitted = few if few is not None else self.index.admitted([i for i, _ in new], where)
            kept += [(i, s) for i, s in new if i in admitted]
            checked.update(i for i, _ in new)
            if len(kept) >= depth or len(hits) < reach:
                return sorted(kept, key=lambda hit: -hit[1])[:depth]
            reach *= 4
            if few is None and reach > OVERSAMPLE_LIMIT:
                few = self.index.ids_if_few(where)

    def _published_days(self, ranked: list[tuple[str, float]]) -> dict[str, int]:
        """The publication day (YYYYMMDD) of each dated chunk of the ranking, in its order, read from
        the lexical index (no round trip to Chroma)."""
        ids = [i for i, _ in ranked]
        return {i: day for i, day in zip(ids, self.index.lexical().days_of(ids)) if day}

    def _prefer_period(self, ranked: list[tuple[str, float]], frame: TimeFrame) -> list[tuple[str, float]]:
        """Fuse the ranking with one of the same chunks by their distance in days from the period
        the question names (inside it first, undated ones last)."""
        since = frame.since.toordinal() if frame.since else None
        until = frame.until.toordinal() if frame.until else None

        def distance(day: int) -> int:
            ordinal = date(day // 10000, day // 100 % 100, day % 100).toordinal()
            return max(0, (since - ordinal) if since else 0, (ordinal - until) if until else 0)

        days = self._published_days(ranked)
        nearest = sorted(days, key=lambda i: distance(days[i]))
        return reciprocal_rank_fusion([[i for i, _ in ranked], nearest], [1.0, TIME_WEIGHT], self.settings.rrf_k)

    def _prefer_recent(self, ranked: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """Fuse the ranking with a newest-first ranking of the same chunks (undated ones last)."""
        days = self._published_days(ranked)
        newest = sorted(days, key=lambda i: -days[i])
        return reciprocal_rank_fusion([[i for i, _ in ranked], newest], [1.0, TIME_WEIGHT], self.settings.rrf_k)
