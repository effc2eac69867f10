"""The answer orchestration with a fake LLM backend, a fake retriever and a fake embedder: condense,
stream, markers, refusals, and the extractive fallback when the LLM fails (fast unit tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from app import answering
from app.documents import Answer, Passage
from app.extractive import REFUSAL as NOT_ANSWERED
from app.llm import REFUSAL, Generation, Limits, LLMError
from conftest import make_passage

TEXT = (
    "Putin spoke at his annual news conference on Thursday. Talks with the U.S. are set to start in Geneva "
    "next month. He warned that Moscow expects the discussion to produce quick results."
)
PASSAGE = make_passage(TEXT, chunk_ids=("seed-0",), article_id="seed", title="Russia urges West", file="seed.txt")


class BagOfWords:
    """An embedder whose vectors are hashed word counts: similar wording, similar vectors."""

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 256))
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, int(hashlib.md5(word.strip(".,?").encode()).hexdigest(), 16) % 256] += 1
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


class FakeIndex:
    def __init__(self, size: int):
        self.size = size

    def count(self) -> int:
        return self.size


class FakeEngine:
    def __init__(self, backend=None, passages: Sequence[Passage] = (PASSAGE,), indexed: int = 1):
        self.backend = backend
        self.passages = list(passages)
        self.index = FakeIndex(indexed)
        self.embedder = BagOfWords()
        self.queries: list[str] = []

    def retrieve(self, question, as_of=None, filters=None, k=None):
        self.queries.append(question)
        return self.passages


class FakeBackend:
    """Streams `pieces`; raises `error` after `fail_after` pieces (None: never)."""

    name = "fake:model"

    def __init__(
        self,
        pieces: Sequence[str] = (),
        fail_after: int | None = None,
        error: LLMError = LLMError("fake:model: cannot reach the server"),
        condensed: str = "",
        condense_error: LLMError | None = None,
    ):
        self.pieces, self.fail_after, self.error = list(pieces), fail_after, error
        self.condensed, self.condense_error = condensed, condense_error
        self.streamed: list[str] = []
        self.condensed_from: list[tuple] = []

    def condense(self, question: str, history) -> str:
        self.condensed_from.append((question, tuple(history)))
        if self.condense_error:
            raise self.condense_error
        return self.condensed

    def stream(self, question: str, passages, as_of=None, limits=Limits()) -> Generation:
        self.streamed.append(question)
        return Generation(self._pieces())

    def _pieces(self) -> Iterator[str]:
        for number, piece in enumerate(self.pieces):
            if number == self.fail_after:
                raise self.error
            yield piece
        if self.fail_after is not None and self.fail_after >= len(self.pieces):
            raise self.error


def library_of(engine: FakeEngine) -> answering.Library:
    return answering.Library(
        retrieve=engine.retrieve,
        embedder=engine.embedder,
        article_count=engine.index.count,
        backend=lambda: engine.backend,
    )


def run(engine, question="Where are the talks with the U.S. set to start?", history=()) -> tuple[list[str], Answer]:
    *texts, answer = answering.stream(library_of(engine), question, history)
    assert all(isinstance(t, str) for t in texts) and isinstance(answer, Answer)
    return texts, answer


def test_the_llm_answer_streams_cumulatively_and_ends_with_a_cited_answer():
    backend = FakeBackend(["The talks ", "are in Geneva ", "[1]."])
    texts, answer = run(FakeEngine(backend))
    assert texts == ["The talks ", "The talks are in Geneva ", "The talks are in Geneva [1]."]
    assert answer.answer == "The talks are in Geneva [1]."
    assert not answer.refused and answer.backend == "fake:model"
    assert [(c.number, c.file) for c in answer.citations] == [(1, "seed.txt")]
    assert answer.citations[0].sentence == "Talks with the U.S. are set to start in Geneva next month."
    assert set(answer.timings) == {"retrieve", "generate", "total"}
    assert answer.passages == (PASSAGE,)


def test_markers_to_missing_passages_are_removed_and_an_uncited_answer_is_flagged():
    _, answer = run(FakeEngine(FakeBackend(["Geneva [4]."])))
    assert answer.answer == "Geneva."
    assert answer.citations == ()
    assert answer.warnings == ("1 sentence not found in the articles", "the answer cites none of the articles")


def test_the_refusal_sentence_is_a_refusal():
    _, answer = run(FakeEngine(FakeBackend([REFUSAL])))
    assert answer.refused and answer.citations == () and answer.backend == "fake:model"
    assert answer.sentences == ()


MEETING = make_passage("Officials said the delegations would meet for two days in January.", 2, file="meeting.txt")


def test_a_marker_on_the_wrong_passage_is_moved_to_the_one_that_says_the_sentence():
    backend = FakeBackend(
        [
            "Talks with the U.S. are set to start in Geneva next month [1]. ",
            "The delegations would meet for two days [1].",
        ]
    )
    texts, answer = run(FakeEngine(backend, passages=(PASSAGE, MEETING)))
    assert texts[-1].endswith("two days [1].")  # as streamed
    assert answer.answer == (
        "Talks with the U.S. are set to start in Geneva next month [1]. The delegations would meet for two days [2]."
    )
    assert [(c.number, c.file) for c in answer.citations] == [(1, "seed.txt"), (2, "meeting.txt")]
    assert [(s.citations, s.supported, s.support) for s in answer.sentences] == [
        ((1,), True, "Talks with the U.S. are set to start in Geneva next month."),
        ((2,), True, MEETING.text),
    ]
    assert answer.warnings == ()


def test_a_sentence_with_a_number_no_passage_says_is_flagged():
    backend = FakeBackend(
        ["Talks are set to start in Geneva next month [1]. The delegations would meet for three days [1]."]
    )
    _, answer = run(FakeEngine(backend, passages=(PASSAGE, MEETING)))
    assert [(s.text, s.supported) for s in answer.sentences] == [
        ("Talks are set to start in Geneva next month.", True),
        ("The delegations would meet for three days.", False),
    ]
    assert answer.sentences[1].support == "" and answer.sentences[1].citations == (1,)
    assert answer.warnings == ("1 sentence not found in the articles",)
    assert answer.as_dict()["sentences"][1] == {
        "text": "The delegations would meet for three days.",
        "citations": [1],
        "supported": False,
        "support": "",
    }


def test_extractive_sentences_are_quoted_so_each_is_supported_by_its_citation():
    _, answer = run(FakeEngine(passages=(PASSAGE, MEETING)))
    assert answer.backend == "extractive" and answer.sentences
    for sentence in answer.sentences:
        assert sentence.supported and sentence.text in TEXT + MEETING.text
        assert sentence.support == sentence.text and sentence.citations
        assert f"{sentence.text} [{sentence.citations[0]}]" in answer.answer


def test_an_llm_down_before_answering_gives_the_extractive_answer_marked_as_fallback():
    backend = FakeBackend(fail_after=0)
    texts, answer = run(FakeEngine(backend))
    assert answer.backend == "extractive (fallback: fake:model: cannot reach the server)"
    assert "Geneva" in answer.answer and not answer.refused
    assert [c.file for c in answer.citations] == ["seed.txt"]
    assert answer.warnings == ("the LLM could not answer: fake:model: cannot reach the server",)
    assert texts == [answer.answer]


def test_an_llm_failing_mid_answer_is_replaced_by_the_extractive_answer():
    backend = FakeBackend(["The talks ", "are in"], fail_after=2, error=LLMError("fake:model: timed out after 1 s"))
    texts, answer = run(FakeEngine(backend))
    assert texts[:2] == ["The talks ", "The talks are in"]
    assert texts[-1] == answer.answer and "Geneva" in answer.answer
    assert answer.backend == "extractive (fallback: fake:model: timed out after 1 s)"


def test_an_empty_llm_answer_falls_back():
    _, answer = run(FakeEngine(FakeBackend(["  "])))
    assert answer.backend == "extractive (fallback: fake:model returned an empty answer)"


def test_a_follow_up_is_condensed_by_the_llm_and_the_standalone_question_retrieved():
    backend = FakeBackend(["Geneva [1]."], condensed="When will the talks with the U.S. start?")
    engine = FakeEngine(backend)
    history = [("Where will the talks take place?", "Geneva [1].")]
    _, answer = run(engine, "And when?", history)
    assert backend.condensed_from == [("And when?", tuple(history))]
    assert engine.queries == backend.streamed == ["When will the talks with the U.S. start?"]
    assert answer.question == "And when?"
    assert answer.standalone_question == "When will the talks with the U.S. start?"
    assert "condense" in answer.timings


def test_without_history_nothing_is_condensed():
    backend = FakeBackend(["Geneva [1]."])
    run(FakeEngine(backend))
    assert backend.condensed_from == []


def test_a_failing_condense_uses_the_rule_based_rewrite_and_the_extractive_answer():
    backend = FakeBackend(["never streamed"], condense_error=LLMError("fake:model: cannot reach the server"))
    engine = FakeEngine(backend)
    _, answer = run(engine, "And when?", [("Where will the talks take place?", "Geneva [1].")])
    assert engine.queries == ["When will the talks take place?"]
    assert backend.streamed == []
    assert answer.backend.startswith("extractive (fallback: ")


def test_extractive_mode_rewrites_follow_ups_by_rule():
    engine = FakeEngine()
    _, answer = run(engine, "And when?", [("Where will the talks take place?", "Geneva [1].")])
    assert engine.queries == ["When will the talks take place?"]
    assert answer.backend == "extractive"


def test_no_passages_is_a_refusal_without_asking_the_llm():
    backend = FakeBackend(["Geneva [1]."])
    _, answer = run(FakeEngine(backend, passages=()))
    assert answer.refused and answer.answer == NOT_ANSWERED
    assert backend.streamed == []


def test_an_empty_index_says_how_to_fill_it():
    _, answer = run(FakeEngine(passages=(), indexed=0))
    assert answer.refused and "newsqa ingest" in answer.answer


class UnusableBackendEngine(FakeEngine):
    @property
    def backend(self):
        raise LLMError("llamacpp:missing.gguf: no such model file")

    @backend.setter
    def backend(self, value):
        pass


def test_a_backend_that_cannot_be_set_up_gives_the_extractive_answer():
    _, answer = run(UnusableBackendEngine())
    assert answer.backend == "extractive (fallback: llamacpp:missing.gguf: no such model file)"
    assert "Geneva" in answer.answer and answer.citations


def test_an_empty_question_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        answering.ask(library_of(FakeEngine()), "   ")


@pytest.mark.slow
def test_a_real_llama_cpp_model_answers_through_the_engine(seed_engine, tiny_gguf):
    """The tiny random-weight model (gibberish, no markers; its window holds the seed article, which
    is mostly byte tokens in its small vocabulary) run in process over the seed index:
    condensed, streamed, and its uncited answer flagged, not refused and not replaced."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (CI installs it)")
    from app.engine import Engine

    engine = Engine(
        seed_engine.settings.model_copy(
            update={"llm": f"llamacpp:{tiny_gguf}", "llm_context_tokens": 4096, "llm_max_tokens": 24}
        )
    )
    history = [("Who is Andrew Rasiulis?", "A defence expert. [1]")]
    *texts, answer = engine.stream("What does he think?", history=history)
    assert answer.backend == f"llamacpp:{tiny_gguf.name}"
    assert texts and all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    assert answer.answer == texts[-1].strip()
    assert answer.standalone_question and answer.standalone_question != "What does he think?"
    assert not answer.refused and answer.citations == ()
    assert "the answer cites none of the articles" in answer.warnings
    assert answer.passages and set(answer.timings) == {"condense", "retrieve", "generate", "total"}


