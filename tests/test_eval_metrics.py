"""The eval metrics on hand-made cases, edge cases included."""

from __future__ import annotations

import pytest

from eval import metrics
from eval.dataset import Question


def test_normalize_drops_case_punctuation_articles_and_citation_markers():
    assert metrics.normalize("The U.S. said: “An answer” [1][2], a yes!") == "u s said answer yes"
    assert metrics.normalize("  ") == ""


@pytest.mark.parametrize(
    "answer, golds, expected",
    [
        ("Talks start in Geneva next month [1].", ["Geneva"], True),
        ("talks start in GENEVA.", ["geneva"], True),
        ("He called it the red line", ["a red line"], True),  # articles do not count
        ("Genevan cheese", ["Geneva"], False),  # whole words only
        ("Talks start in Geneva", ["Paris", "Geneva"], True),  # any gold answer
        ("", ["Geneva"], False),  # empty answer
        ("Geneva", [], None),  # no gold answer: does not apply
        ("Geneva", ["", "  "], None),
    ],
)
def test_answer_contains(answer, golds, expected):
    assert metrics.answer_contains(answer, golds) is expected


def test_token_f1_is_the_best_overlap_with_any_gold():
    assert metrics.token_f1("Joe Biden", ["Joe Biden"]) == 1.0
    # given: joe biden warned (3 words), gold: biden (1): precision 1/3, recall 1 -> 0.5
    assert metrics.token_f1("Joe Biden warned", ["Biden"]) == pytest.approx(0.5)
    assert metrics.token_f1("Joe Biden warned", ["Putin", "Biden"]) == pytest.approx(0.5)
    assert metrics.token_f1("Putin", ["Biden"]) == 0.0


def test_token_f1_counts_repeated_words_once_each():
    # given: biden biden (2), gold: biden (1): one common word, precision 1/2, recall 1
    assert metrics.token_f1("Biden, Biden", ["Biden"]) == pytest.approx(2 / 3)


def test_token_f1_edge_cases():
    assert metrics.token_f1("", ["Geneva"]) == 0.0
    assert metrics.token_f1("Geneva", []) is None


def test_first_sentence_drops_markers_before_splitting():
    assert metrics.first_sentence("Talks start in Geneva [1]. Paris hosts the next round [2].") == (
        "Talks start in Geneva."
    )
    assert metrics.first_sentence("Biden warned Putin [1, 2]") == "Biden warned Putin"
    assert metrics.first_sentence("") == ""


def test_first_sentence_contains_only_looks_at_the_first_sentence():
    first = score(answer="The talks were long [1]. They take place in Geneva [1].")
    assert first["answer_contains"] is True
    assert first["first_sentence_contains"] is False
    assert score(answer="In Geneva [1]. It was long.")["first_sentence_contains"] is True


@pytest.mark.parametrize(
    "phrase, golds, expected",
    [
        ("Geneva", ["Geneva"], True),
        ("Geneva, Switzerland", ["Geneva"], True),  # the gold in the phrase
        ("Biden", ["Joe Biden"], True),  # the phrase in the gold
        ("the Biden", ["Joe Biden"], True),  # normalised: articles and case do not count
        ("Genevan", ["Geneva"], False),  # whole words only, either way round
        ("Bid", ["Joe Biden"], False),
        ("Paris", ["Geneva", "Paris"], True),  # any gold answer
        (None, ["Geneva"], False),  # no phrase marked
        ("the", ["Geneva"], False),  # nothing left of the phrase
        ("Geneva", [], None),  # no gold answer: does not apply
    ],
)
def test_phrase_contains_either_way_round(phrase, golds, expected):
    assert metrics.phrase_contains(phrase, golds) is expected


def test_phrase_contains_of_answered_questions_without_a_phrase_is_false():
    assert score(phrase=None)["phrase_contains"] is False
    assert score(phrase="Lausanne")["phrase_contains"] is False


def test_answer_words_counts_words_without_markers():
    assert metrics.answer_words("Talks start in Geneva [1]. Paris next [1, 2].") == 6
    assert metrics.answer_words("") is None  # an engine error gave no answer


def test_faithfulness_is_the_share_of_supported_sentences():
    assert metrics.faithfulness([True, False, True, True]) == 0.75
    assert metrics.faithfulness([]) is None


RANKED = ["b.md", "a.md", "b.md", "c.md", "d.md", "e.md", "f.md", "g.md", "h.md", "i.md", "j.md"]


def test_retrieval_metrics_on_passage_ranks():
    assert metrics.hit_at(RANKED, ["a.md"], 1) is False
    assert metrics.hit_at(RANKED, ["b.md"], 1) is True
    assert metrics.hit_at(RANKED, ["a.md"], 5) is True
    assert metrics.hit_at(RANKED, ["f.md"], 5) is False
    assert metrics.recall_at(RANKED, ["a.md", "f.md"], 5) == 0.5
    assert metrics.recall_at(RANKED, ["a.md", "c.md"], 5) == 1.0
    assert metrics.mrr_at(RANKED, ["c.md", "a.md"], 10) == 0.5
    assert metrics.mrr_at(RANKED, ["i.md"], 10) == pytest.approx(1 / 10)
    assert metrics.mrr_at(RANKED, ["j.md"], 10) == 0.0  # rank 11: outside the cut-off


def test_retrieval_metrics_without_evidence_or_passages():
    for metric in (metrics.hit_at, metrics.recall_at, metrics.mrr_at):
        assert metric(RANKED, [], 5) is None
    assert metrics.hit_at([], ["a.md"], 5) is False
    assert metrics.recall_at([], ["a.md"], 5) == 0.0
    assert metrics.mrr_at([], ["a.md"], 10) == 0.0


