"""newsqa's retrieval as a LangChain retriever, for people who build their own chains on the index.

`NewsRetriever(engine=Engine()).invoke("...")` runs the engine's own retrieval (hybrid by default,
with its date and source filters and the "as of" day) and returns each passage as a `Document`
carrying its article's metadata, so that a chain can cite what it answers from. The filters, the
as-of day and k are set on the retriever, or given to one call: `invoke(q, as_of=date(2024, 3, 1))`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from app.documents import Filters, Passage
from app.engine import Engine
from app.settings import Settings


def passage_document(passage: Passage) -> Document:
    """A passage as a Document: its text, and where it comes from as metadata."""
    return Document(
        id=f"{passage.article_id}:{passage.start}",
        page_content=passage.text,
        metadata={**passage.where_from(), "start": passage.start, "end": passage.end, "score": passage.score},
    )


class NewsRetriever(BaseRetriever):
    """The passages of the indexed articles that best answer a query, as Documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Engine
    k: int | None = None  # None: NEWSQA_TOP_K
    as_of: date | None = None  # None: today
    filters: Filters | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> NewsRetriever:
        """A retriever over the index the settings name (default: NEWSQA_* and the config file)."""
        return cls(engine=Engine(settings), **options)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        as_of: date | None = None,
        filters: Filters | None = None,
    ) -> list[Document]:
        passages = self.engine.retrieve(
            query, as_of=as_of or self.as_of, filters=filters or self.filters, k=k or self.k
        )
        return [passage_document(p) for p in passages]
