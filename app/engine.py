"""The engine: one facade over index, ingestion and answering, used alike by the CLI, the chat
page and the eval suite, so that what the eval measures is what users get."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from app.embedding import Embedder
from app.index import Index, StoredArticle
from app.settings import Settings
from ingest.pipeline import IngestReport, Ingestor


class Engine:
    """Cheap to construct: the index opens and the embedding model loads when first needed."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return Embedder(s.embedding_model, device=s.device, batch_size=s.embedding_batch_size)

    @cached_property
    def index(self) -> Index:
        return Index(self.settings, self.settings.embedding_model)

    def add(self, sources: Iterable[str], progress: bool | None = None) -> IngestReport:
        """Index files, folders, URLs and feeds; idempotent."""
        return Ingestor(self.settings, self.index, self.embedder).run(sources, progress=progress)

    def remove(self, key: str) -> list[StoredArticle]:
        """Remove the articles whose id, file name, path or URL is `key`; the articles removed."""
        found = self.index.find_articles(key)
        for article in found:
            self.index.remove(article.id)
        if found:
            self.index.lexical()
        return found

    def articles(self) -> list[StoredArticle]:
        return self.index.articles()
