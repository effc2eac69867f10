"""The extractive answerer: no LLM, the answer is the sentence of the retrieved passages most likely
to hold the answer, cited, with the asked-for phrase marked, or a plain refusal when the passages do
not look like they answer. A question asking for several things ("Which two schools...") gets that
many sentences; no other sentence is added: the rest of the evidence is in the sources.

Two small linear models, fitted by `python -m eval.fit_extractive` on realtimeqa_2022 and quail_news
(one half of each set's questions; both halves reported, eval/README.md) and written here as weights:

- A sentence's score: how likely it holds the answer, from its embedding similarity to the question,
  the share of the question's words it holds (each weighted by its rarity in English, so "Geneva"
  counts for more than "said"), the same share counting its title and the text just before it, the
  names and numbers it adds to the question's, its passage's rank, its length, whether it opens the
  article, whether it holds a phrase of the kind the question asks for (a name for "who" or "which
  company", a place, a date, a number), and in how many other retrieved articles its candidate answer
  phrase recurs (the AskMSR idea: an answer the articles agree on). Fitted on pairs of sentences of
  one question (one holding a gold answer, one not), so it ranks a question's sentences.
- Which passages may answer: all, except when the question asks about current news ("this week",
  "yesterday"): then only those published in that period or the week before it.
- Whether to answer: from the best sentence's score and the most of the question any sentence (with
  its context) and any sentence alone hold. Under REFUSAL_THRESHOLD, when a question asking for a
  number (how many, how much) gets none, or when the question names someone or something that no
  passage mentions (a question about "Kaiser" is not answered by a passage about Delta, however much
  else they share), the answer is REFUSAL; the Answer still carries the passages, so `--json` and
  the page show the closest ones for a person to judge. The threshold counts a false refusal twice a
  wrong answer to an unanswerable question: it hides what the articles hold.

Nothing in either model depends on the index: word weights come from a fixed table of English word
frequencies (wordfreq), not from the collection, so a one-article index and a million-chunk one weigh
a question alike. The slow tests answer the seed questions with torch's exact vectors as well as the
default int8 ones, which differ from CPU to CPU.

The asked-for phrase (`highlight`, bold in the CLI and on the page) is a name, number or date of the
cited sentence that the question does not hold, of the kind asked for, nearest the question's words.

Only the sentences most promising by their words (see SENTENCES_EMBEDDED) are embedded: embedding
every sentence of five long passages took most of an answer's time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA
from wordfreq import zipf_frequency

from app.citations import make_citation
from app.documents import Citation, Passage
from app.embedding import Embedder
from app.lexical import QUESTION_WORDS, tokenize
from app.sentences import closing_quote, split_sentences
from app.timeframe import MONTHS, WEEKDAYS, resolve

REFUSAL = "The indexed articles do not answer this question."

# Fitted by `python -m eval.fit_extractive` (weights of SENTENCE_FEATURES; a ranking has no intercept).
SENTENCE_FEATURES = (
    "similarity",
    "weighted_overlap",
    "weighted_coverage",
    "new_names",
    "passage_rank",
    "length",
    "lead",
    "answer_type",
    "recurrence",
)
SENTENCE_WEIGHTS = (3.51, 0.04, 1.19, 0.6, 1.11, 0.46, 0.6, 0.4, 0.94)
ANSWER_FEATURES = (
    "best_score",
    "best_similarity",
    "best_coverage",
    "best_new_names",
    "best_answer_type",
    "most_coverage",
    "most_overlap",
)
ANSWER_WEIGHTS = (0.66, 1.0, 0.12, -0.9, 0.63, 2.4, 1.81)
ANSWER_INTERCEPT = -5.86
# Sentences scored within this of the best one count as tied with it when deciding whether to answer:
# int8 vectors differ from CPU to CPU by about this much of a score (a cosine of 0.99 to exact ones).
TIE_MARGIN = 0.25
# Under this answerability (the answer model's log-odds), a refusal.
REFUSAL_THRESHOLD = -0.84
# The most sentences an answer has, when a question asks for several things.
MAX_SENTENCES = 3
# Sentences embedded per question, the most promising by words and passage rank first.
SENTENCES_EMBEDDED = 32
# Characters before a sentence that count as its context (with the title): "He said" needs them.
CONTEXT_CHARS = 250
# A word's weight is its rarity in English: 8 less its Zipf frequency (log10 of uses per billion
# words: "the" 7.7, "talks" 4.6, "Geneva" 4.0), at least RAREST_COMMON_WEIGHT; a word wordfreq
# never met (a new name) weighs 8.
RAREST_COMMON_WEIGHT = 0.5
# How well a phrase is of the kind asked for (Question.phrases): surely, else maybe (1) or not (0).
SURELY = 2
# Other retrieved articles holding a sentence's answer phrase, at most: past this, agreement tells no more.
RECURRENCE_CAP = 3

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\."
)
_CUES = {
    # A name of a person or an organisation: a capitalised word after a title, or two in a row.
    "name": re.compile(
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
    (re.compile(r"\bhow (?:many|much|old|long|far|often|tall|big|high|large)\b", re.I), "number"),
    (re.compile(r"\bwhen\b", re.I), "time"),
    (re.compile(r"\bwhere\b", re.I), "place"),
    (re.compile(r"\bwho(?:m|se)?\b", re.I), "name"),
)
# "Which company...", "what Major League Baseball team...": the noun after which/what says the kind.
_WHICH = re.compile(r"\b(?:which|what)((?:\s+[\w'’-]+){1,5})", re.I)
_KIND_NOUNS = {
    "number": "percentage percent number amount price age share rate total",
    "time": "year day date time month decade century",
    "place": "country countries nation city cities state town place region continent island capital county "
    "province village",
    "name": "person man woman actor actress singer player politician senator star leader president official "
    "judge rapper musician author athlete artist coach founder billionaire candidate governor lawmaker "
    "journalist host comedian director company companies organization organisation group team agency firm "
    "brand network party retailer airline bank band league university school club app website platform "
    "chain manufacturer maker carrier magazine newspaper show service startup store restaurant automaker",
}
_AUXILIARIES = frozenset("is are was were will would do does did has have had can could should may might".split())
_NOUN_KIND = {noun: kind for kind, nouns in _KIND_NOUNS.items() for noun in nouns.split()}
# How many things a question asks for: "which two schools", "name three".
_ASKED_COUNT = re.compile(r"\b(?:which|what|name|list)\s+(two|three|both)\b", re.I)
_COUNTS = {"two": 2, "both": 2, "three": 3}
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
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
# What may come before a sentence's first word: quotation marks, brackets, a dash.
_OPENING = "'\"“‘([—- "
# A run of capitalised words: a name, when it does not merely open a sentence.
_NAME_RUN = re.compile(r"\b[A-Z][\w'’&-]*(?:\s+[A-Z][\w'’&-]*)*")
# Words of a name at least this common in English ("New", "President", "United") do not tell it apart.
COMMON_NAME_ZIPF = 5.0
# A name's word this long or longer also matches a word one typo away ("McConell", "McConnell"); any
# also matches a word of SHORTEST_STEM letters or more it extends ("Japanese", "Japan"; "Famer", "Fame").
TYPO_LENGTH = 5
SHORTEST_STEM = 4
DATE_WORDS = frozenset(MONTHS) | frozenset(WEEKDAYS)
_NON_WORD = re.compile(r"[^\w$%]+")


def question_type(question: str) -> str | None:
    """The kind of answer asked for: name (of a person or an organisation), place, time, number, or
    None when the question does not say."""
    for pattern, kind in _QUESTION_TYPES:
        if pattern.search(question):
            return kind
    for match in _WHICH.finditer(question):
        for word in match.group(1).lower().split():
            if word in _AUXILIARIES:  # "What did the president say?" asks for no name
                break
            kind = _NOUN_KIND.get(word) or _NOUN_KIND.get(word.removesuffix("s"))
            if kind:
                return kind
    return None


def asked_count(question: str) -> int:
    """How many things the question asks for (1 unless it says "which two...")."""
    match = _ASKED_COUNT.search(question)
    return _COUNTS[match.group(1).lower()] if match else 1


def has_cue(sentence: str, kind: str) -> bool:
    return bool(_CUES[kind].search(sentence))


def _names(text: str) -> set[str]:
    return {word.lower().strip(".,'’") for word in _NAME_OR_NUMBER.findall(text)}


def _normalised(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


@lru_cache(maxsize=4096)
def _rarity(word: str) -> float:
    return max(RAREST_COMMON_WEIGHT, 8.0 - zipf_frequency(word, "en"))


def word_weights(text: str) -> dict[str, float]:
    """Each content word of `text` (stemmed, as the lexical index sees it) with its rarity in English."""
    weights: dict[str, float] = {}
    for match in _WORD.finditer(text):
        word = match.group(0).lower().strip("'’")
        for term in tokenize([word], as_ids=False)[0]:
            if term not in QUESTION_WORDS:
                weights[term] = max(weights.get(term, 0.0), _rarity(word))
    return weights


@dataclass(frozen=True)
class Question:
    """What the answerer reads off a question once."""

    text: str
    terms: dict[str, float]  # content word (stemmed) -> weight (its rarity in English)
    names: set[str]  # its names and numbers, lower case
    kind: str | None

    @classmethod
    def read(cls, text: str) -> Question:
        return cls(text, word_weights(text), _names(text), question_type(text))

    def share(self, terms: set[str]) -> float:
        """The weighted share of the question's content words among `terms`."""
        total = sum(self.terms.values())
        return sum(w for t, w in self.terms.items() if t in terms) / total if total else 0.0

    def phrases(self, sentence: str) -> list[tuple[int, int, int]]:
        """Spans of the names, numbers and dates of `sentence` that the question does not hold, each
        with how well it is of the kind asked for: 2 surely (or the question does not say), 1 maybe
        (a place named without "in", "at"...), 0 not."""
        spans = []
        for match in _PHRASE.finditer(sentence):
            phrase = match.group(0).rstrip(".,")
            words = _names(phrase) | set(tokenize([phrase], as_ids=False)[0])
            opens = not sentence[: match.start()].strip(_OPENING)  # any sentence opens with a capital
            if not words or words <= self.names | set(self.terms) or opens and " " not in phrase:
                continue
            end = match.start() + len(phrase)
            spans.append((match.start(), end, self._fits(sentence, match.start(), end)))
        return spans

    def _fits(self, sentence: str, start: int, end: int) -> int:
        if self.kind is None:
            return SURELY
        # A capitalised word inside a sentence is a name, unless it is a date.
        is_name = sentence[start].isupper() and not has_cue(sentence[start:end], "time")
        if self.kind == "name":
            return SURELY if is_name else 0
        # The cue may start before the phrase ("in Geneva"): it is read on the words just before it.
        if has_cue(sentence[max(0, start - 12) : end], self.kind):
            return SURELY
        return int(self.kind == "place" and is_name)  # "Germany debuted...": a place may go without "in"


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
        """How likely the sentence holds the answer, against the question's other sentences."""
        return sum(w * f for w, f in zip(SENTENCE_WEIGHTS, self.features, strict=True))


