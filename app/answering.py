"""Answering: from a question (and the conversation so far) to a cited Answer.

The same steps serve the CLI, the chat page, the API and the eval suite (through the engine):

1. Standalone question: with a conversation, the LLM's condense prompt rewrites the follow-up;
   without an LLM, app/followup.py rewrites it by rule. Retrieval then searches for what was meant.
2. Retrieval, with the as-of date and the filters (a `Library.retrieve` of the engine's).
3. The answer: an LLM backend's text is streamed (cumulative), then its [n] markers are tied to the
   passages (app/citations.py). Markers naming no passage are removed and the others keep their
   numbers, so the final text is the text streamed. The prompt's refusal sentence, uncited, is a
   refusal; any other answer citing nothing is flagged in its warnings. Then each sentence is
   checked against the passages (app/support.py): a marker on the wrong passage is moved to the one
   that says the sentence (so the final text may differ from the streamed one there), and sentences
   no passage says are flagged in `Answer.sentences` and counted in the warnings. Without a
   backend, the extractive answerer (app/extractive.py) answers; its sentences are quoted from the
   passages, so each is supported by construction.
4. Failures are answers, never tracebacks: an LLM that cannot be set up, is down, times out, returns
   nothing or fails half-way (condense included) is replaced by the extractive answer, labelled
   `extractive (fallback: REASON)` with the reason among the warnings. No passage at all is a
   refusal; on an empty index the answer says how to add articles.

`Answer.backend` always says who answered (`extractive`, `ollama:llama3.2`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date

from app.citations import MARKER, claim_sentences, resolve_markers
from app.documents import Answer, Citation, Filters, Passage, SentenceSupport
from app.embedding import Embedder
from app.extractive import REFUSAL as NOT_ANSWERED
from app.extractive import extract_answer
from app.followup import rewrite
from app.llm import REFUSAL, Limits, LLMBackend, LLMError
from app.support import check
from app.timing import timed

EMPTY_INDEX = "No articles are indexed yet: add some with `newsqa ingest PATH_OR_URL`."
EXTRACTIVE = "extractive"


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def is_refusal(text: str) -> bool:
    """Whether an LLM answer is the refusal sentence its prompt asks for (markers and punctuation aside)."""
    return _words(REFUSAL) in _words(MARKER.sub("", text))


@dataclass(frozen=True)
class Library:
    """What answering needs of the index and the models, and nothing else of the engine."""

    retrieve: Callable[[str, date | None, Filters | None, int | None], list[Passage]]  # question, as_of, filters, k
    embedder: Embedder  # the extractive answer and the support check compare sentences
    article_count: Callable[[], int]  # no passages from an empty index is said differently
    backend: Callable[[], LLMBackend | None]  # the LLM (None: extractive); LLMError when it cannot be set up


def stream(
    library: Library,
    question: str,
    history: Sequence[tuple[str, str]] = (),
    as_of: date | None = None,
    filters: Filters | None = None,
    k: int | None = None,
    limits: Limits = Limits(),
) -> Iterator[str | Answer]:
    """The answer text so far (cumulative) while it is written, then the full Answer; `k` passages at
    most; an LLM writes within `limits` (an extractive answer is a quoted sentence, given whole). An
    LLM that cannot even be set up is a failure like any other."""
    question = question.strip()
    if not question:
        raise ValueError("the question is empty")
    timings: dict[str, float] = {}  # milliseconds
    failure = None  # why the LLM could not answer, when it could not
    with timed() as total:
        try:
            backend = library.backend()
        except LLMError as error:
            backend, failure = None, str(error)

        standalone = question
        if history:
            with timed() as step:
                if backend is not None and failure is None:
                    try:
                        standalone = backend.condense(question, history).strip() or question
                    except LLMError as error:
                        failure = str(error)
                if backend is None or failure:
                    standalone = rewrite(question, history)
            timings["condense"] = step.ms

        with timed() as step:
            passages = library.retrieve(standalone, as_of, filters, k)
        timings["retrieve"] = step.ms

        with timed() as step:
            answer = None
            if backend is not None and failure is None and passages:
                text = ""
                try:
                    generation = backend.stream(standalone, passages, as_of, limits)
                    for delta in generation:
                        text += delta
                        yield text
                    if not text.strip():
                        raise LLMError(f"{backend.name} returned an empty answer")
                except LLMError as error:
                    failure = str(error)
                else:
                    answer = _llm_answer(question, standalone, text, passages, backend.name, library.embedder)
                    answer = replace(answer, finish_reason=generation.finish_reason, usage=generation.usage)
            if answer is None:
                answer = _extractive_answer(library, question, standalone, passages, as_of, failure)
                yield answer.answer
        timings["generate"] = step.ms
    timings["total"] = total.ms
    timings = {name: round(ms, 1) for name, ms in timings.items()}
    yield replace(answer, backend=_backend_label(backend, failure), timings=timings)


def ask(
    library: Library,
    question: str,
    history: Sequence[tuple[str, str]] = (),
    as_of: date | None = None,
    filters: Filters | None = None,
    k: int | None = None,
    limits: Limits = Limits(),
) -> Answer:
    *_, answer = stream(library, question, history, as_of, filters, k, limits)
    return answer


def _backend_label(backend: LLMBackend | None, failure: str | None) -> str:
    if failure:
        return f"{EXTRACTIVE} (fallback: {failure})"
    return backend.name if backend is not None else EXTRACTIVE


def _llm_answer(
    question: str, standalone: str, text: str, passages: Sequence[Passage], backend: str, embedder: Embedder
) -> Answer:
    cleaned, citations, warnings = resolve_markers(text, passages)
    refused = not citations and is_refusal(cleaned)
    sentences: tuple[SentenceSupport, ...] = ()
    if not refused:
        checked, sentences = check(cleaned, passages, embedder)
        sentences = tuple(s for s in sentences if not is_refusal(s.text))
        if checked != cleaned:  # a marker moved to the passage that says its sentence
            cleaned, citations, warnings = resolve_markers(checked, passages)
        if unsupported := sum(not s.supported for s in sentences):
            warnings = (*warnings, f"{unsupported} sentence{'s' if unsupported > 1 else ''} not found in the articles")
    if not citations and not refused:
        warnings = (*warnings, "the answer cites none of the articles")
    return Answer(
        question=question,
        answer=cleaned,
        refused=refused,
        citations=() if refused else citations,
        backend=backend,
        timings={},
        standalone_question=standalone,
        passages=tuple(passages),
        warnings=warnings,
        sentences=sentences,
    )


def _quoted_sentences(answer: str, citations: Sequence[Citation]) -> tuple[SentenceSupport, ...]:
    """The extractive answer's sentences: each quotes a passage and is cited to it, so it is
    supported by construction; its support is its citation's sentence where it quotes that one (a
    passage's first sentence in the answer), else itself (a second sentence of the same passage)."""
    sentences = []
    for claim in claim_sentences(answer):
        if claim.text:
            cited = (c.sentence.strip() for c in citations if c.number in claim.numbers)
            support = next((s for s in cited if s and s in claim.text), claim.text)
            sentences.append(SentenceSupport(claim.text, claim.numbers, True, support))
    return tuple(sentences)


def _extractive_answer(
    library: Library,
    question: str,
    standalone: str,
    passages: Sequence[Passage],
    as_of: date | None,
    failure: str | None,
) -> Answer:
    warnings = (f"the LLM could not answer: {failure}",) if failure else ()
    if not passages:
        text = EMPTY_INDEX if library.article_count() == 0 else NOT_ANSWERED
        return Answer(
            question=question,
            answer=text,
            refused=True,
            citations=(),
            backend=EXTRACTIVE,
            timings={},
            standalone_question=standalone,
            warnings=warnings,
        )
    extract = extract_answer(standalone, passages, library.embedder, as_of)
    return Answer(
        question=question,
        answer=extract.answer,
        refused=extract.refused,
        citations=extract.citations,
        backend=EXTRACTIVE,
        timings={},
        standalone_question=standalone,
        passages=tuple(passages),
        warnings=warnings,
        sentences=() if extract.refused else _quoted_sentences(extract.answer, extract.citations),
    )
