"""Unanswerable questions by construction: a dataset's answerable questions, asked off their period.

    python -m eval.constructed DATASET_DIR OUT_DIR

DATASET_DIR holds questions.jsonl and articles/ (as ../shared/datasets/realtimeqa_2022 does). OUT_DIR
gets articles/, every article that is evidence for no answerable question (hard links, copies where
the file system will not link), and questions.jsonl, each answerable question asked again over those
articles: `answerable: false`, no answers and no evidence, its question_date kept, its id suffixed
`-offperiod`. The dataset's own unanswerable questions are few (35 of realtimeqa_2022's 352) and
hand-picked; these are the answerable ones' wording and topics with the answer taken away, so the
refusal rate on them says whether the answerer refuses when the news it would need is not there.

A question is dropped when its gold answer still appears (whole words, case-insensitive) in a
remaining article that could be retrieved for it (published on or before its question date, or
undated): the answer may then still be in the index, and a correct answer would count as a failure.
OUT_DIR/dropped.tsv lists them, each with such an article. OUT_DIR/articles is replaced on each run.
Conversations are left out: their follow-up turns make no sense without the turns before. Measure
with `newsqa eval OUT_DIR/questions.jsonl --articles OUT_DIR/articles --llm extractive`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from app.documents import Article
from eval.dataset import ARTICLES_FOLDER, QUESTIONS_FILE, Question, load
from eval.metrics import answer_contains
from ingest.formats import Failure
from ingest.sources import Limits, Loader, expand

SUFFIX = "-offperiod"
DROPPED_FILE = "dropped.tsv"  # each dropped question's id and the remaining article that holds its answer


@dataclass(frozen=True)
class Built:
    questions: int  # off-period questions written
    dropped: dict[str, str]  # id of an answerable question -> a remaining article's file that holds its answer
    articles: int  # article files kept (evidence for no answerable question)
    skipped: int  # conversations and unanswerable questions, not turned into off-period ones


def build(dataset_dir: Path, out_dir: Path) -> Built:
    """Write OUT_DIR/articles/ and OUT_DIR/questions.jsonl (see the module's docstring)."""
    data = load(dataset_dir / QUESTIONS_FILE)
    if data.problems:
        raise RuntimeError(f"{data.path}: {len(data.problems)} malformed lines, e.g. {data.problems[0]}")
    answerable = [q for q in data.items if isinstance(q, Question) and q.answerable]
    evidence = {file for q in answerable for file in q.evidence}
    files = {
        path: read for path, read in _read_articles(dataset_dir / ARTICLES_FOLDER).items() if path.name not in evidence
    }
    articles = out_dir / ARTICLES_FOLDER
    if articles.resolve() == (dataset_dir / ARTICLES_FOLDER).resolve():
        raise RuntimeError("OUT_DIR must not be the dataset's own folder")
    shutil.rmtree(articles, ignore_errors=True)  # an earlier build's articles would be indexed too
    articles.mkdir(parents=True)
    for path in files:
        _link(path, articles / path.name)
    kept = [article for read in files.values() for article in read]
    lines, dropped = [], {}
    for question in answerable:
        holding = _holding(question, kept)
        if holding:
            dropped[question.id] = holding
        else:
            lines.append(json.dumps(_off_period(question), ensure_ascii=False))
    (out_dir / QUESTIONS_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (out_dir / DROPPED_FILE).write_text("".join(f"{q}\t{file}\n" for q, file in dropped.items()), encoding="utf-8")
    return Built(len(lines), dropped, len(files), len(data.items) - len(answerable))


def _read_articles(folder: Path) -> dict[Path, list[Article]]:
    """Each file of the folder with its articles as ingestion reads them (their dates from front
    matter or metadata); evidence names files, and a JSONL file may hold several articles."""
    if not folder.is_dir():
        raise RuntimeError(f"no articles folder at {folder}")
    found: dict[Path, list[Article]] = {}
    with Loader(Limits(max_bytes=1 << 30, timeout=0)) as loader:
        for item in expand([str(folder)]):
            read = [item] if isinstance(item, Failure) else loader.load(item)
            failure = next((r for r in read if isinstance(r, Failure)), None)
            if failure:
                raise RuntimeError(f"cannot read article {failure.source}: {failure.reason}")
            found[Path(item)] = read
    return found


def _holding(question: Question, articles: list[Article]) -> str | None:
    """The file of a remaining article the question could be answered from that holds a gold
    answer; None when none does."""

    def retrievable(published: date | None) -> bool:
        return question.question_date is None or published is None or published <= question.question_date

    return next(
        (
            a.file
            for a in articles
            if retrievable(a.published) and answer_contains(f"{a.title}\n{a.body}", question.answers)
        ),
        None,
    )


def source_id(question_id: str) -> str:
    """The id of the question an off-period one was made from; any other id as it is."""
    return question_id.removesuffix(SUFFIX)


def _off_period(question: Question) -> dict:
    return {
        "id": question.id + SUFFIX,
        "question": question.question,
        "answers": [],
        "evidence": [],
        "answerable": False,
        "question_date": question.question_date.isoformat() if question.question_date else None,
    }


def _link(source: Path, target: Path) -> None:
    """A hard link, so that 400 articles cost no space; a copy across file systems."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.constructed", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a folder with questions.jsonl and articles/")
    parser.add_argument("out", type=Path, help="where to write articles/ and questions.jsonl")
    args = parser.parse_args(argv)
    try:
        built = build(args.dataset, args.out)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 2
    print(
        f"{built.questions} off-period questions over {built.articles} articles in {args.out}; "
        f"{len(built.dropped)} dropped (a remaining article holds the answer), "
        f"{built.skipped} conversations and unanswerable questions left out; the dropped ones in "
        f"{args.out / DROPPED_FILE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