@dataclass(frozen=True)
class Extract:
    answer: str
    citations: tuple[Citation, ...]
    refused: bool
    answerability: float  # the answer model's log-odds (-inf without a sentence): what the refusal rests on


def _recurrence(text: str, spans: list[tuple[int, int, int]], elsewhere: list[str]) -> float:
    """In how many of the other articles' passages (normalised, `elsewhere`) the sentence's candidate
    answer phrases recur (those of the kind asked for, if any), capped and scaled to 0..1."""
    fitting = [s for s in spans if s[2] == SURELY] or spans
    phrases = {f" {_normalised(text[start:end])} " for start, end, _ in fitting} - {"  "}
    most = max((sum(phrase in other for other in elsewhere) for phrase in phrases), default=0)
    return min(most, RECURRENCE_CAP) / RECURRENCE_CAP


def _sentence_features(
    question: Question, passage: Passage, start: int, end: int, terms: set[str], context: set[str], elsewhere
) -> tuple:
    text = passage.text[start:end]
    new_names = {n for n in _names(text[1:]) if n not in question.names and n not in question.terms}
    spans = question.phrases(text)
    answer_type = 0.0 if question.kind is None else 1.0 if any(fits == SURELY for *_, fits in spans) else -1.0
    return (
        0.0,
        question.share(terms),
        question.share(terms | context),
        min(len(new_names), 4) / 4,
        1 / passage.rank,
        math.log(len(text.split())) / 4,
        float(passage.start + start < 400),
        answer_type,
        _recurrence(text, spans, elsewhere),
    )


