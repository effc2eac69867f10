"""The extractive answerer: no LLM, the answer is the one to three sentences of the retrieved
passages most likely to hold the answer, each cited, with the asked-for phrase marked, or a plain
refusal when the passages do not look like they answer.

Two small logistic models, fitted by `python -m eval.fit_extractive` on realtimeqa_2022 and
quail_news (one half of each set's questions; both halves reported, eval/README.md) and written here
as weights:

- A sentence's score: how likely it holds the answer, from its embedding similarity to the question,
  the share of the question's words it holds (each weighted by its IDF in the index, so "Geneva"
  counts for more than "said"; a word the index never met weighs as the question's typical word),
  the same share counting its title and the text just before it, the names and numbers it adds to
  the question's, its passage's rank, its length, and whether it opens the article. The best
  sentence is the answer; others join it when at least COMPANION_SHARE as likely.
- Whether to answer: from the best sentence's score and the most of the question any sentence (with
  its context) and any sentence alone hold. Under REFUSAL_THRESHOLD, or when a question asking for a
  number (how many, how much) gets none, the answer is REFUSAL; the Answer still carries the
  passages, so `--json` and the page show the closest ones for a person to judge. The threshold
  counts a false refusal twice a wrong answer to an unanswerable question: it hides what the
  articles hold.

The asked-for phrase (`highlight`, bold in the CLI and on the page) is a name, number or date of the
cited sentence that the question does not hold, of the kind asked for (who: a name; where: a name
after in/at/near...; when: a date or "next month"; how many: a number), nearest the question's words.

Only the sentences most promising by their words (see SENTENCES_EMBEDDED) are embedded: embedding
every sentence of five long passages took most of an answer's time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.citations import make_citation
from app.documents import Citation, Passage
from app.embedding import Embedder
from app.lexical import QUESTION_WORDS, tokenize
from app.sentences import closing_quote, split_sentences

REFUSAL = "The indexed articles do not answer this question."

# Fitted by `python -m eval.fit_extractive` (weights of SENTENCE_FEATURES, then the intercept).
SENTENCE_FEATURES = (
    "similarity",
    "weighted_overlap",
    "weighted_coverage",
    "new_names",
    "passage_rank",
    "length",
    "lead",
)
SENTENCE_WEIGHTS = (2.91, 0.38, 0.79, 0.46, 0.9, 0.54, 0.45)
SENTENCE_INTERCEPT = -2.91
ANSWER_FEATURES = ("best_score", "best_similarity", "best_coverage", "best_new_names", "most_coverage", "most_overlap")
ANSWER_WEIGHTS = (1.29, 0.38, 0.32, -0.9, 2.3, 0.81)
ANSWER_INTERCEPT = -3.07
# Under this answerability (the answer model's log-odds), a refusal.
REFUSAL_THRESHOLD = -0.75
# Further sentences join the best one when their probability is at least this share of its.
COMPANION_SHARE = 0.5
MAX_SENTENCES = 3
# Sentences embedded per question, the most promising by words and passage rank first.
SENTENCES_EMBEDDED = 32
# Characters before a sentence that count as its context (with the title): "He said" needs them.
CONTEXT_CHARS = 250

Idf = Callable[[Sequence[str]], dict[str, float]]

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\."
)
_CUES = {
    "person": re.compile(
        r"\b(?:Mr|Mrs|Ms|Dr|President|Senator|Sen|Rep|Minister|Prime Minister|Secretary|Gov|Gen)\.?\s+[A-Z]"
        r"|\b[A-Z][a-z]+(?:\s+[A-Z]\.)?\s+[A-Z][a-z'’-]+"
    ),
    "place": re.compile(r"\b(?:in|at|near|from|to|into|across|inside|outside)\s+(?:the\s+)?[A-Z][a-z]+"),
    "time": re.compile(
        rf"\b(?:{_MONTHS})|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
        r"|\b(?:1[89]|20)\d\d\b|\b(?:yesterday|today|tomorrow|tonight|ago|(?:next|last|this|earlier|later)\s+"
        r"(?:week|month|year|weekend|spring|summer|fall|autumn|winter))\b|\b\d{1,2}(?::\d\d)?\s*[ap]\.m\.",
        re.IGNORECASE,
    ),
    "number": re.compile(
        r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|"
        r"thousands?|millions?|billions?|half|twice)\b",
        re.IGNORECASE,
    ),
}
_QUESTION_TYPES = (
    (
        re.compile(r"\bhow (?:many|much|old|long|far|often)\b|\b(?:what|which) (?:percentage|number|amount)\b", re.I),
        "number",
    ),
    (re.compile(r"\bwhen\b|\b(?:what|which) (?:year|day|date|time|month)\b", re.I), "time"),
    (re.compile(r"\bwhere\b|\b(?:what|which) (?:country|city|state|place|town)\b", re.I), "place"),
    (re.compile(r"\bwho(?:m|se)?\b", re.I), "person"),
)
# Names and numbers: the words a quiz answer is usually made of.
_NAME_OR_NUMBER = re.compile(r"\b[A-Z][\w'’&.-]*|[$£€]?\d[\d,.:]*%?")
# A phrase that may be the answer: a run of capitalised words (with "of", "the", "and" inside it), or
# a number with its unit or currency, or a date.
_PHRASE = re.compile(
    rf"\b(?:{_MONTHS})\s+\d{{1,2}}(?:,\s+\d{{4}})?"
    r"|\b(?:next|last|this|earlier|later)\s+(?:week|month|year|weekend|spring|summer|fall|autumn|winter)\b"
    r"|[$£€]?\d[\d,.]*(?:\s*(?:%|percent|million|billion|trillion|thousand|hundred))?"
    r"(?:\s+(?:[a-z]+-)?(?:people|miles|pounds|years|days|dollars|feet|points|votes|soldiers|troops|homes))?"
    r"|\b[A-Z][\w'’&.-]*(?:\s+(?:(?:of|the|and|de|for)\s+)*[A-Z][\w'’&.-]*)*"
)


def question_type(question: str) -> str | None:
    """The kind of answer asked for: person, place, time, number, or None when the question does not say."""
    for pattern, kind in _QUESTION_TYPES:
        if pattern.search(question):
            return kind
    return None


def has_cue(sentence: str, kind: str) -> bool:
    return bool(_CUES[kind].search(sentence))


def _names(text: str) -> set[str]:
    return {word.lower().strip(".,'’") for word in _NAME_OR_NUMBER.findall(text)}


@dataclass(frozen=True)
class Question:
    """What the answerer reads off a question once."""

    text: str
    terms: dict[str, float]  # content word (stemmed) -> weight (its rarity in the index)
    names: set[str]  # its names and numbers, lower case
    kind: str | None

    @classmethod
    def read(cls, text: str, idf: Idf | None = None) -> Question:
        terms = sorted(set(tokenize([text], as_ids=False)[0]) - QUESTION_WORDS)
        known = idf(terms) if idf else {}
        # A word the index never met tells nothing of its rarity (a one-article index lacks common
        # words too): it weighs as the question's typical known word.
        typical = float(np.median(list(known.values()))) if known else 1.0
        return cls(text, {t: known.get(t, typical) for t in terms}, _names(text), question_type(text))

    def share(self, terms: set[str]) -> float:
        """The weighted share of the question's content words among `terms`."""
        total = sum(self.terms.values())
        return sum(w for t, w in self.terms.items() if t in terms) / total if total else 0.0


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    start: int  # span of the sentence in passage.text
    end: int
    features: tuple[float, ...]  # SENTENCE_FEATURES, similarity first (0 until embedded)

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]

    @property
    def score(self) -> float:
        """Log-odds that the sentence holds the answer."""
        return SENTENCE_INTERCEPT + sum(w * f for w, f in zip(SENTENCE_WEIGHTS, self.features, strict=True))


