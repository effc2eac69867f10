"""Unanswerable questions by construction: a dataset's answerable questions, asked off their period
or about a near miss.

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

The same command writes OUT_DIR/near_miss.jsonl, near misses by construction, asked over the
dataset's FULL articles folder: each answerable question with its most specific name swapped for
another name of the same number of words, taken from an article that is not evidence for it, so that
the articles hold news of the same shape about something else. The question's names are runs of
capitalised words; a sentence's first word starts a name only when it and the next word also stand
together mid-sentence in the articles (so "New Zealand" is a name at the start of a question and
"Which Japanese" is not), and the most specific name is the rarest in English (wordfreq's zipf
frequency, the first of equal ones). The replacement is drawn, with a fixed seed per question, from
the names found mid-sentence in the bodies of the articles that are not the question's evidence,
less the names the question already holds and those the bodies also write in lower case. The new
question has `answerable: false`, no answers and no evidence, its question_date kept and its id
suffixed `-nearmiss`. A question is dropped when it has no name to swap, or when the new name
appears (whole words, case-insensitive) in an article that holds one of its gold answers: that
article might then answer it. OUT_DIR/near_miss_dropped.tsv lists them with the reason. Measure
with `newsqa eval OUT_DIR/near_miss.jsonl --articles DATASET_DIR/articles --llm extractive --json
--out FILE`, then `python -m eval.halves FILE`.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from wordfreq import zipf_frequency

from app.documents import Article
from app.sentences import split_sentences
from eval.dataset import ARTICLES_FOLDER, QUESTIONS_FILE, Dataset, Question, load
from eval.metrics import answer_contains, normalize
from ingest.formats import Failure
from ingest.sources import Limits, Loader, expand

SUFFIX = "-offperiod"
DROPPED_FILE = "dropped.tsv"  # each dropped question's id and the remaining article that holds its answer
NEAR_MISS_SUFFIX = "-nearmiss"
NEAR_MISS_FILE = "near_miss.jsonl"
NEAR_MISS_DROPPED_FILE = "near_miss_dropped.tsv"  # each dropped question's id and the reason
NEAR_MISS_SEED = 0
NO_NAME = "no name to swap"


@dataclass(frozen=True)
class Built:
    questions: int  # off-period questions written
    dropped: dict[str, str]  # id of an answerable question -> a remaining article's file that holds its answer
    articles: int  # article files kept (evidence for no answerable question)
    skipped: int  # conversations and unanswerable questions, not turned into off-period ones


@dataclass(frozen=True)
class NearMisses:
    questions: int  # near-miss questions written
    dropped: dict[str, str]  # id of an answerable question -> why no near miss was made of it


def build(dataset_dir: Path, out_dir: Path, read: dict[Path, list[Article]] | None = None) -> Built:
    """Write OUT_DIR/articles/ and OUT_DIR/questions.jsonl (see the module's docstring); `read`, the
    dataset's articles as _read_articles gives them, saves reading them again."""
    data, answerable = _answerable(dataset_dir)
    evidence = {file for q in answerable for file in q.evidence}
    if read is None:
        read = _read_articles(dataset_dir / ARTICLES_FOLDER)
    files = {path: articles for path, articles in read.items() if path.name not in evidence}
    articles = out_dir / ARTICLES_FOLDER
    if articles.resolve() == (dataset_dir / ARTICLES_FOLDER).resolve():
        raise RuntimeError("OUT_DIR must not be the dataset's own folder")
    shutil.rmtree(articles, ignore_errors=True)  # an earlier build's articles would be indexed too
    articles.mkdir(parents=True)
    for path in files:
        _link(path, articles / path.name)
    kept = [article for articles in files.values() for article in articles]
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


def build_near_miss(dataset_dir: Path, out_dir: Path, read: dict[Path, list[Article]] | None = None) -> NearMisses:
    """Write OUT_DIR/near_miss.jsonl and OUT_DIR/near_miss_dropped.tsv (see the module's docstring)."""
    _, answerable = _answerable(dataset_dir)
    if read is None:
        read = _read_articles(dataset_dir / ARTICLES_FOLDER)
    articles = [article for found in read.values() for article in found]
    corpus = _Corpus({path.name: "\n".join(a.body for a in found) for path, found in read.items()})
    texts = [" " + normalize(f"{a.title}\n{a.body}") + " " for a in articles]
    lines, dropped = [], {}
    for question in answerable:
        swapped = corpus.swap(question)
        if isinstance(swapped, str):
            dropped[question.id] = swapped
            continue
        golds = [g for g in map(normalize, question.answers) if g]
        wanted = f" {normalize(swapped.replacement)} "
        holding = next(
            (a.file for a, t in zip(articles, texts, strict=True) if wanted in t and any(f" {g} " in t for g in golds)),
            None,
        )
        if holding:
            dropped[question.id] = (
                f"{swapped.replacement!r} (for {swapped.name!r}) is in {holding}, which holds a gold answer"
            )
        else:
            lines.append(json.dumps(_near_miss(question, swapped), ensure_ascii=False))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / NEAR_MISS_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (out_dir / NEAR_MISS_DROPPED_FILE).write_text(
        "".join(f"{q}\t{why}\n" for q, why in dropped.items()), encoding="utf-8"
    )
    return NearMisses(len(lines), dropped)


def _answerable(dataset_dir: Path) -> tuple[Dataset, list[Question]]:
    data = load(dataset_dir / QUESTIONS_FILE)
    if data.problems:
        raise RuntimeError(f"{data.path}: {len(data.problems)} malformed lines, e.g. {data.problems[0]}")
    return data, [q for q in data.items if isinstance(q, Question) and q.answerable]


# A word as names are made of: a letter or digit, then letters, digits and the marks inside names
# ("Coca-Cola", "O'Neill", "AT&T"); a name's words are capitalised and one space apart, and a
# possessive or a mark after a word ("Truss's", "Bros.", "Ian,") ends the name.
_WORD = re.compile(r"[^\W_][\w&'’-]*")
_POSSESSIVE = re.compile(r"['’]s$")
_LEAD = "\"“‘'([*#>-•– \t"  # what may stand between a sentence's start and its first word


@dataclass(frozen=True)
class _Name:
    text: str
    start: int  # offsets in the text it was found in
    end: int


@dataclass(frozen=True)
class _Swap:
    question: str  # the question with the name replaced
    name: str
    replacement: str
    source: str  # an article (not evidence for the question) that holds the replacement


def _runs(text: str) -> list[tuple[list[tuple[str, int]], bool]]:
    """The text's runs of capitalised words, each word with its offset, and whether the run's first
    word is its sentence's first (app.sentences' sentences; a line is a paragraph)."""
    starts = [span.start for span in split_sentences(text)]
    runs: list[tuple[list[tuple[str, int]], bool]] = []
    words: list[tuple[str, int]] = []
    end = 0
    for match in _WORD.finditer(text):
        word = _POSSESSIVE.sub("", match.group()).rstrip("'’-")
        capitalised = word[:1].isupper() and len(word) > 1 and not re.match(r"I['’]", word)
        if words and not (capitalised and text[end : match.start()] == " "):
            runs.append((words, _initial(text, starts, words[0][1])))
            words = []
        if capitalised:
            words.append((word, match.start()))
            end = match.start() + len(word)
            if word != match.group():
                runs.append((words, _initial(text, starts, words[0][1])))
                words = []
    if words:
        runs.append((words, _initial(text, starts, words[0][1])))
    return runs


def _initial(text: str, starts: list[int], offset: int) -> bool:
    start = starts[bisect.bisect_right(starts, offset) - 1] if starts and starts[0] <= offset else 0
    return not text[start:offset].strip(_LEAD)


def _names(text: str, known: set[str] = frozenset()) -> list[_Name]:
    """The text's names: its runs of capitalised words, a sentence's first word left out unless it and
    the next word are in `known` (so that a single first word is never a name)."""
    found = []
    for words, initial in _runs(text):
        if initial and not (len(words) > 1 and f"{words[0][0]} {words[1][0]}" in known):
            words = words[1:]
        if words:
            last, at = words[-1]
            found.append(_Name(" ".join(w for w, _ in words), words[0][1], at + len(last)))
    return found


class _Corpus:
    """The names of a dataset's article bodies, to draw replacements from."""

    def __init__(self, bodies: dict[str, str]) -> None:
        self.known: set[str] = set()  # pairs of capitalised words seen together mid-sentence
        self.files: dict[str, set[str]] = {}  # a name found mid-sentence -> the files it is in
        for file, body in bodies.items():
            for name in _names(body):
                self.files.setdefault(name.text, set()).add(file)
                words = name.text.split()
                self.known.update(f"{a} {b}" for a, b in zip(words, words[1:]))
        self.by_words: dict[int, list[str]] = {}
        for name in sorted(self.files):
            self.by_words.setdefault(len(name.split()), []).append(name)
        self.text = "\n".join(bodies.values())
        self.checked: dict[str, bool] = {}

    def name_like(self, name: str) -> bool:
        """Whether the name is never written in lower case in the bodies, nor its words in capitals
        ("Tornado", "Education Secretary", "JUST WATCHED" are not names; "Iowa", "NASA" are)."""
        if name not in self.checked:
            shapes = [name.lower()] + [w.lower() for w in name.split() if w.isupper()]
            self.checked[name] = not any(re.search(rf"(?<!\w){re.escape(shape)}(?!\w)", self.text) for shape in shapes)
        return self.checked[name]

    def swap(self, question: Question) -> _Swap | str:
        """The question with its rarest name swapped for a name of as many words from an article that
        is not its evidence, drawn with a fixed seed; or why there is none."""
        found = _names(question.question, self.known)
        if not found:
            return NO_NAME
        name = min(found, key=lambda n: zipf_frequency(n.text, "en")).text  # the first of equal ones
        evidence = set(question.evidence)
        held = f" {normalize(question.question)} "
        pool = self.by_words.get(len(name.split()), [])
        for replacement in random.Random(f"{NEAR_MISS_SEED}:{question.id}").sample(pool, len(pool)):
            sources = sorted(self.files[replacement] - evidence)
            if sources and f" {normalize(replacement)} " not in held and self.name_like(replacement):
                text = question.question
                for other in reversed(found):
                    if other.text == name:
                        text = text[: other.start] + replacement + text[other.end :]
                return _Swap(text, name, replacement, sources[0])
        return f"no other name of {len(name.split())} words for {name!r}"


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
    """The id of the question an off-period or near-miss one was made from; any other id as it is."""
    for suffix in (SUFFIX, NEAR_MISS_SUFFIX):
        if question_id.endswith(suffix):
            return question_id.removesuffix(suffix)
    return question_id


def _unanswerable(question: Question, suffix: str, asked: str) -> dict:
    """`asked` as a question with no answer in the articles, dated as `question`, under its id + `suffix`."""
    return {
        "id": question.id + suffix,
        "question": asked,
        "answers": [],
        "evidence": [],
        "answerable": False,
        "question_date": question.question_date.isoformat() if question.question_date else None,
    }


def _off_period(question: Question) -> dict:
    return _unanswerable(question, SUFFIX, question.question)


def _near_miss(question: Question, swapped: _Swap) -> dict:
    return {
        **_unanswerable(question, NEAR_MISS_SUFFIX, swapped.question),
        "near_miss_of": question.question,
        "swapped": [swapped.name, swapped.replacement],
        "swapped_from": swapped.source,
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
        _answerable(args.dataset)  # a missing or malformed dataset is said before the articles are read
        read = _read_articles(args.dataset / ARTICLES_FOLDER)
        built = build(args.dataset, args.out, read)
        near = build_near_miss(args.dataset, args.out, read)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 2
    print(
        f"{built.questions} off-period questions over {built.articles} articles in {args.out}; "
        f"{len(built.dropped)} dropped (a remaining article holds the answer), "
        f"{built.skipped} conversations and unanswerable questions left out; the dropped ones in "
        f"{args.out / DROPPED_FILE}"
    )
    unnamed = sum(why == NO_NAME for why in near.dropped.values())
    print(
        f"{near.questions} near-miss questions in {args.out / NEAR_MISS_FILE}, to ask over "
        f"{args.dataset / ARTICLES_FOLDER}; {len(near.dropped)} dropped ({unnamed} with no name to swap, "
        f"{len(near.dropped) - unnamed} whose new name is in an article holding a gold answer); the "
        f"dropped ones in {args.out / NEAR_MISS_DROPPED_FILE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
