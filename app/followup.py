"""Follow-up questions without an LLM: a rule-based rewrite into a standalone question.

It carries the subject of the conversation into the new question, so that retrieval finds it:
- "he", "she", "his", "her" become the person last named ("What does he think?" after "Who is
  Andrew Rasiulis?" -> "What does Andrew Rasiulis think?");
- a bare question word ("And when?", "Why?") takes the rest of the previous question;
- "What about X?" asks the previous question again about X;
- "it", "they", "there"... in a question that names nothing itself get the previous subject added.
Earlier follow-ups are rewritten first, so the subject carries over several turns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.sentences import split_sentences

_PERSON_PRONOUN = re.compile(r"\b(he|she|him|her|his|hers)\b", re.IGNORECASE)
_OTHER_REFERENCE = re.compile(r"\b(it|its|they|them|their|theirs|there|this|that|these|those)\b", re.IGNORECASE)
_WH = r"(who|whom|whose|what|when|where|why|how(?: many| much| long| old)?|which)"
_BARE_WH = re.compile(rf"^\s*(?:and|but|so)?\s*,?\s*{_WH}\s*\??\s*$", re.IGNORECASE)
_WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.IGNORECASE)
_LEADING_WH = re.compile(rf"^\s*{_WH}\b", re.IGNORECASE)
_LEADING_WH_AUX = re.compile(
    rf"^\s*{_WH}\s+(?:(?:is|are|was|were|will|would|do|does|did|can|could|has|have|had|should)\b\s*)?",
    re.IGNORECASE)
# Runs of capitalised words (with connecting "of", "the", initials): candidate names.
_NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of\s+|the\s+|de\s+|al-)?[A-Z][\w'’.-]*)*")
# Capitalised words that are not names at the start of a sentence or on their own.
_NOT_NAMES = {
    "who", "whom", "whose", "what", "when", "where", "why", "how", "which", "is", "are", "was", "were", "do",
    "does", "did", "can", "could", "will", "would", "should", "has", "have", "had", "the", "a", "an", "and",
    "but", "so", "in", "on", "at", "of", "for", "to", "he", "she", "it", "they", "we", "i", "you", "his",
    "her", "their", "its", "this", "that", "these", "those", "there", "mr", "mrs", "ms", "dr", "as", "if",
    "after", "before", "according", "asked", "speaking", "meanwhile", "however", "monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march", "april", "may",
    "june", "july", "august", "september", "october", "november", "december",
}
# Words that make a name an organisation or a place rather than a person.
_NOT_PERSON = {
    "institute", "university", "ministry", "department", "council", "committee", "party", "house", "senate",
    "congress", "union", "nations", "states", "kingdom", "republic", "agency", "office", "court", "army",
    "bank", "news", "press", "times", "post", "europe", "america", "africa", "asia", "east", "west",
    "north", "south", "korea", "city", "county", "province", "street", "global", "affairs", "organization",
    "association", "company", "group", "forces", "security", "white",
}


def names(text: str) -> list[str]:
    """Candidate proper names in `text`, in order, leading sentence words and titles trimmed."""
    found = []
    sentences = [text[span.start:span.end] for span in split_sentences(text)]
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
    if _PERSON_PRONOUN.search(question):
        person = _last_person([*earlier, previous_answer, previous])
        if person:
            def name_for(match: re.Match) -> str:
                pronoun = match.group(1).lower()
                return f"{person}'s" if pronoun in {"his", "hers"} else person
            # Only the first: in "How did he warn him?" the second pronoun is someone else.
            return _PERSON_PRONOUN.sub(name_for, question, count=1)
    if _OTHER_REFERENCE.search(question) and not names(question):
        subject = _subject(previous)
        if subject:
            return f"{question.rstrip()} ({subject})"
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
