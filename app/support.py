"""Support: each sentence of an answer aligned with the passage sentence that says it, or flagged.

An LLM's answer carries [n] markers, but nothing in them proves that passage n says the sentence: a
sentence the passage does not hold, or holds with another number, would reach the reader as a cited
fact. So every answer sentence (app.citations.claim_sentences) is checked against the retrieved
passages, without an LLM:

- Candidates: the passage sentences sharing most of the sentence's content words (stemmed, as the
  lexical index reads them), and in each passage the best two sentences together (an answer often
  merges two). Candidates holding under COVERAGE_MIN of its words are dropped unembedded; the rest,
  with the answer sentences, are embedded in one call of the embedding model already loaded.
- A candidate supports the sentence when it holds at least COVERAGE_MIN of its content words, is at
  least SIMILARITY_MIN similar to it (cosine), and its facts agree: every number, date (month,
  weekday) and name (capitalised word) of the sentence is in the candidate; or else elsewhere in the
  passage or its title, unless the candidate holds a fact the sentence lacks beside the same word,
  which makes the difference a swap. So a passage sentence that says "he" where the answer says
  "Putin" supports it; one that says "in Geneva next month" where the answer says "in Vienna next
  month" does not, even when the passage names Vienna elsewhere. An answer's initials are
  found in a passage's name ("U.S." in "United States").
- A sentence is supported when a candidate of a passage it cites supports it (one with no content
  word, "Yes.", has no candidate and is not). When none does but another retrieved passage's does,
  its marker is moved to that passage (an uncited sentence gets one); otherwise it is unsupported,
  its markers as they were, and the reader is told.

Sentences that only connect ("Here is what the articles say:") are not told apart: no rule for
them is robust enough not to let a claim through, the answer prompt asks for no preamble, and such a
sentence is indeed not in the articles. So they are flagged like any other.

The thresholds are fitted by `python -m eval.perturbations` (eval/README.md) on half A of
realtimeqa_2022's questions, sentences of their passages copied, trimmed and merged against the same
with a number, date or name swapped, cited to a wrong passage, or taken from another question's
articles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from app.citations import MARKER, Claim, claim_sentences
from app.documents import Passage, SentenceSupport
from app.embedding import Embedder
from app.lexical import tokenize
from app.sentences import split_sentences

# Fitted by `python -m eval.perturbations` on half A of realtimeqa_2022: of the pairs on a grid of
# 0.3 to 0.9 within a point of the fewest errors (perturbed sentences passed plus copied, trimmed or
# merged ones flagged), the most lenient, so that a reworded sentence still passes. The words decide
# most: a higher similarity floor flags trimmed sentences sooner than it catches perturbed ones, so
# the embedding mostly chooses which candidate is the support.
COVERAGE_MIN = 0.5
SIMILARITY_MIN = 0.3
# Candidates embedded for each answer sentence and passage: the best single sentences by words,
# and the best pair when its second sentence adds at least PAIR_GAIN of the answer sentence's words.
SINGLES = 2
PAIR_GAIN = 0.25

_MONTHS = {
    **{m: m for m in "january february march april may june july august september october november december".split()},
    **{"jan": "january", "feb": "february", "mar": "march", "apr": "april", "jun": "june", "jul": "july"},
    **{"aug": "august", "sep": "september", "sept": "september", "oct": "october", "nov": "november"},
    "dec": "december",
}
_WEEKDAYS = set("monday tuesday wednesday thursday friday saturday sunday".split())
# "One" is left out: "one of the" is rarely a count.
_NUMBER_WORDS = dict(
    zip("two three four five six seven eight nine ten eleven twelve".split(), map(str, range(2, 13)), strict=True)
)
_SCALES = set("dozen dozens hundred hundreds thousand thousands million millions billion billions trillion".split())
# What comes before a word that opens a sentence or a quotation ("" for the text's first word).
_OPENING = {"", ".", "!", "?", ":", '"', "“", "‘", "'", "(", "["}
_WORD = re.compile(r"\d[\d,.]*\d|\d|[^\W\d_][\w'’.]*")


@dataclass(frozen=True)
class Facts:
    """The numbers, dates and names a text states, lower case and canonical ("Dec." is "december",
    "1,000" is "1000", "two" is "2", "U.S." is "us", "Putin's" is "putin"), each with the words
    beside it where it stands: a fact swapped for another keeps its neighbours ("in Geneva next")."""

    beside: dict[str, frozenset[str]]  # fact -> "<word" before it and ">word" after it, wherever it stands

    @property
    def stated(self) -> frozenset[str]:
        return frozenset(self.beside)

    def __or__(self, other: Facts) -> Facts:
        beside = dict(self.beside)
        for fact, words in other.beside.items():
            beside[fact] = beside.get(fact, frozenset()) | words
        return Facts(beside)


def _canonical(word: str) -> str:
    word = word.lower().replace("’", "'").removesuffix("'s").replace("'", "")
    if word[0].isdigit():
        return word.replace(",", "").rstrip(".")
    word = word.replace(".", "")
    return _MONTHS.get(word) or _NUMBER_WORDS.get(word) or word


def _initials(text: str) -> set[str]:
    """The initials of each run of two or more capitalised words: "United States" gives "us"."""
    runs, run = set(), ""
    for match in [*_WORD.finditer(text), None]:
        if match and match.group(0)[0].isupper():
            run += match.group(0)[0].lower()
            continue
        if len(run) >= 2:
            runs.add(run)
        run = ""
    return runs


def _word_set(text: str) -> frozenset[str]:
    """The canonical words of `text`, and the initials of its names."""
    return frozenset(_canonical(m.group(0)) for m in _WORD.finditer(text)) | _initials(text)


def facts(text: str, known_names: frozenset[str] = frozenset()) -> Facts:
    """The facts `text` states. A capitalised word is a name, unless it opens a sentence or a
    quotation: then it is one only when `known_names` (names the passages use mid-sentence) holds it.
    Months and weekdays are dates only when capitalised ("may", "march")."""
    matches = list(_WORD.finditer(text))
    words = ["", *(_canonical(m.group(0)) for m in matches), ""]
    beside: dict[str, frozenset[str]] = {}
    for n, match in enumerate(matches, start=1):
        written, word = match.group(0), words[n]
        if not (word[0].isdigit() or word in _SCALES):  # a number, else a date or a name when capitalised
            if not written[0].isupper() or written == "I":
                continue
            is_date = word in _MONTHS.values() or word in _WEEKDAYS
            opens = text[: match.start()].rstrip()[-1:] in _OPENING
            if not is_date and opens and word not in known_names:
                continue
        beside[word] = beside.get(word, frozenset()) | {f"<{words[n - 1]}", f">{words[n + 1]}"}
    return Facts(beside)


@dataclass(frozen=True)
class _Span:
    """A stretch of a passage that may support a sentence: one sentence, or two."""

    text: str
    terms: frozenset[str]
    words: frozenset[str]  # canonical words, and the initials of its names
    facts: Facts

    def __add__(self, other: _Span) -> _Span:
        return _Span(
            f"{self.text} {other.text}", self.terms | other.terms, self.words | other.words, self.facts | other.facts
        )


@dataclass
class _Read:
    """A passage as the checker reads it, once per answer."""

    passage: Passage
    sentences: list[_Span]

    @cached_property
    def words(self) -> frozenset[str]:
        """Its words, for a fact the supporting sentence leaves to its context ("he" for "Putin")."""
        return _word_set(f"{self.passage.title}\n{self.passage.text}")


def _read(passages: Sequence[Passage]) -> tuple[list[_Read], frozenset[str]]:
    """The passages split into sentences, and the names they use mid-sentence."""
    texts = [[p.text[s.start : s.end].strip() for s in split_sentences(p.text)] for p in passages]
    flat = [t for sentences in texts for t in sentences]
    known = frozenset(name for t in flat for name in facts(t).stated if not name[0].isdigit())
    terms = iter(tokenize(flat, as_ids=False) if flat else [])
    read = [
        _Read(p, [_Span(t, frozenset(next(terms)), _word_set(t), facts(t, known)) for t in sentences])
        for p, sentences in zip(passages, texts)
    ]
    return read, known


@dataclass(frozen=True)
class Candidate:
    """A passage stretch that may support an answer sentence, with what the decision reads of it."""

    number: int  # the passage's [n]
    text: str
    coverage: float  # share of the sentence's content words it holds
    similarity: float  # cosine of the embeddings
    facts_agree: bool

    def supports(self, coverage_min: float = COVERAGE_MIN, similarity_min: float = SIMILARITY_MIN) -> bool:
        return self.facts_agree and self.coverage >= coverage_min and self.similarity >= similarity_min


def facts_agree(claim: Facts, span: _Span, read: _Read) -> bool:
    """Every fact of the sentence is in the span; or else in the passage or its title, unless the
    span holds a fact the sentence lacks beside the same word (then one was swapped for the other,
    of whatever kind: "the Group of Seven" is not "the Group of American")."""
    missing = claim.stated - span.words
    if not missing:
        return True
    if not missing <= read.words:
        return False
    others = set().union(*(span.facts.beside[f] for f in span.facts.stated - claim.stated))
    return not any(claim.beside[f] & others for f in missing)


def _pair(spans: list[_Span], order: list[int], wanted: frozenset[str]) -> _Span | None:
    """The best sentence with the one that adds most of the answer sentence's words it lacks, in
    passage order; None unless that one adds at least PAIR_GAIN of them (a merge takes from both)."""
    if not order or not wanted:
        return None
    best = order[0]
    gain, other = max(
        ((len((s.terms & wanted) - spans[best].terms), -n) for n, s in enumerate(spans) if n != best), default=(0, 0)
    )
    if gain < PAIR_GAIN * len(wanted):
        return None
    first, second = sorted((best, -other))
    return spans[first] + spans[second]


def candidates(
    sentences: Sequence[str], passages: Sequence[Passage], embedder: Embedder, coverage_floor: float = COVERAGE_MIN
) -> list[list[Candidate]]:
    """For each answer sentence, the candidates of every passage holding at least `coverage_floor`
    of its content words: its best SINGLES sentences and its best pair. One embedding call."""
    read, known = _read(passages)
    claim_terms = tokenize(list(sentences), as_ids=False) if sentences else []
    found: list[list[tuple[int, _Span, float, bool]]] = []
    for sentence, terms in zip(sentences, claim_terms):
        wanted, claim = frozenset(terms), facts(sentence, known)
        rows = []
        for number, passage in enumerate(read, start=1):
            shares = [len(s.terms & wanted) / len(wanted) if wanted else 0.0 for s in passage.sentences]
            order = sorted((n for n, share in enumerate(shares) if share > 0), key=lambda n: -shares[n])
            spans = [passage.sentences[n] for n in order[:SINGLES]]
            if pair := _pair(passage.sentences, order, wanted):
                spans.append(pair)
            for span in spans:
                coverage = len(span.terms & wanted) / len(wanted)
                if coverage >= coverage_floor:
                    rows.append((number, span, coverage, facts_agree(claim, span, passage)))
        found.append(rows)
    texts = list(dict.fromkeys([*sentences, *(span.text for rows in found for _, span, _, _ in rows)]))
    vectors = dict(zip(texts, embedder.encode(texts))) if texts else {}
    return [
        [
            Candidate(number, span.text, coverage, float(vectors[span.text] @ vectors[sentence]), agree)
            for number, span, coverage, agree in rows
        ]
        for sentence, rows in zip(sentences, found)
    ]


def judge(
    claim: Claim,
    found: Sequence[Candidate],
    coverage_min: float = COVERAGE_MIN,
    similarity_min: float = SIMILARITY_MIN,
) -> SentenceSupport:
    """The sentence supported by a passage it cites, else by another passage (which its marker is
    moved to), else unsupported."""
    supporting = sorted(
        (c for c in found if c.supports(coverage_min, similarity_min)), key=lambda c: (-c.similarity, -c.coverage)
    )
    cited = [c for c in supporting if c.number in claim.numbers]
    if cited:
        return SentenceSupport(claim.text, claim.numbers, True, cited[0].text)
    if supporting:
        return SentenceSupport(claim.text, (supporting[0].number,), True, supporting[0].text)
    return SentenceSupport(claim.text, claim.numbers, False, "")


def _recited(piece: str, numbers: Sequence[int]) -> str:
    """A sentence of the answer with its markers replaced by one naming `numbers`, where its first
    marker was, else before its closing punctuation."""
    marker = f" [{', '.join(map(str, numbers))}]"
    first = MARKER.search(piece)
    if first:
        return piece[: first.start()] + marker + MARKER.sub("", piece[first.start() :])
    end = re.search(r"[.!?:;\"'”’)\]]*\s*$", piece).start()
    return piece[:end] + marker + piece[end:]


def check(answer: str, passages: Sequence[Passage], embedder: Embedder) -> tuple[str, tuple[SentenceSupport, ...]]:
    """Each sentence of `answer` (its markers naming `passages`, 1-based) checked; the answer text
    with the markers moved where a sentence's support was found in a passage it did not cite."""
    claims = [c for c in claim_sentences(answer) if c.text]
    if not claims:
        return answer, ()
    found = candidates([c.text for c in claims], passages, embedder)
    checked = [judge(claim, rows) for claim, rows in zip(claims, found)]
    text, at = "", 0
    for claim, result in zip(claims, checked):
        if result.citations != claim.numbers:
            text += answer[at : claim.start] + _recited(answer[claim.start : claim.end], result.citations)
            at = claim.end
    return text + answer[at:], tuple(checked)
