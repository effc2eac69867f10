"""The eval metrics: per question, on hand-checkable inputs, and their aggregates per dataset.

Every per-question metric returns None when it does not apply (no evidence, no gold answer, no
citation); aggregates are means over the questions where it applies, so a dataset without
unanswerable questions reports no refusal_rate rather than a misleading 0. answer_words alone is
aggregated by its median: a few long answers (a quoted paragraph, a summary of several articles) would
pull a mean far from what a typical answer is.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from app.citations import MARKER
from app.sentences import split_sentences
from app.timing import timed

RETRIEVAL = ("hit@1", "hit@5", "recall@5", "mrr@10")
ANSWER = (
    "answer_contains",
    "first_sentence_contains",
    "phrase_contains",
    "token_f1",
    "citation_precision",
    "faithfulness",
    "answer_words",
)
REFUSAL = ("refusal_rate", "false_refusal_rate")
JUDGE = ("judge_correct", "judge_agreement")
# Reported, never compared with a baseline: they depend on the machine and its load.
LATENCY = ("retrieve_ms_p50", "retrieve_ms_p95", "ask_ms_p50", "ask_ms_p95")
ALL = RETRIEVAL + ANSWER + REFUSAL + JUDGE + LATENCY
# What the baseline compares; every one is better higher except these.
QUALITY = RETRIEVAL + ANSWER + REFUSAL + ("judge_correct",)
LOWER_IS_BETTER = ("false_refusal_rate", "answer_words")
# Counted in words, not a share: shown, compared and given a tolerance as such.
WORDS = ("answer_words",)
RANKING_DEPTH = 10  # passages retrieved for the retrieval metrics, at least: mrr@10 needs ten

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "“”‘’—–"})


def normalize(text: str) -> str:
    """Lower case, citation markers, punctuation and articles (a, an, the) out, spaces collapsed."""
    text = MARKER.sub(" ", text).lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_contains(answer: str, golds: Sequence[str]) -> bool | None:
    """Whether a gold answer appears, as whole words, in the answer; None without gold answers."""
    wanted = [g for g in map(normalize, golds) if g]
    if not wanted:
        return None
    given = f" {normalize(answer)} "
    return any(f" {gold} " in given for gold in wanted)


def without_markers(answer: str) -> str:
    """The answer as a reader reads it: the [n] markers out."""
    return MARKER.sub("", answer).strip()


def first_sentence(answer: str) -> str:
    """The answer's first sentence, [n] markers out; "" for an empty answer."""
    text = without_markers(answer)
    spans = split_sentences(text)
    return text[spans[0].start : spans[0].end] if spans else ""


def phrase_contains(phrase: str | None, golds: Sequence[str]) -> bool | None:
    """Whether the marked phrase and a gold answer hold one another, as whole words after
    normalisation: the gold in the phrase ("Geneva" in "Geneva, Switzerland") or the phrase in the
    gold ("Biden" of "Joe Biden"), since a phrase cut a word short or long of the gold still points
    the reader at it. No phrase (or one of no words): False. None without gold answers."""
    wanted = [g for g in map(normalize, golds) if g]
    if not wanted:
        return None
    marked = normalize(phrase or "")
    if not marked:
        return False
    return any(f" {gold} " in f" {marked} " or f" {marked} " in f" {gold} " for gold in wanted)


def answer_words(answer: str) -> int | None:
    """How many words the answer has, [n] markers out; None for an empty one (an engine error gave
    no answer to measure)."""
    return len(without_markers(answer).split()) or None


def faithfulness(supported: Sequence[bool]) -> float | None:
    """The share of the answer's sentences that a cited passage supports; None without sentences."""
    return sum(map(bool, supported)) / len(supported) if supported else None


def token_f1(answer: str, golds: Sequence[str]) -> float | None:
    """The best word-overlap F1 of the answer against any gold answer; None without gold answers."""
    wanted = [g.split() for g in map(normalize, golds) if g]
    if not wanted:
        return None
    given = normalize(answer).split()
    return max(_f1(given, gold) for gold in wanted)


