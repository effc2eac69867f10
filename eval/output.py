"""What an eval run writes: the terminal table, the JSON document, the Markdown report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from eval.metrics import ALL, LATENCY, WORDS, first_sentence
from eval.runner import DatasetResult, QuestionResult


def figure(metric: str, value: float | None) -> str:
    """A metric's value as shown: milliseconds whole, words to a tenth (a median of an even count
    can fall between two), shares to three places."""
    if value is None:
        return "-"
    if metric in LATENCY:
        return f"{value:.0f}"
    return f"{value:.1f}" if metric in WORDS else f"{value:.3f}"


def table(results: Sequence[DatasetResult], flagged: set[tuple[str, str]] = frozenset()) -> str:
    """Metrics down, datasets across; a metric worse than its baseline is marked with `!`."""
    rows = [["metric", *(r.name for r in results)]]
    rows.append(["questions", *(str(len(r.questions)) for r in results)])
    for metric in ALL:
        if all(r.metrics.get(metric) is None for r in results):
            continue
        rows.append(
            [
                metric,
                *(
                    figure(metric, r.metrics.get(metric)) + ("!" if (r.name, metric) in flagged else "")
                    for r in results
                ),
            ]
        )
    rows.append(["seconds", *(f"{r.seconds:.1f}" for r in results)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(results: Sequence[DatasetResult]) -> dict:
    return {"datasets": {r.name: r.as_dict() for r in results}}


def report(results: Sequence[DatasetResult], regressions: Sequence[str] = ()) -> str:
    """Markdown: the metrics, then every failed question with what would show a person why."""
    parts = ["# newsqa eval report", ""]
    if regressions:
        parts += ["## Regressions against the baseline", "", *(f"- {r}" for r in regressions), ""]
    parts += ["## Metrics", "", "```", table(results), "```", ""]
    for result in results:
        failed = [q for q in result.questions if q.failed]
        parts += [f"## {result.name}: {len(failed)} of {len(result.questions)} questions failed", ""]
        if result.backend:
            parts += [f"Answer backend: {result.backend}.", ""]
        if result.problems:
            parts += ["Skipped lines of the dataset:", "", *(f"- {p}" for p in result.problems), ""]
        for question in failed:
            parts += _failure(question)
    return "\n".join(parts)


def _failure(result: QuestionResult) -> list[str]:
    q = result.question
    evidence = set(q.evidence)
    lines = [f"### {q.id}", "", f"**Question:** {q.question}", ""]
    if result.standalone_question and result.standalone_question != q.question:
        lines += [f"**Asked as:** {result.standalone_question}", ""]
    if q.question_date:
        lines += [f"**As of:** {q.question_date.isoformat()}", ""]
    gold = " | ".join(q.answers) if q.answerable else "(unanswerable: should be refused)"
    given = result.answer or "(empty)"
    lines += [f"**Gold:** {gold}", "", f"**Given:** {given}" + (" (refused)" if result.refused else ""), ""]
    if result.error:
        lines += [f"**Error:** {result.error}", ""]
    if result.answer and not result.refused:
        lines += [f"**First sentence:** {first_sentence(result.answer) or '(none)'}", ""]
        lines += [f"**Phrase:** {result.phrase or '(none marked)'}", ""]
    if result.cited:
        lines += ["**Cited:** " + "; ".join(f"[{c['number']}] {c['title']}" for c in result.cited), ""]
    if q.evidence:
        lines += ["**Evidence:** " + ", ".join(q.evidence), ""]
    if result.retrieved:
        lines += ["**Retrieved:**", ""]
        lines += [
            f"{p.rank}. {p.title} ({p.file}{', evidence' if p.file in evidence else ''})" for p in result.retrieved
        ]
        lines.append("")
    return lines


def write(path: Path, text: str) -> None:
    """Written beside the target and moved in place, so a failed run leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".partial")
    staging.write_text(text, encoding="utf-8")
    staging.replace(path)


def json_text(results: Sequence[DatasetResult]) -> str:
    return json.dumps(to_json(results), indent=2, ensure_ascii=False) + "\n"
