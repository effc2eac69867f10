"""eval.halves on a hand-made run: every metric, the answer-form ones and ask latency included, per half."""

from __future__ import annotations

import json

from eval import halves


def question(question_id: str, words: int, ask_ms: float, phrase_contains: bool) -> dict:
    scores = {"answer_contains": True, "phrase_contains": phrase_contains, "answer_words": words}
    return {"id": question_id, "scores": scores, "retrieve_ms": 1.0, "ask_ms": ask_ms}


# q4 and q6 fall in half A, q1 and q2 in half B (eval.fit_extractive.half)
RUN = {
    "datasets": {
        "tiny": {
            "questions": [
                question("q4", 10, 100.0, True),
                question("q6", 30, 300.0, False),
                question("q1", 5, 10.0, True),
                question("q2", 7, 20.0, True),
            ]
        }
    }
}


def test_each_half_gets_its_own_figures():
    figures = halves.by_half(RUN["datasets"]["tiny"]["questions"])
    assert figures["A"]["phrase_contains"] == 0.5 and figures["B"]["phrase_contains"] == 1.0
    assert figures["all"]["answer_words"] == 8.5  # the median of 5, 7, 10, 30
    assert (figures["A"]["answer_words"], figures["B"]["answer_words"]) == (20.0, 6.0)
    assert figures["B"]["ask_ms_p95"] == 19.5


def test_an_off_period_question_falls_in_the_half_of_its_source():
    made = [question("q4-offperiod", 10, 100.0, True), question("q1-offperiod", 5, 10.0, True)]
    figures = halves.by_half(made)
    assert (figures["A"]["answer_words"], figures["B"]["answer_words"]) == (10.0, 5.0)


def test_the_table_shows_the_answer_form_and_latency(tmp_path, capsys):
    run = tmp_path / "run.json"
    run.write_text(json.dumps(RUN))
    assert halves.main([str(run)]) == 0
    lines = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["questions"] == ["4", "2", "2"]
    assert lines["answer_words"] == ["8.5", "20.0", "6.0"]
    assert lines["phrase_contains"] == ["0.750", "0.500", "1.000"]
    assert lines["ask_ms_p95"] == ["270", "290", "20"]
    assert lines["faithfulness"] == ["-", "-", "-"]
