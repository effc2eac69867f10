"""Baseline comparison: which metric regressed, in which direction, with which tolerance."""

from __future__ import annotations

import json
from datetime import date

import pytest

from eval import baseline

SAVED = {
    "datasets": {
        "seed": {
            "backend": "extractive",
            "metrics": {
                "hit@1": {"value": 0.9, "tolerance": 0.05},
                "answer_contains": {"value": 0.8},  # the default tolerance
                "false_refusal_rate": {"value": 0.1, "tolerance": 0.02},
            },
        }
    }
}


def test_no_regression_within_tolerance():
    metrics = {
        "hit@1": 0.86,
        "answer_contains": 0.8 - baseline.DEFAULT_TOLERANCE + 0.001,
        "false_refusal_rate": 0.119,
        "ask_ms_p50": 9999.0,
    }
    assert baseline.compare(SAVED, "seed", metrics) == []


def test_a_metric_that_fell_below_is_named():
    (regression,) = baseline.compare(SAVED, "seed", {"hit@1": 0.84, "answer_contains": 0.8})
    assert (regression.dataset, regression.metric, regression.value, regression.baseline) == (
        "seed",
        "hit@1",
        0.84,
        0.9,
    )
    assert "seed: hit@1 fell below its baseline: 0.840 vs 0.900" in str(regression)


def test_false_refusal_rate_regresses_when_it_rises():
    assert baseline.compare(SAVED, "seed", {"false_refusal_rate": 0.0}) == []
    (regression,) = baseline.compare(SAVED, "seed", {"false_refusal_rate": 0.13})
    assert "false_refusal_rate rose above" in str(regression)


def test_answer_words_regresses_when_it_rises_by_more_words_than_its_tolerance():
    saved = {"datasets": {"seed": {"metrics": {"answer_words": {"value": 20.0}}}}}  # the default: 3 words
    assert baseline.compare(saved, "seed", {"answer_words": 23.0}) == []
    assert baseline.compare(saved, "seed", {"answer_words": 8.0}) == []  # shorter is better
    (regression,) = baseline.compare(saved, "seed", {"answer_words": 23.5})
    assert str(regression) == "seed: answer_words rose above its baseline: 23.5 vs 20.0 (tolerance 3.0)"


def test_new_answer_metrics_are_compared():
    saved = {
        "datasets": {
            "seed": {
                "metrics": {
                    name: {"value": 0.8} for name in ("first_sentence_contains", "phrase_contains", "faithfulness")
                }
            }
        }
    }
    figures = {"first_sentence_contains": 0.7, "phrase_contains": 0.79, "faithfulness": None}
    assert [r.metric for r in baseline.compare(saved, "seed", figures)] == ["first_sentence_contains"]


def test_unknown_dataset_and_missing_metrics_are_not_regressions():
    assert baseline.compare(SAVED, "other", {"hit@1": 0.0}) == []
    assert baseline.compare(SAVED, "seed", {"hit@1": None}) == []


def test_update_keeps_tolerances_and_other_datasets_and_skips_latency():
    saved = {"datasets": {**SAVED["datasets"], "dated": {"metrics": {"hit@1": {"value": 0.5}}}}}
    new = baseline.updated(
        saved,
        "seed",
        {
            "hit@1": 0.912345,
            "recall@5": 1.0,
            "answer_words": 21.5,
            "retrieve_ms_p50": 12.0,
            "refusal_rate": None,
            "faithfulness": None,
        },
        "extractive",
        today=date(2026, 1, 2),
    )
    seed = new["datasets"]["seed"]
    assert seed["metrics"] == {
        "hit@1": {"value": 0.9123, "tolerance": 0.05},
        "recall@5": {"value": 1.0, "tolerance": baseline.DEFAULT_TOLERANCE},
        "answer_words": {"value": 21.5, "tolerance": 3.0},  # a new entry's tolerance is in words
    }
    assert (seed["backend"], seed["updated"]) == ("extractive", "2026-01-02")
    assert new["datasets"]["dated"] == saved["datasets"]["dated"]
    assert saved["datasets"]["seed"] == SAVED["datasets"]["seed"]  # the input is left alone


def test_read_write_round_trip_and_errors(tmp_path):
    path = tmp_path / "baseline.json"
    assert baseline.read(path) == {"datasets": {}}
    baseline.write(path, SAVED)
    assert baseline.read(path) == SAVED
    path.write_text(json.dumps({"seed": {}}))
    with pytest.raises(RuntimeError, match="no 'datasets'"):
        baseline.read(path)
    path.write_text("{")
    with pytest.raises(RuntimeError, match="cannot read baseline"):
        baseline.read(path)
