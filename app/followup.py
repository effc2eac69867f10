"""Follow-up questions without an LLM: a rule-based rewrite into a standalone question.

It carries the subject of the conversation into the new question, so that retrieval finds it:
- "he", "she", "his", "her" become the person last named ("What does he think?" after "Who is
  Andrew Rasiulis?" -> "What does Andrew Rasiulis think?");
- a bare question word ("And when?", "Why?") takes the rest of the previous question;
- "What about X?" asks the previous question again about X;
- "it", "this", "that" in a short question that names nothing itself ("Who said that?", "Where is
  it?", "When did that happen?") stand for what the previous answer stated, so the answer is added,
  citation markers stripped (an answer citing nothing, a refusal, is not). A long answer is cut
  down to its sentence sharing most words with the previous question, and a long sentence to its
  clauses from the first sharing one of them (a leading "Speaking at...", "According to..." is
  dropped). The previous subject comes too when the answer does not restate it ("In Geneva.").
  "Who said that?" after "Where will the talks with the U.S. take place?" answered "Speaking during
  his news conference, the Russian leader welcomed talks with the U.S., which are set to start in
  Geneva next month. [1]" becomes "Who said that? (the Russian leader welcomed talks with the U.S.,
  which are set to start in Geneva next month)": the words that find the passage again, and the
  sentence that answers;
- "it", "this", "that" in a question about someone of the previous turn (a pronoun read as the
  person, or a name the previous question or answer holds) stand for what that person did there, and
  so does a definite noun that is another form of a word of the previous question (warned -> "the
  warning", announced -> "the announcement", attacked -> "the attack", by their stems): the previous
  question's content, less its question word, is added. "How did he deliver it?" after "Who warned
  Putin about severe consequences?" answered with a sentence naming U.S. President Joe Biden becomes
  "How did U.S. President Joe Biden deliver it? (warned Putin about severe consequences)": "it" is
  the warning, not Biden, and retrieval finds the sentence of the warning again;
- "it", "they", "there"... in any other question that names nothing itself get the previous subject
  added.
Earlier follow-ups are rewritten first, so the subject carries over several turns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.citations import MARKER
from app.lexical import QUESTION_WORDS, tokenize
from app.sentences import split_sentences

_PERSON_PRONOUN = re.compile(r"\b(he|she|him|her|his|hers)\b", re.IGNORECASE)
# After an answer, the latest thing said is that answer: a short question pointing back with a
# singular "it", "this" or "that" asks about its statement ("Who said that?") or something in it
# ("Where is it?" after "In Geneva."), whatever the previous question was about. So the answer is
# carried, and the previous subject only when the answer does not restate it. Plural "they",
# "these" and place "there" more often mean what the previous question named: _OTHER_REFERENCE.
_STATEMENT_REFERENCE = re.compile(r"\b(it|this|that)\b", re.IGNORECASE)
# Words at most of a follow-up made of a question word, a verb or two and the reference ("When did
# that happen?"): longer ones say what they ask about themselves.
SHORT_FOLLOW_UP_WORDS = 4
# An answer longer than this is cut down to the sentence, then the clauses, answering the previous
# question: a whole long answer would outweigh the follow-up's own words in retrieval.
LONG_ANSWER_WORDS = 20
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
# A definite noun: "the warning", "that attack".
_DEFINITE_NOUN = re.compile(r"\b(?:the|this|that)\s+([a-z][\w-]*)", re.IGNORECASE)
# "it", "this", "that" and the word after: "that demand", "that Russia..." say what they mean.
_THING_REFERENCE = re.compile(r"\b(it|this|that)\b(?:\s+([\w'’-]+))?", re.IGNORECASE)
_OTHER_REFERENCE = re.compile(r"\b(it|its|they|them|their|theirs|there|this|that|these|those)\b", re.IGNORECASE)
_WH = r"(who|whom|whose|what|when|where|why|how(?: many| much| long| old)?|which)"
_BARE_WH = re.compile(rf"^\s*(?:and|but|so)?\s*,?\s*{_WH}\s*\??\s*$", re.IGNORECASE)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.IGNORECASE)
_LEADING_WH = re.compile(rf"^\s*{_WH}\b", re.IGNORECASE)
_LEADING_WH_AUX = re.compile(
    rf"^\s*{_WH}\s+(?:(?:is|are|was|were|will|would|do|does|did|can|could|has|have|had|should)\b\s*)?", re.IGNORECASE
)
# Runs of capitalised words (with connecting "of", "the", initials): candidate names.
_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of\s+|the\s+|de\s+|al-)?[A-Z][\w'’.-]*)*")
# Capitalised words that are not names at the start of a sentence or on their own.
_NOT_NAMES = {
    "who",
    "whom",
    "whose",
    "what",
    "when",
    "where",
    "why",
    "how",
    "which",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "can",
    "could",
    "will",
    "would",
    "should",
    "has",
    "have",
    "had",
    "the",
    "a",
    "an",
    "and",
    "but",
    "so",
    "in",
    "on",
    "at",
    "of",
    "for",
    "to",
    "he",
    "she",
    "it",
    "they",
    "we",
    "i",
    "you",
    "his",
    "her",
    "their",
    "its",
    "this",
    "that",
    "these",
    "those",
    "there",
    "mr",
    "mrs",
    "ms",
    "dr",
    "as",
    "if",
    "after",
    "before",
    "according",
    "asked",
    "speaking",
    "meanwhile",
    "however",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
}
# Words that make a name an organisation or a place rather than a person.
_NOT_PERSON = {
    "institute",
    "university",
    "ministry",
    "department",
    "council",
    "committee",
    "party",
    "house",
    "senate",
    "congress",
    "union",
    "nations",
    "states",
    "kingdom",
    "republic",
    "agency",
    "office",
    "court",
    "army",
    "bank",
    "news",
    "press",
    "times",
    "post",
    "europe",
    "america",
    "africa",
    "asia",
    "east",
    "west",
    "north",
    "south",
    "korea",
    "city",
    "county",
    "province",
    "street",
    "global",
    "affairs",
    "organization",
    "association",
    "company",
    "group",
    "forces",
    "security",
    "white",
}


def names(text: str) -> list[str]:
    """Candidate proper names in `text`, in order, leading sentence words and titles trimmed."""
    found = []
    sentences = [text[span.start : span.end] for span in split_sentences(text)]
    for match in (m for sentence in sentences for m in _NAME.finditer(sentence)):
        name = match.group(0).rstrip("’'")
        words = (name if "." in name[:-1] else name.rstrip(".")).split()
        while words and words[0].lower().rstrip(".") in _NOT_NAMES:
            words = words[1:]
        while words and words[-1].lower() in {"of", "the"}:
            words = words[:-1]
        if words:
            found.append(" ".join(words))
    return found


def _is_person(name: str) -> bool:
    """A guess good enough for pronouns: two or more words, none of them an organisation word,
    not an acronym."""
    words = name.split()
    return len(words) >= 2 and not any(w.lower().strip(".,") in _NOT_PERSON for w in words) and not name.isupper()


def _last_person(turns: Sequence[str]) -> str | None:
    """The person a pronoun most likely means: the first person named in the latest turn naming one."""
    for text in reversed(turns):
        found = names(text)
        people = [n for n in found if _is_person(n)]
        if people:
            return people[0]
    return None


def _subject(question: str) -> str:
    """What a question is about: its words after the question word and its auxiliary verb."""
    return _LEADING_WH_AUX.sub("", question).strip(" ?")


def _content_words(texts: Sequence[str]) -> list[set[str]]:
    """The stemmed words of each text that say what it is about."""
    return [set(words) - QUESTION_WORDS for words in tokenize(list(texts), as_ids=False)]


def _names_what_was_asked(question: str, previous: str) -> bool:
    """Whether `question` has a definite noun that is another form of a word of `previous` (the same
    stem, not the same word): "the warning" after "Who warned Putin?" names the warning asked about."""
    asked_words = {word.lower() for word in re.findall(r"[\w'’-]+", previous)}
    nouns = [m.group(1) for m in _DEFINITE_NOUN.finditer(question) if m.group(1).lower() not in asked_words]
    asked = _content_words([previous])[0]
    return any(stems & asked for stems in _content_words(nouns))


def _points_to_a_thing(question: str) -> bool:
    """Whether `question` has "it", or a "this" or "that" standing for a thing: not before a word of
    content ("that demand" names its thing, "that Russia will..." opens a clause)."""
    return any(
        match.group(1).lower() == "it" or not match.group(2) or not _content_words([match.group(2)])[0]
        for match in _THING_REFERENCE.finditer(question)
    )


def _about_someone_of(question: str, turn: Sequence[str]) -> bool:
    """Whether `question` names someone the texts of `turn` name (a word of a name in common:
    "Biden" and "U.S. President Joe Biden")."""
    named = {word for text in turn for name in names(text) for word in name.split()}
    return any(word in named for name in names(question) for word in name.split())


def _with_subject(question: str, previous: str) -> str:
    """`question` with the subject of `previous` added, when it has one that `question` does not hold
    already."""
    subject = _subject(previous)
    if not subject or _content_words([subject])[0] <= _content_words([question])[0]:
        return question
    return f"{question.rstrip()} ({subject})"


def _leans_on_answer(question: str) -> bool:
    """A short question that names nothing and points back with "it", "this" or "that"."""
    return (
        len(question.split()) <= SHORT_FOLLOW_UP_WORDS
        and bool(_STATEMENT_REFERENCE.search(question))
        and not names(question)
    )


def _shortened(answer: str, asked: set[str]) -> str:
    """A long answer cut down to what answers the question whose content words are `asked`: its
    sentence sharing most of them (the first on a tie: an answer leads with its best), and when that
    is long too, from the sentence's first clause sharing one."""
    if len(answer.split()) <= LONG_ANSWER_WORDS:
        return answer
    sentences = [answer[span.start : span.end].strip() for span in split_sentences(answer)]
    shared = [len(words & asked) for words in _content_words(sentences)]
    sentence = sentences[shared.index(max(shared))]
    if len(sentence.split()) <= LONG_ANSWER_WORDS:
        return sentence
    clauses = _CLAUSE_END.split(sentence)
    first = next((number for number, words in enumerate(_content_words(clauses)) if words & asked), 0)
    return " ".join(clauses[first:])