def score_sentences(question: str, passages: Sequence[Passage], embedder: Embedder) -> list[Candidate]:
    """The most promising sentences of the passages with their features, best first."""
    asked = Question.read(question)
    spans = [(p, s.start, s.end) for p in passages for s in split_sentences(p.text)]
    spans = [(p, start, end) for p, start, end in spans if len(p.text[start:end].split()) >= 3]
    if not spans:
        return []
    terms = tokenize([p.text[start:end] for p, start, end in spans], as_ids=False)
    contexts = tokenize(
        [f"{p.title} {p.text[max(0, start - CONTEXT_CHARS) : start]}" for p, start, _ in spans], as_ids=False
    )
    articles: dict[str, str] = {}  # article id -> its passages' words, normalised, space-delimited
    for p in passages:
        articles[p.article_id] = f"{articles.get(p.article_id, ' ')}{_normalised(p.text)} "
    candidates = [
        Candidate(
            p,
            start,
            end,
            _sentence_features(
                asked, p, start, end, set(t), set(c), [text for a, text in articles.items() if a != p.article_id]
            ),
        )
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


def answer_features(scores: Sequence[float], features: Sequence[Sequence[float]], best: int) -> tuple[float, ...]:
    """ANSWER_FEATURES of a question's sentences, from their scores and SENTENCE_FEATURES, taking
    sentence `best` as the answer."""
    return (
        scores[best],
        features[best][0],
        features[best][2],
        features[best][3],
        features[best][7],
        max(f[2] for f in features),
        max(f[1] for f in features),
    )


def near_best(scores: Sequence[float]) -> list[int]:
    """The sentences scored within TIE_MARGIN of the best: any of them may come first on another CPU."""
    top = max(scores)
    return [n for n, score in enumerate(scores) if score >= top - TIE_MARGIN]


def answerability(candidates: Sequence[Candidate]) -> float:
    """Log-odds that the passages answer the question, the most that any near-best sentence gives
    (so that two sentences swapping places by a hair do not flip the verdict); -inf without a sentence."""
    if not candidates:
        return -math.inf
    scores, features = [c.score for c in candidates], [c.features for c in candidates]
    return max(
        ANSWER_INTERCEPT + sum(w * f for w, f in zip(ANSWER_WEIGHTS, answer_features(scores, features, n), strict=True))
        for n in near_best(scores)
    )


def chosen(scores: Sequence[float], count: int = 1) -> list[int]:
    """Positions of the sentences an answer is made of, given their scores: the best `count` (the
    things the question asks for, at most MAX_SENTENCES)."""
    return sorted(range(len(scores)), key=lambda n: -scores[n])[: min(count, MAX_SENTENCES)]


def answer_phrase(question: str, sentence: str) -> tuple[int, int] | None:
    """The span in `sentence` of the phrase most likely to be the answer: a name, number or date the
    question does not already hold, of the kind it asks for when it says (a place is a name after
    "in", "at", "near"...), nearest to the words it shares with the question; None when the sentence
    adds no such phrase."""
    asked = Question.read(question)
    spans = asked.phrases(sentence)
    if not spans:
        return None
    anchors = [
        m.start()
        for m in re.finditer(r"\w+", sentence)
        if set(tokenize([m.group(0)], as_ids=False)[0]) & set(asked.terms)
    ] or [0]
    start, end, _ = min(spans, key=lambda s: (-s[2], min(abs(s[0] - a) for a in anchors)))
    return start, end


def _asks_number_none_given(question: str, answer: Sequence[Candidate]) -> bool:
    return question_type(question) == "number" and not any(has_cue(c.text, "number") for c in answer)


def names_asked_about(question: str) -> list[set[str]]:
    """The names the question asks about ("Delta Air Lines", "Raymond Briggs"), each as the stems of
    its telling words (common words such as "New" or "President" left out, and dates): runs of
    capitalised words, the one opening a sentence dropped, since any sentence opens with a capital."""
    names = []
    for run in _NAME_RUN.finditer(question):
        words, before = run.group(0).split(), question[: run.start()].rstrip()
        if not before.rstrip(_OPENING) or before[-1] in ".?!:":  # it opens a sentence
            words = words[1:]
        telling = [w for w in words if zipf_frequency(w, "en") < COMMON_NAME_ZIPF and w.lower() not in DATE_WORDS]
        stems = {t for t in tokenize([" ".join(telling)], as_ids=False)[0] if len(t) >= 3}
        if stems:
            names.append(stems)
    return names


def _names_missing(question: str, passages: Sequence[Passage]) -> bool:
    """Whether the question names someone or something that none of the passages (nor their titles)
    mentions, even misspelt by a letter or as another form of the word: then they are about something else, however much of the rest
    of the question they share."""
    said = set(tokenize([" ".join(f"{p.title} {p.text}" for p in passages)], as_ids=False)[0])
    long_said = [t for t in said if len(t) >= TYPO_LENGTH]
    stems_said = [t for t in said if len(t) >= SHORTEST_STEM]

    def mentioned(stem: str) -> bool:
        if stem in said or any(stem.startswith(t) for t in stems_said):  # "Japanese" of "Japan"
            return True
        return (
            len(stem) >= TYPO_LENGTH
            and process.extractOne(stem, long_said, scorer=OSA.distance, score_cutoff=1) is not None
        )

    return any(not any(mentioned(stem) for stem in name) for name in names_asked_about(question))


def current(question: str, passages: Sequence[Passage], as_of: date | None) -> list[Passage]:
    """The passages that may answer: a question about current news ("this week") is not answered
    from an article published well before that period (app.timeframe), however well it matches."""
    as_of = as_of or date.today()
    frame = resolve(question, as_of)
    return [p for p in passages if frame.current_news_admits(p.published, as_of)]


def extract_answer(
    question: str, passages: Sequence[Passage], embedder: Embedder, as_of: date | None = None
) -> Extract:
    """The answer as of `as_of` (default today)."""
    candidates = score_sentences(question, current(question, passages, as_of), embedder)
    confidence = answerability(candidates)
    answer = [candidates[n] for n in chosen([c.score for c in candidates], asked_count(question))]
    if (
        confidence < REFUSAL_THRESHOLD
        or _asks_number_none_given(question, answer)
        or _names_missing(question, [c.passage for c in candidates])
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
