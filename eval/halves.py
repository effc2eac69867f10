"""An eval run's figures on each half of its questions, to tell a general improvement from fitting.

    python -m eval.halves RUN.json [RUN.json ...]

RUN.json is what `newsqa eval --json --out RUN.json` writes. The halves are eval.fit_extractive's: a
fixed split of each dataset by a hash of the question id, half A being the one the extractive
answerer's weights were fitted on. Prints each metric for the whole set and for each half (latency left out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval import metrics
from eval.fit_extractive import half

SHOWN = metrics.RETRIEVAL + metrics.ANSWER + metrics.REFUSAL


def by_half(questions: list[dict]) -> dict[str, dict]:
    """Metric means over all the questions and over each half."""
    parts = {
        "all": questions,
        "A": [q for q in questions if half(q["id"]) == "A"],
        "B": [q for q in questions if half(q["id"]) == "B"],
    }
    return {name: metrics.aggregate([q["scores"] for q in part], [], []) for name, part in parts.items()}


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
            print(f"  {'metric':<20} {'all':>6} {'A':>6} {'B':>6}")
            for metric in SHOWN:
                values = [figures[part].get(metric) for part in ("all", "A", "B")]
                print(f"  {metric:<20} " + " ".join("     -" if v is None else f"{v:6.3f}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
