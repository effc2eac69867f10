"""Eval datasets: JSONL files of questions and conversations, and the project's own sets.

A line is a question,
    {"id", "question", "answers": [...], "evidence": [file names], "answerable", "question_date"?}
or a conversation, asked in order with its history,
    {"id", "turns": [{"question", "answers", "evidence"?, "answerable"?}, ...], "evidence"?, "question_date"?}
where a turn takes the conversation's evidence and question_date unless it names its own, and is
answerable when it has gold answers unless it says otherwise.

The project's own sets live in eval/datasets/NAME/questions.jsonl, each with the articles it is
about in eval/datasets/NAME/articles/, so a set is self-contained and runs from an installed wheel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

OWN_SETS = Path(__file__).resolve().parent / "datasets"
QUESTIONS_FILE = "questions.jsonl"
ARTICLES_FOLDER = "articles"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    answerable: bool
    question_date: date | None = None


@dataclass(frozen=True)
class Conversation:
    """Questions asked one after another, each with the ones before (and their answers) as history."""

    id: str
    turns: tuple[Question, ...]


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class Dataset:
    name: str
    path: Path
    items: list[Question | Conversation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # malformed lines, skipped
    articles: Path | None = None  # the folder to index for this set; None: the current index

    @property
    def questions(self) -> list[Question]:
        return [q for item in self.items for q in (item.turns if isinstance(item, Conversation) else (item,))]


class BadLine(ValueError):
    pass


def dataset_name(path: Path) -> str:
    """The file's stem, or its folder's name for the usual `questions.jsonl` (quail_news, seed, ...)."""
    return path.parent.name if path.name == QUESTIONS_FILE and path.parent.name else path.stem


def load(path: Path, articles: Path | None = None) -> Dataset:
    """Read a JSONL dataset; a malformed line becomes a Problem and is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RuntimeError(f"cannot read dataset {path}: {error}") from error
    dataset = Dataset(dataset_name(path), path, articles=articles)
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = parse_line(line)
            if item.id in seen:
                raise BadLine(f"duplicate id {item.id!r}")
        except BadLine as error:
            dataset.problems.append(Problem(number, str(error)))
            continue
        seen.add(item.id)
        dataset.items.append(item)
    return dataset


def own_sets() -> list[Dataset]:
    """The project's eval sets, each with its articles folder."""
    return [load(path, path.parent / ARTICLES_FOLDER) for path in sorted(OWN_SETS.glob(f"*/{QUESTIONS_FILE}"))]


def parse_line(line: str) -> Question | Conversation:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise BadLine(f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise BadLine("not a JSON object")
    item_id = _text(record, "id")
    if "turns" in record:
        turns = record["turns"]
        if not isinstance(turns, list) or not turns:
            raise BadLine("'turns' must be a non-empty list")
        if not all(isinstance(t, dict) for t in turns):
            raise BadLine("every turn must be a JSON object")
        return Conversation(
            item_id,
            tuple(
                _question({**turn, "id": f"{item_id}#{n}"}, defaults=record) for n, turn in enumerate(turns, start=1)
            ),
        )
    return _question(record, defaults={})


def _question(record: dict, defaults: dict) -> Question:
    answers = _strings(record, "answers")
    evidence = _strings(record, "evidence") if "evidence" in record else _strings(defaults, "evidence")
    answerable = record.get("answerable", bool(answers))
    if not isinstance(answerable, bool):
        raise BadLine("'answerable' must be true or false")
    if answerable and not answers:
        raise BadLine("an answerable question needs at least one gold answer")
    raw_date = record.get("question_date", defaults.get("question_date"))
    try:
        question_date = date.fromisoformat(raw_date) if raw_date is not None else None
    except (TypeError, ValueError):
        raise BadLine(f"'question_date' must be YYYY-MM-DD, not {raw_date!r}") from None
    return Question(_text(record, "id"), _text(record, "question"), answers, evidence, answerable, question_date)


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    if key == "id" and type(value) is int:  # numbered datasets
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise BadLine(f"'{key}' is missing or not a non-empty string")
    return value.strip()


def _strings(record: dict, key: str) -> tuple[str, ...]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadLine(f"'{key}' must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())