@dataclass(frozen=True)
class Extract:
    answer: str
    citations: tuple[Citation, ...]
    refused: bool
    answerability: float  # the answer model's log-odds (-inf without a sentence): what the refusal rests on


def _sentence_features(
    question: Question, passage: Passage, start: int, end: int, terms: set[str], context: set[str]
) -> tuple:
    text = passage.text[start:end]
    new_names = {n for n in _names(text[1:]) if n not in question.names and n not in question.terms}
    return (
        0.0,
        question.share(terms),
        question.share(terms | context),
        min(len(new_names), 4) / 4,
        1 / passage.rank,
        math.log(len(text.split())) / 4,
        float(passage.start + start < 400),
    )


def score_sentences(
    question: str, passages: Sequence[Passage], embedder: Embedder, idf: Idf | None = None
) -> list[Candidate]:
    """The most promising sentences of the passages with their features, best first; `idf` gives the
    rarity of words in the index (None: every word weighs alike)."""
    asked = Question.read(question, idf)
    spans = [(p, s.start, s.end) for p in passages for s in split_sentences(p.text)]
    spans = [(p, start, end) for p, start, end in spans if len(p.text[start:end].split()) >= 3]
    if not spans:
        return []
    terms = tokenize([p.text[start:end] for p, start, end in spans], as_ids=False)
    contexts = tokenize(
        [f"{p.title} {p.text[max(0, start - CONTEXT_CHARS) : start]}" for p, start, _ in spans], as_ids=False
    )
    candidates = [
        Candidate(p, start, end, _sentence_features(asked, p, start, end, set(t), set(c)))
        for (p, start, end), t, c in zip(spans, terms, contexts)
    ]
    # The sentence score without the similarity orders the sentences worth embedding.
    candidates = sorted(candidates, key=lambda c: c.score, reverse=True)[:SENTENCES_EMBEDDED]
    vectors = embedder.encode([question, *(c.text for c in candidates)])
    similarities = vectors[1:] @ vectors[0]
    candidates = [
        Candidate(c.passage, c.start, c.end, (float(s), *c.features[1:])) for c, s in zip(candidates, similarities)
    ]
    return sorted(candidates, key=lambda c: c.score, reverse=True)


