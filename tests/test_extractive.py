"""The extractive answerer: question types and cues (fast), and answers on the seed article, through
the engine, for the questions of tests/fixtures/answers/seed_questions.jsonl (slow: the real model)."""

from __future__ import annotations

import json

import pytest

from app.engine import Engine
from app.extractive import has_cue, question_type
from eval.metrics import answer_contains
from tests.conftest import FIXTURES, SEED_FILE

SEED_QUESTIONS = [json.loads(line) for line in (FIXTURES / "answers" / "seed_questions.jsonl").open()]


@pytest.mark.parametrize(("question", "kind"), [
    ("Who is Andrew Rasiulis?", "person"),
    ("Whose missiles are near the border?", "person"),
    ("Where will the talks take place?", "place"),
    ("When are the talks set to start?", "time"),
    ("In what year did it happen?", "time"),
    ("How many senators voted for it?", "number"),
    ("How much did the wall cost?", "number"),
    ("What did Putin say?", None),
    ("Why did the Senate vote it down?", None),
])
def test_question_type(question, kind):
    assert question_type(question) == kind


@pytest.mark.parametrize(("sentence", "kind", "expected"), [
    ("U.S. President Joe Biden warned Putin.", "person", True),
    ("the alliance rejected the demand.", "person", False),
    ("Talks are set to start in Geneva next month.", "place", True),
    ("talks are set to start soon.", "place", False),
    ("Talks are set to start next month.", "time", True),
    ("He spoke on Thursday.", "time", True),
    ("The vote was held in 2018.", "time", True),
    ("Talks are set to start in Geneva.", "time", False),
    ("The plan won the votes of 39 senators.", "number", True),
    ("Hundreds of young people marched.", "number", True),
    ("The plan won few votes.", "number", False),
])
def test_answer_cues(sentence, kind, expected):
    assert has_cue(sentence, kind) is expected


@pytest.fixture(scope="module")
def extractive_seed_engine(seed_engine: Engine) -> Engine:
    """The seed index, answered without an LLM whatever NEWSQA_LLM says."""
    return Engine(seed_engine.settings.model_copy(update={"llm": "extractive"}))


@pytest.mark.slow
@pytest.mark.parametrize("case", SEED_QUESTIONS, ids=[c["id"] for c in SEED_QUESTIONS])
def test_seed_questions(extractive_seed_engine: Engine, case: dict):
    history: list[tuple[str, str]] = []
    for earlier in case.get("history", []):
        history.append((earlier, extractive_seed_engine.ask(earlier, history=tuple(history)).answer))
    answer = extractive_seed_engine.ask(case["question"], history=tuple(history))
    assert answer.backend == "extractive"
    if not case["answerable"]:
        assert answer.refused, answer.answer
        assert answer.citations == ()
        return
    assert not answer.refused, f"refused; standalone question: {answer.standalone_question!r}"
    assert answer_contains(answer.answer, case["answers"]), answer.answer
    assert answer.citations and all(c.file == SEED_FILE.name for c in answer.citations)
    for citation in answer.citations:
        assert citation.passage[citation.sentence_start:citation.sentence_end] == citation.sentence
        assert f"[{citation.number}]" in answer.answer
