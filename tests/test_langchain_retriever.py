"""The LangChain retriever over the seed index, alone and inside a small LCEL chain with a fake chat
model that records the prompt it is given."""

from __future__ import annotations

from datetime import date

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from app.documents import Filters
from app.engine import Engine
from app.langchain_retriever import NewsRetriever
from tests.conftest import SEED_FILE

pytestmark = pytest.mark.slow

QUESTION = "Where will the talks with the U.S. take place?"


def test_invoke_gives_documents_with_the_article_metadata(seed_engine: Engine):
    retriever = NewsRetriever(engine=seed_engine, k=2)
    assert isinstance(retriever, BaseRetriever)
    documents = retriever.invoke(QUESTION)
    assert 1 <= len(documents) <= 2
    top = documents[0]
    assert "Geneva" in top.page_content
    assert top.metadata["file"] == SEED_FILE.name and top.metadata["rank"] == 1
    assert top.metadata["title"].startswith("Russia urges West")
    assert set(top.metadata) == {
        "article_id",
        "title",
        "published",
        "source",
        "url",
        "file",
        "start",
        "end",
        "score",
        "rank",
    }


def test_filters_and_as_of_narrow_what_is_found(seed_engine: Engine):
    retriever = NewsRetriever(engine=seed_engine, filters=Filters(source="Nowhere Gazette"))
    assert retriever.invoke(QUESTION) == []
    assert NewsRetriever(engine=seed_engine).invoke(QUESTION, filters=Filters(source="Nowhere Gazette")) == []
    assert NewsRetriever(engine=seed_engine).invoke(QUESTION, as_of=date(2024, 1, 1))


def test_the_retriever_inside_an_lcel_chain(seed_engine: Engine):
    prompts = []

    def record(prompt):
        prompts.append(prompt.to_string())
        return prompt

    model = GenericFakeChatModel(messages=iter(["The talks will be held in Geneva [1]."]))
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these passages, citing them as [n].\n\n{context}"), ("human", "{question}")]
    )

    def numbered(documents) -> str:
        return "\n\n".join(f"[{n}] {d.metadata['title']}: {d.page_content}" for n, d in enumerate(documents, 1))

    chain = (
        {"context": NewsRetriever(engine=seed_engine, k=3) | numbered, "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(record)
        | model
        | StrOutputParser()
    )
    assert chain.invoke(QUESTION) == "The talks will be held in Geneva [1]."
    [sent] = prompts
    assert "[1] Russia urges West" in sent and "Geneva" in sent and sent.rstrip().endswith(QUESTION)