def _f1(given: list[str], gold: list[str]) -> float:
    common = sum((Counter(given) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(given), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def hit_at(ranked_files: Sequence[str], evidence: Iterable[str], k: int) -> bool | None:
    """Whether one of the first k passages comes from an evidence article; None without evidence."""
    wanted = set(evidence)
    if not wanted:
        return None
    return any(f in wanted for f in ranked_files[:k])


def recall_at(ranked_files: Sequence[str], evidence: Iterable[str], k: int) -> float | None:
    """The share of evidence articles found in the first k passages; None without evidence."""
    wanted = set(evidence)
    if not wanted:
        return None
    return len(wanted & set(ranked_files[:k])) / len(wanted)


def mrr_at(ranked_files: Sequence[str], evidence: Iterable[str], k: int) -> float | None:
    """1 / rank of the first passage from an evidence article within the first k, else 0."""
    wanted = set(evidence)
    if not wanted:
        return None
    for rank, file in enumerate(ranked_files[:k], start=1):
        if file in wanted:
            return 1.0 / rank
    return 0.0


def citation_precision(cited_files: Sequence[str], evidence: Iterable[str]) -> float | None:
    """The share of cited articles that are evidence; None without evidence or without citations."""
    wanted, cited = set(evidence), set(cited_files)
    if not wanted or not cited:
        return None
    return len(cited & wanted) / len(cited)


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def mean(values: Iterable[float | bool | None]) -> float | None:
    """The mean of the values that apply (not None); None when none do."""
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that apply (not None); None when none do."""
    return percentile([float(v) for v in values if v is not None], 50)


# How a per-question metric becomes a dataset's figure, when not by its mean.
AGGREGATES: dict[str, Callable[[Iterable], float | None]] = {"answer_words": median}


def score_question(
    *,
    answer: str,
    refused: bool,
    golds: Sequence[str],
    evidence: Sequence[str],
    answerable: bool,
    ranked_files: Sequence[str],
    cited_files: Sequence[str],
    phrase: str | None,
    supported: Sequence[bool],
) -> dict:
    """The per-question metrics (None where one does not apply). A refusal scores as an empty answer
    for the containment metrics, except phrase_contains, which measures the phrase of the answers
    given (a refusal is false_refusal_rate's to count); answer_words and faithfulness measure
    answers given, to any question. `phrase`: the first citation's highlighted phrase, None when it
    has none; `supported`: per sentence of the answer, whether a cited passage supports it."""
    given = "" if refused else answer
    return {
        "hit@1": hit_at(ranked_files, evidence, 1),
        "hit@5": hit_at(ranked_files, evidence, 5),
        "recall@5": recall_at(ranked_files, evidence, 5),
        "mrr@10": mrr_at(ranked_files, evidence, 10),
        "answer_contains": answer_contains(given, golds) if answerable else None,
        "first_sentence_contains": answer_contains(first_sentence(given), golds) if answerable else None,
        "phrase_contains": phrase_contains(phrase, golds) if answerable and not refused else None,
        "token_f1": token_f1(given, golds) if answerable else None,
        "citation_precision": None if refused else citation_precision(cited_files, evidence),
        "faithfulness": None if refused else faithfulness(supported),
        "answer_words": None if refused else answer_words(answer),
        "refusal_rate": None if answerable else refused,
        "false_refusal_rate": refused if answerable else None,
    }


def aggregate(scores: Sequence[dict], retrieve_ms: Sequence[float], ask_ms: Sequence[float]) -> dict:
    """Dataset metrics: the mean of each per-question metric where it applies (its AGGREGATES entry
    instead, where it has one), latency percentiles."""
    keys = dict.fromkeys(k for s in scores for k in s)
    metrics = {k: AGGREGATES.get(k, mean)(s.get(k) for s in scores) for k in keys}
    for name, values in (("retrieve_ms", retrieve_ms), ("ask_ms", ask_ms)):
        metrics[f"{name}_p50"] = percentile(values, 50)
        metrics[f"{name}_p95"] = percentile(values, 95)
    return metrics


def ranking_quality(ranked_files: Callable, questions: Sequence) -> dict:
    """hit@5 (as a share and a count), MRR@10 and the median time of a ranker (a question in, the files
    of its passages out, best first) over the questions with evidence (the others are asked and
    timed, not scored), and the questions it misses at 5 with the rank of their first evidence
    passage within ten (None: not within ten)."""
    hits, ranks, times, misses = [], [], [], []
    for question in questions:
        with timed() as spent:
            files = ranked_files(question)
        times.append(spent.ms)
        hits.append(hit_at(files, question.evidence, 5))
        ranks.append(mrr_at(files, question.evidence, RANKING_DEPTH))
        if hits[-1] is False:  # None: no evidence to find
            rank = next((n for n, f in enumerate(files[:RANKING_DEPTH], start=1) if f in question.evidence), None)
            misses.append((question, rank))
    return {
        "hit@5": mean(hits),
        "hits": sum(1 for hit in hits if hit),
        "mrr@10": mean(ranks),
        "ms_p50": percentile(times, 50),
        "misses": misses,
    }
