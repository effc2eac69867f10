"""The ingest run: sources in, articles classified, chunked, embedded and written, a report out.

Identity: an article is known by its origin (its URL, else its file, plus the record number of a
JSON record or the entry id of a linkless feed entry), and its content by a hash of title and text.
Each gets one status:
- `added`: an origin first seen;
- `unchanged`: same origin, same content; nothing is embedded or written, so a second run costs
  seconds;
- `updated`: same origin, new content; the new chunks are written before the old ones are deleted;
- `duplicate`: the content of an article already indexed (or seen in this run) under another origin,
  a copied file say; not indexed twice, and the report names the article that holds the text;
- `failed`: a one-line reason (`empty file`, `HTTP 404 Not Found`, `wire.jsonl line 7: ...`); the rest
  of the batch goes on, and the command exits 1.

Work goes in batches of `ingest_batch_chars` of text. In a run of more than one batch the children
of ingest/embedding_workers.py embed while this process reads, chunks and writes around them; a
one-batch run embeds here, since starting a child takes about a second. Batches are written in order.

Interrupted ingests: Ctrl-C, or even `kill -9`, leaves an index that the same command finishes on
its next run, each article indexed once, with no missing or stale chunks, and BM25 in step with
Chroma. That holds because chunk ids derive from the article and its content, an article with
incomplete or mixed chunks counts as not stored (so it is written again), and BM25 is rebuilt
whenever the collection's revision has moved (app/index.py). A kill loses at most the batches in
flight. An article this run wrote but the index does not hold whole is reported failed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from tqdm import tqdm

from app.documents import Article, Chunk, printable
from app.embedding import Embedder
from app.index import Index
from app.settings import Settings
from app.timing import Timing, timed
from ingest.chunk_vectors import ChunkVectors
from ingest.chunking import chunk_article
from ingest.embedding_workers import EmbeddingWorkers, Vectors
from ingest.sources import Failure, Limits, Loader, expand

STATUSES = ("added", "updated", "unchanged", "duplicate", "failed")
# The longest article text indexed (about 80,000 English words; long news features run to a tenth
# of it). Embedding costs about 0.1 ms of CPU a character where each is a word piece (Chinese,
# Japanese), so a file at the size limit would otherwise hold the writer lock for half an hour.
MAX_ARTICLE_CHARS = 500_000
# Batches sent to the embedding children and not yet written: one being embedded, one queued behind
# it, so that the children never wait while this process writes or reads the next batch.
IN_FLIGHT = 2


def _nothing_spent() -> dict[str, Timing]:
    """Time this process spent embedding (when the children do not) and writing to the index."""
    return {"embed": Timing(), "write": Timing()}


@dataclass(frozen=True)
class Outcome:
    status: str
    source: str
    title: str = ""
    article_id: str = ""
    reason: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class IngestReport:
    outcomes: list[Outcome] = field(default_factory=list)
    spent: dict[str, Timing] = field(default_factory=_nothing_spent)

    def counts(self) -> dict[str, int]:
        return {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.of("failed")

    def summary(self) -> str:
        lines = [", ".join(f"{n} {s}" for s, n in self.counts().items())]
        lines += [printable(f"  failed: {o.source}: {o.reason}") for o in self.of("failed")]
        lines += [printable(f"  duplicate: {o.source}: {o.reason}") for o in self.of("duplicate")]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"counts": self.counts(), "articles": [o.as_dict() for o in self.outcomes]}


@dataclass
class _Run:
    """What one ingest run has seen and sent on, which the index may not hold yet."""

    seen_content: dict[str, str] = field(default_factory=dict)  # content hash -> source
    sent: dict[str, str] = field(default_factory=dict)  # article id -> content hash, embedded or being embedded
    in_flight: deque[tuple[list[Chunk], ChunkVectors, Vectors]] = field(default_factory=deque)  # written in order
    spent: dict[str, Timing] = field(default_factory=_nothing_spent)


class Ingestor:
    def __init__(self, settings: Settings, index: Index, embedder: Embedder):
        self.settings = settings
        self.index = index
        self.embedder = embedder

    def run(self, sources: Iterable[str], progress: bool | None = None) -> IngestReport:
        """Index every article in `sources`. `progress`: None shows a bar on a terminal only."""
        report = IngestReport()
        items = expand(sources)
        limits = Limits(max_bytes=int(self.settings.max_file_mb * 1e6), timeout=self.settings.fetch_timeout)
        pending: list[Article] = []
        pending_chars = 0
        run = _Run()
        workers: EmbeddingWorkers | None = None
        try:
            # The bar is updated by hand, not iterated: an iterated bar closes after the last file,
            # before the last batch.
            with (
                Loader(limits) as loader,
                tqdm(
                    total=len(items), desc="ingest", unit="file", disable=None if progress is None else not progress
                ) as bar,
            ):
                for position, item in enumerate(items, 1):
                    loaded = [item] if isinstance(item, Failure) else loader.load(item)
                    for result in loaded:
                        if isinstance(result, Failure):
                            report.outcomes.append(Outcome("failed", result.source, reason=result.reason))
                        elif len(result.body) > MAX_ARTICLE_CHARS:
                            reason = f"its text is over {MAX_ARTICLE_CHARS:,} characters: split it into articles"
                            report.outcomes.append(
                                Outcome("failed", result.url or result.origin, result.title, reason=reason)
                            )
                        else:
                            pending.append(result)
                            pending_chars += len(result.body)
                    bar.update()
                    if pending_chars > self.settings.ingest_batch_chars:
                        # More than one batch: worth the children's start-up (about a second).
                        if workers is None and self._processes() and position < len(items):
                            workers = EmbeddingWorkers(self.settings, self._processes())
                        report.outcomes += self._send(pending, run, workers, bar)
                        pending, pending_chars = [], 0
                report.outcomes += self._send(pending, run, workers, bar)
                self._write(run, keep=0)
                bar.set_postfix_str("")
        finally:
            if workers:
                workers.close()
        report.spent = run.spent
        report.outcomes = self._verified(report.outcomes, run)
        self.index.lexical()  # brought up to date now, not on the first question
        return report

    def _processes(self) -> int:
        """Embedding children: a GPU embeds faster in this process than CPU children could."""
        return self.settings.ingest_processes if self.embedder.device == "cpu" else 0

    def _send(self, articles: list[Article], run: _Run, workers: EmbeddingWorkers | None, bar: tqdm) -> list[Outcome]:
        """Classify a batch and send its new and changed articles to be embedded; write the batches
        embedded before it, keeping as many in flight as there are workers."""
        outcomes, to_write = self._classify(articles, run)
        if to_write:
            # Loading the model and embedding are the slow part: say so, or the bar would sit still.
            bar.set_postfix_str(f"embedding {len(to_write)} articles")
            chunks: list[Chunk] = [c for article in to_write for c in self.chunk(article)]
            plan = ChunkVectors(chunks, self.embedder.count_tokens)
            if workers:
                embedded = workers.submit(plan.texts)
            else:
                with timed() as spent:
                    embedded = Vectors.at_hand(self.embedder.encode(plan.texts))
                run.spent["embed"] += spent
            run.in_flight.append((chunks, plan, embedded))
            run.sent.update((a.id, a.content_hash) for a in to_write)
        self._write(run, keep=IN_FLIGHT if workers else 0)
        return outcomes

    def _verified(self, outcomes: list[Outcome], run: _Run) -> list[Outcome]:
        """The outcomes, with the articles this run wrote but the index does not hold whole (Chroma
        lost a chunk's vector) as failed: they are incomplete, so the next run writes them again.
        Reads back only what this run wrote (about 0.1 ms a chunk)."""
        whole = self.index.complete_articles(list(run.sent))
        lost = {a for a, content_hash in run.sent.items() if whole.get(a) != content_hash}
        return [
            Outcome(
                "failed",
                o.source,
                o.title,
                o.article_id,
                "not stored whole (a chunk or its vector is missing); ingest it again to repair it",
            )
            if o.article_id in lost and o.status in ("added", "updated")
            else o
            for o in outcomes
        ]

    def _write(self, run: _Run, keep: int) -> None:
        while len(run.in_flight) > keep:
            chunks, plan, embedded = run.in_flight.popleft()
            vectors = plan.vectors(embedded.result())
            with timed() as spent:
                self.index.write(chunks, vectors)
            run.spent["write"] += spent

    def _classify(self, articles: list[Article], run: _Run) -> tuple[list[Outcome], list[Article]]:
        """Each article's outcome, and the articles to embed and write."""
        if not articles:
            return [], []
        articles = list({a.id: a for a in articles}.values())  # the same origin twice: the last wins
        stored = self.index.complete_articles([a.id for a in articles])
        stored.update((a.id, run.sent[a.id]) for a in articles if a.id in run.sent)  # written before these
        known_content = self.index.articles_with_content([a.content_hash for a in articles])
        outcomes, to_write = [], []
        for article in articles:
            source = article.url or article.origin
            holder = known_content.get(article.content_hash, article.id)
            if stored.get(article.id) == article.content_hash:
                status, reason = "unchanged", ""
            elif article.id in stored:
                status, reason = "updated", ""
            elif article.content_hash in run.seen_content or holder != article.id:
                status, reason = "duplicate", f"same text as {run.seen_content.get(article.content_hash) or holder}"
            else:
                status, reason = "added", ""
            outcomes.append(Outcome(status, source, article.title, article.id, reason))
            if status in ("added", "updated"):
                to_write.append(article)
            run.seen_content.setdefault(article.content_hash, source)
        return outcomes, to_write

    def chunk(self, article: Article) -> list[Chunk]:
        max_tokens = min(self.settings.chunk_tokens, self.embedder.window - 2)  # [CLS] and [SEP]
        return chunk_article(article, self.embedder.count_tokens, max_tokens, self.settings.chunk_overlap_tokens)
