"""Citations: the [n] markers of an answer tied to the passages they name, each with the passage
sentence that supports it, and quotations checked against what the passages actually say."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

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


def _claim_sentences(answer: str) -> list[tuple[int, int, str]]:
    """The answer's sentences as (start, end, text without markers); a sentence that is only
    markers ("... Geneva. [1]") is folded into the one before it, which it cites."""
    claims: list[tuple[int, int, str]] = []
    for span in split_sentences(answer):
        text = MARKER.sub("", answer[span.start : span.end]).strip()
        if not text and claims:
            start, _, previous = claims[-1]
            claims[-1] = (start, span.end, previous)
        else:
            claims.append((span.start, span.end, text))
    return claims


def resolve_markers(answer: str, passages: Sequence[Passage]) -> tuple[str, tuple[Citation, ...], tuple[str, ...]]:
    """Tie the [n] markers of `answer` to `passages[n-1]`.

    Markers naming no passage are removed from the text (numbers are kept as they are, so the text
    matches what was streamed). Each cited passage gives one Citation, whose supporting sentence is
    the passage sentence closest to the answer sentences carrying its marker. Returns the cleaned
    text, the citations in number order, and warnings for quotations no passage contains.
    """
    claims = _claim_sentences(answer)
    carried: dict[int, list[str]] = {}  # passage number -> answer sentences citing it

    def claim_at(position: int) -> str:
        for start, end, text in claims:
            if start <= position < end:
                return text
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
