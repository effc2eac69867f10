"""An eval run's figures on each half of its questions, to tell a general improvement from fitting.

    python -m eval.halves RUN.json [RUN.json ...]

RUN.json is what `newsqa eval --json --out RUN.json` writes. The halves are eval.fit_extractive's: a
fixed split of each dataset by a hash of the question id, half A being the one the extractive
answerer's weights were fitted on; an off-period question (eval.constructed) falls in the half of the
question it was made from, whose wording the weights may have been fitted on. Prints each metric for the whole set and for each half, with
each part's ask latency at the 95th percentile (its own questions' times).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval import metrics
from eval.constructed import source_id
from eval.fit_extractive import half
from eval.output import figure

SHOWN = metrics.RETRIEVAL + metrics.ANSWER + metrics.REFUSAL + ("ask_ms_p50", "ask_ms_p95")


def _parts(questions: list[dict]) -> dict[str, list[dict]]:
    return {
        "all": questions,
        "A": [q for q in questions if half(source_id(q["id"])) == "A"],
        "B": [q for q in questions if half(source_id(q["id"])) == "B"],
    }


def by_half(questions: list[dict]) -> dict[str, dict]:
    """The dataset metrics (metrics.aggregate) over all the questions and over each half."""
    return {
        name: metrics.aggregate(
            [q["scores"] for q in part],
            [q["retrieve_ms"] for q in part if q.get("retrieve_ms") is not None],
            [q["ask_ms"] for q in part if q.get("ask_ms") is not None],
        )
        for name, part in _parts(questions).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.halves", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="files written by `newsqa eval --json --out FILE`")
    args = parser.parse_args(argv)
    for run in args.runs:
        try:
            datasets = json.loads(run.read_text())["datasets"]
        except (OSError, ValueError, KeyError) as error:
            print(f"{run}: not an eval run ({error})", file=sys.stderr)
            return 2
        for name, result in datasets.items():
            figures = by_half(result["questions"])
            print(f"{run.name}: {name}")
            counts = [len(part) for part in _parts(result["questions"]).values()]
            print(f"  {'metric':<24} {'all':>7} {'A':>7} {'B':>7}")
            print(f"  {'questions':<24} " + " ".join(f"{n:>7}" for n in counts))
            for metric in SHOWN:
                values = [figure(metric, figures[part].get(metric)) for part in ("all", "A", "B")]
                print(f"  {metric:<24} " + " ".join(f"{v:>7}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
