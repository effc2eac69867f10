"""The extractive answerer: no LLM, the answer is the one to three sentences of the retrieved
passages that best answer the question, each cited, or a plain refusal when none is close enough.

A sentence's score mixes its embedding similarity to the question, the share of the question's
content words it holds, a cue for the kind of answer the question asks for (who -> a person's
name, where -> a place, when -> a date, how many -> a number), and the rank of its passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.citations import make_citation
from app.documents import Citation, Passage
from app.embedding import Embedder
from app.lexical import tokenize
from app.sentences import split_sentences

REFUSAL = "The indexed articles do not answer this question."

# Weights of a sentence's score, which picks the sentences of the answer.
SIMILARITY_WEIGHT = 1.0
OVERLAP_WEIGHT = 0.25
CUE_WEIGHT = 0.3
RANK_WEIGHT = 0.1
# Further sentences join the best one when they score at least this share of it.
COMPANION_SHARE = 0.9
MAX_SENTENCES = 3
# Whether to answer at all rests on the best evidence of a sentence: the score without the passage
# rank and with the question's words weighing more (sharing them is what tells an answer from a
# sentence merely on the topic). Under the threshold, a refusal. Calibrated on quail_news
# (`python -m eval.measure_extractive --sweep`): false refusals of answerable questions kept at 15%,
# since a false refusal hides what the articles hold. 0.93 to 0.95 give the same quail figures; the
# lowest of them refuses least elsewhere.
EVIDENCE_OVERLAP_WEIGHT = 1.0
REFUSAL_THRESHOLD = 0.93

_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
           r"Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.")
_CUES = {
    "person": re.compile(
        r"\b(?:Mr|Mrs|Ms|Dr|President|Senator|Sen|Rep|Minister|Prime Minister|Secretary|Gov|Gen)\.?\s+[A-Z]"
        r"|\b[A-Z][a-z]+(?:\s+[A-Z]\.)?\s+[A-Z][a-z'’-]+"),
    "place": re.compile(r"\b(?:in|at|near|from|to|into|across|inside|outside)\s+(?:the\s+)?[A-Z][a-z]+"),
    "time": re.compile(
        rf"\b(?:{_MONTHS})|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
        r"|\b(?:1[89]|20)\d\d\b|\b(?:yesterday|today|tomorrow|tonight|ago|(?:next|last|this|earlier|later)\s+"
        r"(?:week|month|year|weekend|spring|summer|fall|autumn|winter))\b|\b\d{1,2}(?::\d\d)?\s*[ap]\.m\.",
        re.IGNORECASE),
    "number": re.compile(
        r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|"
        r"thousands?|millions?|billions?|half|twice)\b", re.IGNORECASE),
}
# Question words the lexical tokenizer keeps: they say what is asked, not what about.
_QUESTION_WORDS = set(tokenize(["who whom whose what when where why how which"], as_ids=False)[0])
_QUESTION_TYPES = (
    (re.compile(r"\bhow (?:many|much|old|long|far|often)\b|\bwhat (?:percentage|number|amount)\b", re.I), "number"),
    (re.compile(r"\bwhen\b|\bwhat (?:year|day|date|time|month)\b", re.I), "time"),
    (re.compile(r"\bwhere\b|\bwhat (?:country|city|place)\b", re.I), "place"),
    (re.compile(r"\bwho(?:m|se)?\b", re.I), "person"),
)


def question_type(question: str) -> str | None:
    """The kind of answer asked for: person, place, time, number, or None when the question does not say."""
    for pattern, kind in _QUESTION_TYPES:
        if pattern.search(question):
            return kind
    return None


def has_cue(sentence: str, kind: str) -> bool:
    return bool(_CUES[kind].search(sentence))


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    start: int  # span of the sentence in passage.text
    end: int
    similarity: float  # cosine of the sentence and question embeddings
    overlap: float  # share of the question's content words in the sentence
    cue: bool  # holds the kind of thing the question asks for

    @property
    def text(self) -> str:
        return self.passage.text[self.start:self.end]

    @property
    def score(self) -> float:
        return (SIMILARITY_WEIGHT * self.similarity + OVERLAP_WEIGHT * self.overlap + CUE_WEIGHT * self.cue
                + RANK_WEIGHT / self.passage.rank)

    @property
    def evidence(self) -> float:
        return self.similarity + EVIDENCE_OVERLAP_WEIGHT * self.overlap + CUE_WEIGHT * self.cue


@dataclass(frozen=True)
class Extract:
    answer: str
    citations: tuple[Citation, ...]
    refused: bool
    evidence: float  # the strongest evidence of any sentence (0 without one): what the refusal rests on


def score_sentences(question: str, passages: Sequence[Passage], embedder: Embedder) -> list[Candidate]:
    """Every sentence of the passages with its score, best first."""
    spans = [(p, s.start, s.end) for p in passages for s in split_sentences(p.text)]
    spans = [(p, start, end) for p, start, end in spans if len(p.text[start:end].split()) >= 3]
    if not spans:
        return []
    texts = [p.text[start:end] for p, start, end in spans]
    vectors = embedder.encode([question, *texts])
    similarities = vectors[1:] @ vectors[0]
    asked = set(tokenize([question], as_ids=False)[0]) - _QUESTION_WORDS
    terms = tokenize(texts, as_ids=False)
    kind = question_type(question)
    candidates = []
    for (passage, start, end), text, similarity, sentence_terms in zip(spans, texts, similarities, terms):
        overlap = len(asked & set(sentence_terms)) / len(asked) if asked else 0.0
        cue = bool(kind) and has_cue(text, kind)
        candidates.append(Candidate(passage, start, end, float(similarity), overlap, cue))
    candidates.sort(key=lambda c: c.score, reverse=True)
    return candidates


def choose(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The best sentence, and up to two more that score nearly as well."""
    if not candidates:
        return []
    best = candidates[0]
    return [best, *[c for c in candidates[1:MAX_SENTENCES] if c.score >= COMPANION_SHARE * best.score]]


def extract_answer(question: str, passages: Sequence[Passage], embedder: Embedder,
                   threshold: float | None = None) -> Extract:
    """The answer; `threshold` overrides REFUSAL_THRESHOLD (calibration answers everything with -inf)."""
    candidates = score_sentences(question, passages, embedder)
    evidence = max((c.evidence for c in candidates), default=0.0)
    if evidence < (REFUSAL_THRESHOLD if threshold is None else threshold):
        return Extract(REFUSAL, (), True, evidence)
    numbers: dict[tuple[str, ...], int] = {}  # passage -> citation number, in order of first use
    parts, citations = [], []
    for candidate in choose(candidates):
        key = candidate.passage.chunk_ids
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            # One citation a passage, on its best sentence (candidates come best first).
            citations.append(make_citation(numbers[key], candidate.passage, (candidate.start, candidate.end)))
        parts.append(f"{candidate.text.strip()} [{numbers[key]}]")
    return Extract(" ".join(parts), tuple(citations), False, evidence)
