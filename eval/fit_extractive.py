"""Fit the extractive answerer's two models and its refusal threshold, with a held-out half.

    python -m eval.fit_extractive [QUESTIONS.jsonl ARTICLES_DIR ...]

By default on realtimeqa_2022 and quail_news (from ../shared/datasets). Each dataset's questions are
split in two halves by a hash of their id. On half A of every dataset together:
- the sentence model (app.extractive.SENTENCE_FEATURES): a logistic regression of "the first of two
  sentences of one question's passages holds a gold answer and the second does not", on their
  feature differences (a ranking of each question's sentences: what picks the answer sentence);
- the answer model (ANSWER_FEATURES): a logistic regression of "the question is answerable";
- the refusal threshold that best tells half A's answerable questions from its unanswerable ones,
  a false refusal counting twice (FALSE_REFUSAL_COST).
Then first-sentence and answer containment, false refusals and refusals of unanswerable questions
are printed for both halves of each dataset (half B was not fitted on), and the constants to put in app/extractive.py.
Sentences are scored as the answerer scores them, so the figures are the answerer's own, up to the
candidates it embeds (chosen with the weights in app/extractive.py when the script runs).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from app import extractive
from app.settings import Settings
from eval.constructed import source_id
from eval.dataset import load
from eval.indexes import engine_for
from eval.metrics import answer_contains

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
DEFAULT_SETS = [SHARED / "realtimeqa_2022", SHARED / "quail_news"]
# A false refusal hides what the articles hold; an answer to an unanswerable question at least cites
# the sentence it rests on, for the reader to judge: the first costs twice the second.
FALSE_REFUSAL_COST = 2.0


def half(question_id: str) -> str:
    """ "A" or "B": a fixed split of a dataset's questions, by a hash of their id; a question built
    from another (eval.constructed) falls in that one's half."""
    source = source_id(question_id)
    return "AB"[int(hashlib.sha256(source.encode()).hexdigest(), 16) % 2]


@dataclass
class Scored:
    dataset: str
    half: str
    answerable: bool
    sentences: np.ndarray  # one row of SENTENCE_FEATURES per candidate sentence
    holds_gold: np.ndarray  # per sentence: a gold answer is in it
    holds_number: np.ndarray  # per sentence: a number is in it
    asks_number: bool
    asks_count: int


def collect(questions_file: Path, articles: Path) -> list[Scored]:
    engine = engine_for(articles, Settings(llm="extractive"))
    name = articles.parent.name
    rows = []
    for question in load(questions_file).questions:
        passages = engine.retrieve(question.question, as_of=question.question_date)
        admitted = extractive.current(question.question, passages, question.question_date)
        candidates = extractive.score_sentences(question.question, admitted, engine.embedder)
        features = np.array([c.features for c in candidates]).reshape(-1, len(extractive.SENTENCE_FEATURES))
        gold = (
            np.array([bool(answer_contains(c.text, question.answers)) for c in candidates])
            if question.answerable
            else np.zeros(len(candidates), bool)
        )
        numbers = np.array([extractive.has_cue(c.text, "number") for c in candidates], bool)
        rows.append(
            Scored(
                name,
                half(question.id),
                question.answerable,
                features,
                gold,
                numbers,
                extractive.question_type(question.question) == "number",
                extractive.asked_count(question.question),
            )
        )
    return rows


def sentence_pairs(rows: list[Scored]) -> tuple[np.ndarray, np.ndarray]:
    """Feature differences of every (gold, other) pair of sentences of one question, each pair in a
    random order (fixed seed) with its label: whether the first holds the gold answer."""
    rng = np.random.default_rng(0)
    differences, labels = [], []
    for row in rows:
        gold, other = np.flatnonzero(row.holds_gold), np.flatnonzero(~row.holds_gold)
        for g in gold:
            for o in other:
                first_is_gold = bool(rng.random() < 0.5)
                a, b = (g, o) if first_is_gold else (o, g)
                differences.append(row.sentences[a] - row.sentences[b])
                labels.append(first_is_gold)
    return np.array(differences), np.array(labels)


def fit(rows: list[Scored]):
    fitted = [r for r in rows if r.half == "A"]
    sentence_model = LogisticRegression(max_iter=1000, fit_intercept=False).fit(
        *sentence_pairs([r for r in fitted if r.answerable])
    )
    with_sentences = [r for r in fitted if len(r.holds_gold)]
    scored = [(r, sentence_model.decision_function(r.sentences)) for r in with_sentences]
    answer_model = LogisticRegression(max_iter=1000, class_weight="balanced").fit(
        np.array([extractive.answer_features(scores, r.sentences, int(np.argmax(scores))) for r, scores in scored]),
        np.array([r.answerable for r in with_sentences]),
    )
    return sentence_model, answer_model


