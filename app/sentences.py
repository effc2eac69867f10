"""Sentence spans of news text: the unit of chunking, of extractive answers and of citations."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that end in a period without ending a sentence.
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "gen",
    "sen",
    "rep",
    "gov",
    "lt",
    "col",
    "capt",
    "sgt",
    "maj",
    "adm",
    "pres",
    "rev",
    "hon",
    "no",
    "vs",
    "etc",
    "inc",
    "corp",
    "ltd",
    "co",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "u.s",
    "u.n",
    "u.k",
    "e.g",
    "i.e",
    "a.m",
    "p.m",
    "mt",
    "ft",
    "approx",
    "dept",
    "est",
    "fig",
}
# A candidate boundary: sentence punctuation and closing quotes/brackets (group 1), then white space.
# Tried only where a run of punctuation starts: from every point of a run, a run of n without space
# after it took n^2 steps (40,000 "!" took 18 s).
_BOUNDARY = re.compile(r"(?<![.!?])([.!?]+[\"'”’)\]]*)\s+")
_LINE = re.compile(r"\S(?:.*\S)?")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of `text`; every line is a paragraph, and no sentence crosses one."""
    spans: list[Span] = []
    for line in _LINE.finditer(text):
        start = line.start()
        for boundary in _BOUNDARY.finditer(text, line.start(), line.end()):
            words = text[start : boundary.start()].split()
            last_word = words[-1].lower().rstrip(".") if words else ""
            next_char = text[boundary.end()]
            if last_word in _ABBREVIATIONS or len(last_word) == 1:
                continue
            if not (next_char.isupper() or next_char.isdigit() or next_char in "\"'“‘(["):
                continue
            spans.append(Span(start, boundary.end(1)))
            start = boundary.end()
        spans.append(Span(start, line.end()))
    return spans


def closing_quote(sentence: str) -> str:
    """The quotation mark that closes a quotation `sentence` opens and leaves open (the first sentence
    of a quotation of several), so that the sentence quoted alone keeps its end; "" when none is open.
    A straight quote opens when nothing but space or an opening bracket comes before it."""
    text = sentence.rstrip()
    if text.count('"') % 2:
        last = text.rindex('"')
        return '"' if last == 0 or text[last - 1].isspace() or text[last - 1] in "([" else ""
    return "”" if text.count("“") > text.count("”") else ""
