"""The ingest run: sources in, articles classified, chunked, embedded and written, a report out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tqdm import tqdm

from app.documents import Article, Chunk
from app.embedding import Embedder
from app.index import Index
from app.settings import Settings
from ingest.chunking import chunk_article
from ingest.sources import Failure, Limits, Loader, expand

STATUSES = ("added", "updated", "unchanged", "duplicate", "failed")


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

    def counts(self) -> dict[str, int]:
        return {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.of("failed")

    def summary(self) -> str:
        lines = [", ".join(f"{n} {s}" for s, n in self.counts().items())]
        lines += [f"  failed: {o.source}: {o.reason}" for o in self.of("failed")]
        lines += [f"  duplicate: {o.source}: {o.reason}" for o in self.of("duplicate")]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"counts": self.counts(), "articles": [o.as_dict() for o in self.outcomes]}


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
        seen_content: dict[str, str] = {}  # content hash -> source, for duplicates within this run
        # Updated by hand, not iterated: an iterated bar closes after the last file, before the last batch.
        with Loader(limits) as loader, tqdm(total=len(items), desc="ingest", unit="file",
                                            disable=None if progress is None else not progress) as bar:
            for item in items:
                loaded = [item] if isinstance(item, Failure) else loader.load(item)
                for result in loaded:
                    if isinstance(result, Failure):
                        report.outcomes.append(Outcome("failed", result.source, reason=result.reason))
                    else:
                        pending.append(result)
                bar.update()
                if sum(len(a.body) for a in pending) > self.settings.ingest_batch_chars:
                    report.outcomes += self._index_batch(pending, seen_content, bar)
                    pending = []
            report.outcomes += self._index_batch(pending, seen_content, bar)
        self.index.lexical()  # brought up to date now, not on the first question
        return report

    def _index_batch(self, articles: list[Article], seen_content: dict[str, str], bar: tqdm) -> list[Outcome]:
        if not articles:
            return []
        articles = list({a.id: a for a in articles}.values())  # the same origin twice: the last wins
        stored = self.index.complete_articles([a.id for a in articles])
        known_content = self.index.articles_with_content([a.content_hash for a in articles])
        outcomes, to_write = [], []
        for article in articles:
            source = article.url or article.origin
            holder = known_content.get(article.content_hash, article.id)
            if stored.get(article.id) == article.content_hash:
                status, reason = "unchanged", ""
            elif article.id in stored:
                status, reason = "updated", ""
            elif article.content_hash in seen_content or holder != article.id:
                status, reason = "duplicate", f"same text as {seen_content.get(article.content_hash) or holder}"
            else:
                status, reason = "added", ""
            outcomes.append(Outcome(status, source, article.title, article.id, reason))
            if status in ("added", "updated"):
                to_write.append(article)
            seen_content.setdefault(article.content_hash, source)
        if to_write:
            # Loading the model and embedding are the slow part: say so, or the bar would sit still.
            bar.set_postfix_str(f"embedding {len(to_write)} articles")
            chunks: list[Chunk] = [c for article in to_write for c in self.chunk(article)]
            self.index.write(chunks, self.embedder.encode([c.embed_text for c in chunks]))
            bar.set_postfix_str("")
        return outcomes

    def chunk(self, article: Article) -> list[Chunk]:
        max_tokens = min(self.settings.chunk_tokens, self.embedder.window - 2)  # [CLS] and [SEP]
        return chunk_article(article, self.embedder.count_tokens, max_tokens, self.settings.chunk_overlap_tokens)