def decide(row: Scored, sentence_model, answer_model) -> tuple[float, bool]:
    """(answerability, whether the chosen sentences hold a gold answer, whether the first does) of one
    question; a question asking for a number that none of the chosen sentences holds is refused (-inf),
    as the answerer does."""
    if not len(row.holds_gold):
        return -math.inf, False, False
    scores = sentence_model.decision_function(row.sentences).tolist()
    chosen = extractive.chosen(scores, row.asks_count)
    confidence = float(
        max(
            answer_model.decision_function([extractive.answer_features(scores, row.sentences, n)])[0]
            for n in extractive.near_best(scores)
        )
    )
    if row.asks_number and not any(row.holds_number[i] for i in chosen):
        confidence = -math.inf
    return confidence, any(row.holds_gold[i] for i in chosen), bool(row.holds_gold[chosen[0]])


def threshold_for(rows: list[Scored], decisions: list[tuple[float, bool, bool]]) -> float:
    """The threshold that best tells half A's answerable questions from its unanswerable ones: the
    share answered, FALSE_REFUSAL_COST times, less the share wrongly answered; each dataset counts
    alike, whatever its size."""

    def balance(threshold: float) -> float:
        total = 0.0
        for dataset in {r.dataset for r in rows}:
            mine = [(r, d[0]) for r, d in zip(rows, decisions) if r.dataset == dataset and r.half == "A"]
            answered = [c >= threshold for r, c in mine if r.answerable]
            wrongly = [c >= threshold for r, c in mine if not r.answerable]
            total += (FALSE_REFUSAL_COST * np.mean(answered) if answered else 0.0) - (
                np.mean(wrongly) if wrongly else 0.0
            )
        return total

    candidates = sorted({d[0] for d in decisions if math.isfinite(d[0])})
    return max(candidates, key=balance) - 1e-6


def report(rows: list[Scored], decisions: list[tuple[float, bool, bool]], threshold: float) -> None:
    print(
        f"{'dataset':<18} {'half':<4} {'answerable':>10} {'first':>6} {'contains':>9} {'false_refusal':>14} "
        f"{'unanswerable':>13} {'refusal':>8}"
    )
    for dataset in dict.fromkeys(r.dataset for r in rows):
        for part in ("A", "B"):
            pairs = [(r, d) for r, d in zip(rows, decisions) if r.dataset == dataset and r.half == part]
            answerable = [(r, d) for r, d in pairs if r.answerable]
            unanswerable = [(r, d) for r, d in pairs if not r.answerable]
            answered = [d[0] >= threshold for _, d in answerable]
            contains = np.mean([a and d[1] for a, (_, d) in zip(answered, answerable)]) if answerable else math.nan
            first = np.mean([a and d[2] for a, (_, d) in zip(answered, answerable)]) if answerable else math.nan
            false_refusal = 1 - np.mean(answered) if answerable else math.nan
            refusal = np.mean([d[0] < threshold for _, d in unanswerable]) if unanswerable else math.nan
            print(
                f"{dataset:<18} {part:<4} {len(answerable):>10} {first:>6.3f} {contains:>9.3f} {false_refusal:>14.3f} "
                f"{len(unanswerable):>13} {refusal:>8.3f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.fit_extractive", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "pairs",
        nargs="*",
        type=Path,
        metavar="QUESTIONS.jsonl ARTICLES_DIR",
        help="questions files, each followed by its articles folder (default: realtimeqa_2022 "
        "and quail_news in ../shared/datasets)",
    )
    parser.add_argument(
        "--threshold", type=float, action="append", help="also report at this refusal threshold (repeatable)"
    )
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("give each questions file with its articles folder")
    pairs = list(zip(args.pairs[::2], args.pairs[1::2])) or [
        (d / "questions.jsonl", d / "articles") for d in DEFAULT_SETS
    ]
    rows = []
    for questions, articles in pairs:
        if not questions.is_file() or not articles.is_dir():
            print(f"not found: {questions} or {articles}", file=sys.stderr)
            return 2
        rows += collect(questions, articles)
    sentence_model, answer_model = fit(rows)
    decisions = [decide(r, sentence_model, answer_model) for r in rows]
    threshold = threshold_for(rows, decisions)
    report(rows, decisions, threshold)
    for other in args.threshold or ():
        print(f"\nat threshold {other:g}:")
        report(rows, decisions, other)
    print("\nfor app/extractive.py:")
    print(f"SENTENCE_WEIGHTS = {tuple(round(float(w), 2) for w in sentence_model.coef_[0])}")
    print(f"ANSWER_WEIGHTS = {tuple(round(float(w), 2) for w in answer_model.coef_[0])}")
    print(f"ANSWER_INTERCEPT = {float(answer_model.intercept_[0]):.2f}")
    print(f"REFUSAL_THRESHOLD = {threshold:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