def answer_features(scores: Sequence[float], features: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """ANSWER_FEATURES of a question's sentences, from their scores and SENTENCE_FEATURES."""
    best = max(range(len(scores)), key=scores.__getitem__)
    return (
        scores[best],
        features[best][0],
        features[best][2],
        features[best][3],
        max(f[2] for f in features),
        max(f[1] for f in features),
    )


def answerability(candidates: Sequence[Candidate]) -> float:
    """Log-odds that the passages answer the question; -inf without a sentence."""
    if not candidates:
        return -math.inf
    features = answer_features([c.score for c in candidates], [c.features for c in candidates])
    return ANSWER_INTERCEPT + sum(w * f for w, f in zip(ANSWER_WEIGHTS, features, strict=True))


def chosen(scores: Sequence[float]) -> list[int]:
    """Positions of the sentences an answer is made of, given their scores: the best, and up to two
    more nearly as likely to hold the answer."""
    if not scores:
        return []
    order = sorted(range(len(scores)), key=lambda n: -scores[n])
    floor = COMPANION_SHARE * _probability(scores[order[0]])
    return [order[0], *[n for n in order[1:MAX_SENTENCES] if _probability(scores[n]) >= floor]]


def _probability(log_odds: float) -> float:
    return 1 / (1 + math.exp(-log_odds))


def answer_phrase(question: str, sentence: str) -> tuple[int, int] | None:
    """The span in `sentence` of the phrase most likely to be the answer: a name, number or date the
    question does not already hold, of the kind it asks for when it says (a place is a name after
    "in", "at", "near"...), nearest to the words it shares with the question; None when the sentence
    adds no such phrase."""
    asked = Question.read(question)
    spans = []
    for match in _PHRASE.finditer(sentence):
        phrase = match.group(0).rstrip(".,")
        words = _names(phrase) | set(tokenize([phrase], as_ids=False)[0])
        if not words or words <= asked.names | set(asked.terms) or match.start() == 0 and " " not in phrase:
            continue
        end = match.start() + len(phrase)
        # The cue may start before the phrase ("in Geneva"): it is read on the words just before it.
        fits = asked.kind is None or has_cue(sentence[max(0, match.start() - 12) : end], asked.kind)
        spans.append((not fits, match.start(), end))
    if not spans:
        return None
    anchors = [
        m.start()
        for m in re.finditer(r"\w+", sentence)
        if set(tokenize([m.group(0)], as_ids=False)[0]) & set(asked.terms)
    ] or [0]
    _, start, end = min(spans, key=lambda s: (s[0], min(abs(s[1] - a) for a in anchors)))
    return start, end


def _asks_number_none_given(question: str, answer: Sequence[Candidate]) -> bool:
    return question_type(question) == "number" and not any(has_cue(c.text, "number") for c in answer)


def extract_answer(
    question: str,
    passages: Sequence[Passage],
    embedder: Embedder,
    idf: Idf | None = None,
    threshold: float | None = None,
) -> Extract:
    """The answer; `threshold` overrides REFUSAL_THRESHOLD (calibration answers everything with -inf)."""
    candidates = score_sentences(question, passages, embedder, idf)
    confidence = answerability(candidates)
    answer = [candidates[n] for n in chosen([c.score for c in candidates])]
    if confidence < (REFUSAL_THRESHOLD if threshold is None else threshold) or _asks_number_none_given(
        question, answer
    ):
        return Extract(REFUSAL, (), True, confidence)
    numbers: dict[tuple[str, ...], int] = {}  # passage -> citation number, in order of first use
    parts, citations = [], []
    for candidate in answer:
        key = candidate.passage.chunk_ids
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            # One citation a passage, on its best sentence (candidates come best first).
            citation = make_citation(numbers[key], candidate.passage, (candidate.start, candidate.end))
            citations.append(_with_phrase(citation, question))
        text = candidate.text.strip()
        parts.append(f"{text}{closing_quote(text)} [{numbers[key]}]")
    return Extract(" ".join(parts), tuple(citations), False, confidence)


def _with_phrase(citation: Citation, question: str) -> Citation:
    return replace(citation, highlight=answer_phrase(question, citation.sentence))