def test_citation_precision():
    assert metrics.citation_precision(["a.md", "a.md", "b.md"], ["a.md"]) == 0.5  # articles, not citations
    assert metrics.citation_precision(["a.md"], ["a.md", "b.md"]) == 1.0
    assert metrics.citation_precision([], ["a.md"]) is None  # no citation
    assert metrics.citation_precision(["a.md"], []) is None  # no evidence


def score(**overrides):
    case = dict(
        answer="It is Geneva [1].",
        refused=False,
        golds=["Geneva"],
        evidence=["a.md"],
        answerable=True,
        ranked_files=["a.md"],
        cited_files=["a.md"],
        phrase="Geneva",
        supported=[True],
    )
    return metrics.score_question(**{**case, **overrides})


def test_score_of_a_right_answer():
    assert score() == {
        "hit@1": True,
        "hit@5": True,
        "recall@5": 1.0,
        "mrr@10": 1.0,
        "answer_contains": True,
        "first_sentence_contains": True,
        "phrase_contains": True,
        "token_f1": pytest.approx(0.5),
        "citation_precision": 1.0,
        "faithfulness": 1.0,
        "answer_words": 3,
        "refusal_rate": None,
        "false_refusal_rate": False,
    }


def test_a_refused_answerable_question_scores_as_an_empty_answer_and_a_false_refusal():
    scores = score(answer="The articles do not say; Geneva was not mentioned.", refused=True)
    assert scores["answer_contains"] is False
    assert scores["token_f1"] == 0.0
    assert scores["false_refusal_rate"] is True
    assert scores["citation_precision"] is None
    assert scores["refusal_rate"] is None
    assert scores["first_sentence_contains"] is False
    # the answers given are what these measure; the refusal is false_refusal_rate's
    assert scores["phrase_contains"] is None
    assert scores["answer_words"] is None and scores["faithfulness"] is None


def test_unanswerable_question_scores_refusal_only():
    refused = score(
        answer="Not in the articles.", refused=True, golds=[], evidence=[], answerable=False, cited_files=[]
    )
    assert refused["refusal_rate"] is True
    assert refused["false_refusal_rate"] is None
    assert {k for k, v in refused.items() if v is not None} == {"refusal_rate"}
    answered = score(golds=[], evidence=[], answerable=False, supported=[True, False])
    assert answered["refusal_rate"] is False
    assert answered["citation_precision"] is None
    assert answered["first_sentence_contains"] is None and answered["phrase_contains"] is None
    # an answer given to an unanswerable question still has a length and sentences to check
    assert answered["answer_words"] == 3 and answered["faithfulness"] == 0.5


def test_aggregate_means_only_where_a_metric_applies():
    scores = [
        score(),
        score(ranked_files=["x.md", "a.md"], answer="Paris"),
        score(answer="No.", refused=True, golds=[], evidence=[], answerable=False, cited_files=[]),
    ]
    result = metrics.aggregate(scores, retrieve_ms=[10.0, 20.0, 30.0], ask_ms=[])
    assert result["hit@1"] == 0.5
    assert result["mrr@10"] == 0.75
    assert result["answer_contains"] == 0.5
    assert result["refusal_rate"] == 1.0
    assert result["false_refusal_rate"] == 0.0
    assert result["retrieve_ms_p50"] == 20.0
    assert result["retrieve_ms_p95"] == pytest.approx(29.0)
    assert result["ask_ms_p50"] is None


def test_aggregate_takes_the_median_of_answer_words():
    scores = [
        score(answer="One two three."),
        score(answer="One two three four five six seven eight nine ten [1]."),
        score(answer="One two [1]."),
        score(answer="Not in the articles at all, sorry.", refused=True),  # not an answer given
    ]
    result = metrics.aggregate(scores, [], [])
    assert result["answer_words"] == 3.0  # the mean of 2, 3 and 10 would be 5
    assert (
        metrics.aggregate([score(answer="One two."), score(answer="One two three four.")], [], [])["answer_words"]
        == 3.0
    )


def test_aggregate_reports_no_faithfulness_without_sentences():
    assert metrics.aggregate([score(supported=[])], [], [])["faithfulness"] is None
    both = metrics.aggregate([score(supported=[True, False]), score(supported=[True])], [], [])
    assert both["faithfulness"] == 0.75  # a mean over questions, not over sentences (2 / 3)


def test_aggregate_without_unanswerable_questions_reports_no_refusal_rate():
    assert metrics.aggregate([score()], [], [])["refusal_rate"] is None


def test_ranking_quality_scores_the_questions_with_evidence_and_lists_the_misses():
    questions = [
        Question(id=name, question=text, answers=(), evidence=evidence, answerable=bool(evidence))
        for name, text, evidence in (
            ("found", "a", ("a.md",)),
            ("third", "b", ("b.md",)),
            ("missed", "c", ("c.md",)),
            ("unanswerable", "d", ()),
        )
    ]
    ranked = {"a": ["a.md"], "b": ["x.md", "y.md", "b.md"], "c": ["x.md"] * 5 + ["c.md"], "d": ["a.md"]}
    figures = metrics.ranking_quality(lambda q: ranked[q.question], questions)
    assert figures["hits"] == 2 and figures["hit@5"] == 2 / 3
    assert figures["mrr@10"] == (1 + 1 / 3 + 1 / 6) / 3
    assert [(q.id, rank) for q, rank in figures["misses"]] == [("missed", 6)]
