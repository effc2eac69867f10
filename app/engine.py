"""The engine: one facade over index, ingestion and answering, used alike by the CLI, the chat
page and the eval suite, so that what the eval measures is what users get."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from app.documents import Answer, Filters, Passage
from app.embedders import embedding_label, make_embedder
from app.embedding import Embedder
from app.index import Index, StoredArticle
from app.retrieval import Retriever
from app.settings import Settings
from ingest.pipeline import Ingestor, IngestReport

if TYPE_CHECKING:
    from app.answering import Library
    from app.llm import Limits


class Engine:
    """Cheap to construct: the index opens and the embedding model loads when first needed."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None):
        """`embedder`: a model already loaded (the benchmarks share one among engines); by default the
        settings' model, loaded when first needed."""
        self.settings = settings or Settings()
        self._embedder = embedder
        self._backends: dict[str, object] = {}  # backend_for's choices, by NEWSQA_LLM value

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or make_embedder(self.settings)

    @cached_property
    def index(self) -> Index:
        return Index(self.settings, embedding_label(self.settings))

    def add(self, sources: Iterable[str], progress: bool | None = None, wait: bool = True) -> IngestReport:
        """Index files, folders, URLs and feeds; idempotent. While another process writes to the index
        this waits for it, or with `wait` false raises IndexBusy."""
        with self.index.writing(wait):
            return Ingestor(self.settings, self.index, self.embedder).run(sources, progress=progress)

    def remove(self, key: str, wait: bool = True) -> list[StoredArticle]:
        """Remove the articles whose id, file name, path or URL is `key`; the articles removed.
        `wait` as for `add`."""
        with self.index.writing(wait):
            found = self.index.find_articles(key)
            for article in found:
                self.index.remove(article.id)
            if found:
                self.index.lexical()
        return found

    def articles(self) -> list[StoredArticle]:
        return self.index.articles()

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings, self.index, self.embedder)

    def retrieve(
        self,
        question: str,
        as_of: date | None = None,
        filters: Filters | None = None,
        k: int | None = None,
        mode: str | None = None,
    ) -> list[Passage]:
        """The k (default NEWSQA_TOP_K) best passages for the question among the articles published
        by `as_of` (default today) that the filters and the question's own time phrases admit;
        `mode` hybrid, dense or lexical (default NEWSQA_RETRIEVAL)."""
        return self.retriever.retrieve(question, as_of=as_of, filters=filters, k=k, mode=mode)

    @cached_property
    def backend(self):
        """The LLM backend that writes answers (None: extractive); chosen, and for `auto` probed, once.
        A malformed NEWSQA_LLM is a ValueError; a backend that cannot be set up an LLMError (not
        cached: the next question tries again), which answering turns into an extractive answer."""
        from app.llm import select_backend

        return select_backend(self.settings)

    def warm_up(self) -> None:
        """Load now what the first question would load: the lexical index, the embedding model and the
        answer backend (for `auto`, a probe of the local Ollama server), so that the first question is
        answered as fast as the next. A backend that cannot be set up is left to the answers, which
        fall back to the extractive answer and say why."""
        from app.llm import LLMError

        self.index.lexical()
        self.embedder.encode(["warm up"])
        try:
            self.backend  # noqa: B018 (a cached property: chosen now, not on the first question)
        except LLMError:
            pass

    def backend_for(self, llm: str | None = None):
        """The backend a NEWSQA_LLM value names (None: the configured `backend`), each set up once and
        kept: the chat page lets every conversation pick its model, and a model is not loaded again
        for each question. Errors as for `backend`."""
        if llm is None or llm == self.settings.llm:
            return self.backend
        if llm not in self._backends:
            from app.llm import select_backend

            self._backends[llm] = select_backend(self.settings.model_copy(update={"llm": llm}))
        return self._backends[llm]

    # Answering imports the LLM libraries (a second and more), which ingesting and listing do not need:
    # imported on use.

    def library(self, llm: str | None = None) -> Library:
        """What answering needs of this engine, answering with `llm` (None: the configured backend)."""
        from app.answering import Library

        return Library(
            retrieve=self.retrieve,
            embedder=self.embedder,
            article_count=self.index.count,
            backend=lambda: self.backend_for(llm),
        )

    def ask(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        as_of: date | None = None,
        filters: Filters | None = None,
        k: int | None = None,
        llm: str | None = None,
        limits: Limits | None = None,
    ) -> Answer:
        """A cited answer, or a refusal; `history` is the conversation so far, (question, answer) oldest
        first; `llm` a NEWSQA_LLM value for this answer (None: the configured backend), which writes
        within `limits` (max_tokens, stop sequences)."""
        from app import answering
        from app.llm import Limits

        return answering.ask(self.library(llm), question, history, as_of, filters, k, limits or Limits())

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        as_of: date | None = None,
        filters: Filters | None = None,
        k: int | None = None,
        llm: str | None = None,
        limits: Limits | None = None,
    ) -> Iterator[str | Answer]:
        """The answer text so far (cumulative) while it is written, then the full Answer."""
        from app import answering
        from app.llm import Limits

        return answering.stream(self.library(llm), question, history, as_of, filters, k, limits or Limits())
