"""Answers and sources as the chat page shows them: Markdown for the chat, HTML for the sources
panel, Markdown for the `/ask` endpoint. Pure functions of the engine's records."""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from app.answering import EXTRACTIVE
from app.citations import MARKER
from app.documents import Answer, Citation
from ingest.sources import is_url

EXTRACTIVE_HINT = ("Answers are sentences quoted from the articles. For written answers, run Ollama and set "
                   "NEWSQA_LLM=ollama:MODEL, or set NEWSQA_LLM=openai:MODEL and NEWSQA_OPENAI_BASE_URL for an "
                   "OpenAI-compatible endpoint.")
# Characters of passage shown either side of the supporting sentence.
PASSAGE_CONTEXT = 300


def source_anchor(turn: int, number: int) -> str:
    """The element id of citation `number` of answer `turn` in the sources panel."""
    return f"source-{turn}-{number}"


def link_markers(text: str, turn: int) -> str:
    """Each [n] marker of an answer as a link to its source in the panel; [1, 2] gives two links."""

    def linked(match: re.Match) -> str:
        numbers = re.findall(r"\d+", match.group(1))
        leading = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        return leading + "".join(f"[[{n}]](#{source_anchor(turn, int(n))})" for n in numbers)

    return MARKER.sub(linked, text)


def warning_notes(answer: Answer) -> str:
    """The answer's warnings (an LLM that failed, a quotation not in the passages) as Markdown quotes."""
    notes = [warning[0].upper() + warning[1:] for warning in answer.warnings if warning]
    return "".join(f"\n\n> ⚠ {escape(note)}" for note in notes)


def chat_markdown(answer: Answer, turn: int) -> str:
    """The finished answer for the chat: linked markers, then its warnings."""
    return link_markers(answer.answer, turn) + warning_notes(answer)


def highlighted_passage(citation: Citation, context: int = PASSAGE_CONTEXT) -> str:
    """The passage as HTML with its supporting sentence marked, cut to about `context` characters
    either side of it (at a word boundary, with an ellipsis): merged passages run long."""
    text, start, end = citation.passage, citation.sentence_start, citation.sentence_end
    before, after = text[:start], text[end:]
    if len(before) > context:
        before = "…" + before[-context:].split(" ", 1)[-1]
    if len(after) > context:
        after = after[:context].rsplit(" ", 1)[0] + "…"
    return f"{escape(before)}<mark>{escape(text[start:end])}</mark>{escape(after)}"


def _source_card(citation: Citation, turn: int) -> str:
    title = escape(citation.title or citation.file or "untitled")
    if is_url(citation.url):  # an article's own url field could hold javascript:
        title = f'<a href="{escape(citation.url)}" target="_blank" rel="noopener noreferrer">{title}</a>'
    meta = " · ".join(escape(part) for part in (
        citation.published.isoformat() if citation.published else "undated",
        citation.source or citation.file,
    ) if part)
    return (f'<div class="nq-source" id="{source_anchor(turn, citation.number)}">'
            f'<div class="nq-source-title"><span class="nq-number">[{citation.number}]</span> {title}</div>'
            f'<div class="nq-meta">{meta}</div>'
            f'<blockquote class="nq-passage">{highlighted_passage(citation)}</blockquote></div>')


def sources_block(answer: Answer, turn: int) -> str:
    """One answer's sources, headed by its question."""
    if answer.citations:
        cards = "".join(_source_card(c, turn) for c in answer.citations)
    else:
        cards = '<p class="nq-none">No source cited.</p>'
    return (f'<section class="nq-answer-sources" id="sources-{turn}">'
            f'<h4>Answer {turn}: {escape(answer.question)}</h4>{cards}</section>')


def sources_panel(blocks: Sequence[str]) -> str:
    """The panel beside the chat: every answer's sources, newest first."""
    if not blocks:
        return '<div class="nq-sources"><p class="nq-none">Sources of each answer appear here.</p></div>'
    return '<div class="nq-sources">' + "".join(reversed(blocks)) + "</div>"


def api_markdown(answer: Answer) -> str:
    """The `/ask` result: the answer and its warnings, then its sources by title."""
    lines = [answer.answer + warning_notes(answer)]
    if answer.citations:
        lines += ["", "**Sources**", ""]
        for c in answer.citations:
            title = f"[{c.title}]({c.url})" if is_url(c.url) else c.title
            details = ", ".join(p for p in (c.published.isoformat() if c.published else "", c.source) if p)
            lines.append(f"[{c.number}] {title}" + (f" ({details})" if details else ""))
    return "\n".join(lines)


def status_line(backend: str, articles: int) -> str:
    """Which backend answers and how much is indexed; in extractive mode, how to connect an LLM."""
    held = f"{articles} article{'s' if articles != 1 else ''} indexed" if articles else \
        "No articles indexed yet: add some in the Library tab"
    line = f"**Backend:** {escape(backend)} · {held}."
    if backend == EXTRACTIVE:
        line += f" {EXTRACTIVE_HINT}"
    return line