@pytest.mark.slow
def test_an_llm_server_that_is_down_gives_the_extractive_answer(seed_engine):
    """A real OpenAI-compatible client against a port nobody listens on."""
    import socket

    from pydantic import SecretStr

    from app.engine import Engine

    with socket.socket() as probe:  # a port that was free a moment ago, and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = Engine(
        seed_engine.settings.model_copy(
            update={
                "llm": "openai:any-model",
                "openai_base_url": f"http://127.0.0.1:{port}/v1",
                "openai_api_key": SecretStr("unused"),
                "llm_timeout": 5.0,
            }
        )
    )
    answer = engine.ask("Where will the talks with the U.S. take place?")
    assert answer.backend.startswith("extractive (fallback: openai:any-model: ")
    assert "Geneva" in answer.answer and [c.file for c in answer.citations] == ["000_416442306511e572.txt"]


@pytest.mark.slow
def test_warm_up_leaves_a_backend_that_cannot_be_set_up_to_the_answers(seed_engine):
    """The page warms the engine before it opens: a missing model file must not stop it."""
    from app.engine import Engine

    engine = Engine(seed_engine.settings.model_copy(update={"llm": "llamacpp:/no/such/model.gguf"}))
    engine.warm_up()
    answer = engine.ask("Where will the talks with the U.S. take place?")
    assert answer.backend.startswith("extractive (fallback: ") and "Geneva" in answer.answer
