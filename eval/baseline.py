"""The baseline: per dataset and metric, the figure a run must not fall below (beyond a tolerance).

    {"datasets": {"seed": {"backend": "extractive", "updated": "2026-11-28",
                           "metrics": {"hit@1": {"value": 0.97, "tolerance": 0.03}, ...}}}}

Latency is left out (it depends on the machine and its load); false_refusal_rate and answer_words
(a median count of words, with a tolerance in words) regress when they rise, every other metric when
it falls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from eval import output
from eval.metrics import LOWER_IS_BETTER, QUALITY

DEFAULT_FILE = Path(__file__).resolve().parent / "baseline.json"
# About one question in thirty: the own sets are small, and their results are deterministic with
# the extractive answerer, so a change that loses a question or two on them shows.
DEFAULT_TOLERANCE = 0.03
# A metric counted in words gets a tolerance in words: 0.03 of a word would fail on any change.
DEFAULT_TOLERANCES = {"answer_words": 3.0}


def default_tolerance(metric: str) -> float:
    return DEFAULT_TOLERANCES.get(metric, DEFAULT_TOLERANCE)


@dataclass(frozen=True)
class Regression:
    dataset: str
    metric: str
    value: float
    baseline: float
    tolerance: float

    def __str__(self) -> str:
        worse = "rose above" if self.metric in LOWER_IS_BETTER else "fell below"
        value, floor, tolerance = (output.figure(self.metric, v) for v in (self.value, self.baseline, self.tolerance))
        return f"{self.dataset}: {self.metric} {worse} its baseline: {value} vs {floor} (tolerance {tolerance})"


def read(path: Path) -> dict:
    """The baseline file's content; an empty baseline when the file does not exist yet."""
    if not path.exists():
        return {"datasets": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RuntimeError(f"cannot read baseline {path}: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise RuntimeError(f"baseline {path} has no 'datasets' object")
    return data


def compare(baseline: dict, dataset: str, metrics: dict) -> list[Regression]:
    """The metrics of `dataset` that are worse than its baseline by more than the tolerance."""
    expected = baseline["datasets"].get(dataset, {}).get("metrics", {})
    regressions = []
    for metric, entry in expected.items():
        value = metrics.get(metric)
        if value is None or metric not in QUALITY:
            continue
        floor, tolerance = float(entry["value"]), float(entry.get("tolerance", default_tolerance(metric)))
        worse = value > floor + tolerance if metric in LOWER_IS_BETTER else value < floor - tolerance
        if worse:
            regressions.append(Regression(dataset, metric, value, floor, tolerance))
    return regressions


def updated(baseline: dict, dataset: str, metrics: dict, backend: str, today: date | None = None) -> dict:
    """The baseline with `dataset`'s figures replaced by these, keeping each metric's tolerance."""
    old = baseline["datasets"].get(dataset, {}).get("metrics", {})
    entry = {
        "backend": backend,
        "updated": (today or date.today()).isoformat(),
        "metrics": {
            metric: {
                "value": round(value, 4),
                "tolerance": old.get(metric, {}).get("tolerance", default_tolerance(metric)),
            }
            for metric, value in metrics.items()
            if metric in QUALITY and value is not None
        },
    }
    return {**baseline, "datasets": {**baseline["datasets"], dataset: entry}}


def write(path: Path, baseline: dict) -> None:
    output.write(path, json.dumps(baseline, indent=2, sort_keys=True) + "\n")
