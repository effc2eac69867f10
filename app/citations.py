"""Citations: the [n] markers of an answer tied to the passages they name, each with the passage
sentence that supports it, and quotations checked against what the passages actually say."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.documents import Citation, Passage
from app.lexical import tokenize
from app.sentences import split_sentences

# [3], [1, 2], [1,2,3]: a marker names one passage or several.
MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
# A quotation in straight or curly double quotes; single quotes are too often apostrophes.
_QUOTE = re.compile(r"\"([^\"]+)\"|“([^”]+)”")
_ELLIPSIS = re.compile(r"\.\.\.|…")
_NON_WORD = re.compile(r"[^\w]+")


def _terms(text: str) -> set[str]:
    """Content words, stemmed, as the lexical index sees them."""
    return set(tokenize([text], as_ids=False)[0])


def supporting_sentence(passage: Passage, text: str) -> tuple[int, int]:
    """The span in `passage.text` of the sentence that shares most with `text` (cosine of their
    content-word sets, so a long sentence does not win merely by being long); the first sentence
    when none shares a word."""
    spans = split_sentences(passage.text)
    if not spans:
        return 0, len(passage.text)
    wanted = _terms(text)
    best, best_score = spans[0], 0.0
    for span in spans:
        terms = _terms(passage.text[span.start : span.end])
        if not terms or not wanted:
            continue
        score = len(terms & wanted) / math.sqrt(len(terms) * len(wanted))
        if score > best_score:
            best, best_score = span, score
    return best.start, best.end


def make_citation(number: int, passage: Passage, span: tuple[int, int]) -> Citation:
    start, end = span
    return Citation(
        number=number,
        article_id=passage.article_id,
        title=passage.title,
        published=passage.published,
        source=passage.source,
        url=passage.url,
        file=passage.file,
        passage=passage.text,
        sentence=passage.text[start:end],
        sentence_start=start,
        sentence_end=end,
    )


def _normalise(text: str) -> str:
    """Lower case words separated by single spaces: quotes survive re-punctuation and line breaks."""
    text = text.replace("’", "'").replace("‘", "'")
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def unsupported_quotes(answer: str, passages: Sequence[Passage]) -> tuple[str, ...]:
    """Warnings for quotations in `answer` that no passage contains. A quotation elided with "..."
    is checked part by part."""
    haystack = "\n".join(_normalise(p.text) for p in passages)
    warnings = []
    for match in _QUOTE.finditer(MARKER.sub("", answer)):
        quote = match.group(1) or match.group(2)
        parts = [_normalise(part) for part in _ELLIPSIS.split(quote)]
        if any(part and part not in haystack for part in parts):
            warnings.append(f'quoted text not found in the passages: "{quote.strip()}"')
    return tuple(warnings)


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer: its span in the answer (markers included), its text without
    markers, and the passage numbers its markers name."""

    start: int
    end: int
    text: str
    numbers: tuple[int, ...]


def marker_numbers(text: str) -> tuple[int, ...]:
    """The passage numbers the [n] markers of `text` name, each once, in order."""
    return tuple(dict.fromkeys(int(n) for match in MARKER.finditer(text) for n in re.findall(r"\d+", match.group(1))))


def claim_sentences(answer: str) -> list[Claim]:
    """The answer's sentences. Markers that open a sentence ("... Geneva. [1] Putin ...") cite the
    one before it, so they are folded into that one, as is a sentence that is only markers."""
    claims: list[Claim] = []
    for span in split_sentences(answer):
        start = span.start
        leading = re.match(rf"(?:{MARKER.pattern})+", answer[start : span.end])
        if leading and claims:
            last, start = claims[-1], start + leading.end()
            claims[-1] = Claim(last.start, start, last.text, marker_numbers(answer[last.start : start]))
        piece = answer[start : span.end]
        text = MARKER.sub("", piece).strip()
        if text or not claims:
            claims.append(Claim(start, span.end, text, marker_numbers(piece)))
    return claims


def resolve_markers(answer: str, passages: Sequence[Passage]) -> tuple[str, tuple[Citation, ...], tuple[str, ...]]:
    """Tie the [n] markers of `answer` to `passages[n-1]`.

    Markers naming no passage are removed from the text (numbers are kept as they are, so the text
    matches what was streamed). Each cited passage gives one Citation, whose supporting sentence is
    the passage sentence closest to the answer sentences carrying its marker. Returns the cleaned
    text, the citations in number order, and warnings for quotations no passage contains.
    """
    claims = claim_sentences(answer)
    carried: dict[int, list[str]] = {}  # passage number -> answer sentences citing it

    def claim_at(position: int) -> str:
        for claim in claims:
            if claim.start <= position < claim.end:
                return claim.text
        return MARKER.sub("", answer).strip()

    def keep_valid(match: re.Match) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        valid = list(dict.fromkeys(n for n in numbers if 1 <= n <= len(passages)))
        if not valid:
            return ""
        for n in valid:
            carried.setdefault(n, []).append(claim_at(match.end() - 1))
        leading = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        return f"{leading}[{', '.join(map(str, valid))}]"

    text = MARKER.sub(keep_valid, answer).strip()
    citations = tuple(
        make_citation(n, passages[n - 1], supporting_sentence(passages[n - 1], " ".join(carried[n])))
        for n in sorted(carried)
    )
    return text, citations, unsupported_quotes(text, passages)