def _statement(previous: str, previous_answer: str) -> str:
    """What the previous answer states, to carry into a follow-up leaning on it; empty when it cites
    no article (a refusal: it states nothing the articles hold)."""
    answer = MARKER.sub("", previous_answer).strip()
    if not answer or answer == previous_answer.strip():
        return ""
    asked = _content_words([previous])[0]
    statement = _shortened(answer, asked).rstrip(" .")
    subject = _subject(previous)
    # An answer that does not restate what was asked ("In Geneva.") needs the subject beside it.
    if subject and not _content_words([statement])[0] & asked:
        return f"{subject}: {statement}"
    return statement


def _rewrite_one(question: str, previous: str, previous_answer: str, earlier: Sequence[str]) -> str:
    bare = _BARE_WH.match(question)
    if bare:
        wh = bare.group(1)
        rest = _LEADING_WH.sub("", previous, count=1)
        return f"{wh[0].upper()}{wh[1:]}{rest}" if rest != previous else f"{wh} {previous}"
    about = _WHAT_ABOUT.match(question)
    if about:
        target = about.group(1)
        previous_names = names(previous)
        if previous_names:
            return previous.replace(previous_names[0], target, 1)
        return f"{previous.rstrip(' ?')} ({target})?"
    person = _last_person([*earlier, previous_answer, previous]) if _PERSON_PRONOUN.search(question) else None
    about_the_same = person or _about_someone_of(question, (previous, previous_answer))
    # "it" in a question about someone of the previous turn, or "the warning" after "Who warned...":
    # what the previous question asked about, which the person's name alone would not find again.
    carries_subject = _names_what_was_asked(question, previous) or (about_the_same and _points_to_a_thing(question))
    if person:

        def name_for(match: re.Match) -> str:
            pronoun = match.group(1).lower()
            return f"{person}'s" if pronoun in {"his", "hers"} else person

        # Only the first: in "How did he warn him?" the second pronoun is someone else.
        question = _PERSON_PRONOUN.sub(name_for, question, count=1)
    if carries_subject:
        return _with_subject(question, previous)
    if person:
        return question
    statement = _statement(previous, previous_answer) if _leans_on_answer(question) else ""
    if statement:
        return f"{question.rstrip()} ({statement})"
    if _OTHER_REFERENCE.search(question) and not names(question):
        return _with_subject(question, previous)
    return question


def rewrite(question: str, history: Sequence[tuple[str, str]]) -> str:
    """`question` made standalone with the conversation so far; unchanged when it does not lean on it."""
    standalone: list[str] = []  # earlier questions, themselves made standalone
    context: list[str] = []  # those questions and their answers, oldest first
    for asked, answered in history:
        made = _rewrite_one(asked, standalone[-1], context[-1], context[:-2]) if standalone else asked
        standalone.append(made)
        context.extend((made, answered))
    if not standalone:
        return question
    return _rewrite_one(question, standalone[-1], context[-1], context[:-2])
