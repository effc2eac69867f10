"""Answers and sources as the chat page shows them: Markdown for the chat, HTML for the sources
panel, Markdown for the `/ask` endpoint. Pure functions of the engine's records; the asked-for
phrase helpers serve `newsqa ask` too."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from html import escape
from pathlib import PurePath
from urllib.parse import quote

from app.citations import MARKER, claim_sentences
from app.documents import Answer, Citation
from ingest.sources import is_url

MODELS_HINT = (
    "Extractive answers are sentences quoted from the articles. For written answers, run Ollama "
    "(its installed models are listed here), put a .gguf file in NEWSQA_MODELS_FOLDER, or set "
    "NEWSQA_OPENAI_BASE_URL to an OpenAI-compatible endpoint; the lists are read at every page load."
)
# Characters of passage shown either side of the supporting sentence.
PASSAGE_CONTEXT = 300
# What follows an answer sentence that no passage says (app/support.py), in plain text and in the chat.
NOT_FOUND = "not found in the articles"
NOT_FOUND_NOTE = f" ({NOT_FOUND})"
NOT_FOUND_BADGE = f' <span class="nq-unsupported">{NOT_FOUND}</span>'


def source_anchor(turn: int, number: int) -> str:
    """The element id of citation `number` of answer `turn` in the sources panel."""
    return f"source-{turn}-{number}"


# What would make markup of article or LLM text in the chat's Markdown (Gradio's marked, GitHub
# flavoured) or an API client's: each match but an [n] marker is made literal by a backslash before
# its last character. Each is decided by what comes before it (a list's "1." also at the text's end,
# where a space may follow), so that the text so far of a streamed answer is escaped as the start of
# its final text, but where a line starts with a decimal ("3." before "3.5").
_MARKUP = re.compile(
    rf"(?P<marker>{MARKER.pattern})"
    r"|[\\\[\]<`*_~]"  # an escape, a link or image, HTML, code, emphasis, strikethrough
    r"|(?<=\])[(:]"  # a marker's link target, or the definition of where it links to
    r"|&#?[A-Za-z0-9]+;"  # a character reference, which shows as its character
    r"|(?<=:/)/|(?<=(?i:www))\.|(?<=[\w.+-])@"  # what GFM links bare: https://, www., a@b.c
    # At a line's start: a heading, quote, list, rule, setext underline or table; a piece of text
    # that begins with a space is not taken for one.
    r"|(?:\A|\n[ \t]*)(?:[#>+=|:-]|\d{1,9}[.)](?=\s|\Z))"
)


def _literal(match: re.Match) -> str:
    found = match.group(0)
    return found if match["marker"] else f"{found[:-1]}\\{found[-1]}"


def unlinked_markdown(text: str) -> str:
    """`text` as Markdown that shows it as written, for what articles and LLMs wrote: no link, image,
    autolink, HTML, code, emphasis, heading, list or table from it, and its [n] markers as they are.
    Only what would make those is backslash-escaped, so that an ordinary sentence comes out as it is
    and a reader who copies an answer gets what the article said. Emphasis and code are escaped too:
    `*`, `_`, `~` and backticks are rare in news, and an article's bold would pass for the answer's
    own bold of the asked-for phrase. `$` is not: the chat renders no LaTeX (its `latex_delimiters`
    are none), and "$5 and $10" is money. A character reference is kept as written (`&lt;` shows as
    `&lt;`, not as the `<` it would decode to, which would be text, not markup)."""
    return _MARKUP.sub(_literal, text)


def _link_target(url: str) -> str:
    """`url` as a Markdown link's target: what would end it or start markup there percent-encoded."""
    return re.sub(r"[\s()\[\]<>\\\"']", lambda character: quote(character.group()), url)


def answer_markdown(text: str, turn: int) -> str:
    """Answer text shown as written (`unlinked_markdown`), with each [n] marker a link to its source
    in the panel; [1, 2] gives two links."""
    parts, at = [], 0
    for match in MARKER.finditer(text):
        numbers = re.findall(r"\d+", match.group(1))
        leading = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
        before = unlinked_markdown(text[at : match.start()])
        if before.endswith("!") and not leading:  # "Go![1]" would make the marker's link an image
            before = before[:-1] + "\\!"
        parts += [before, leading]
        parts += [f"[[{n}]](#{source_anchor(turn, int(n))})" for n in numbers]
        at = match.end()
    return "".join(parts) + unlinked_markdown(text[at:])


def phrase_spans(answer: Answer) -> list[tuple[int, int]]:
    """Where the asked-for phrases lie in the answer text, in order. A citation's highlight is placed
    through its sentence, which the extractive answer quotes verbatim; an answer that rewords its
    sentences has none."""
    spans = set()
    for citation in answer.citations:
        quoted = citation.sentence.strip()
        at = answer.answer.find(quoted) if citation.highlight and quoted else -1
        if at >= 0:
            shift = at - (len(citation.sentence) - len(citation.sentence.lstrip()))
            start, end = citation.highlight
            spans.add((shift + start, shift + end))
    return sorted(spans)


def mark_phrases(
    text: str,
    spans: Sequence[tuple[int, int]],
    opening: str,
    closing: str,
    piece: Callable[[str], str] = str,
    since: int = 0,
    notes: Sequence[tuple[int, str]] = (),
) -> str:
    """`text[since:]` with each span (sorted) between `opening` and `closing`, each note (position,
    text) put in at its position, and every piece of the text passed through `piece` (e.g.
    `escape`). A span that starts before `since` or inside an earlier one is left plain, as is a note
    before `since`."""
    inserts, at = [], since
    for start, end in spans:
        if start >= at:
            inserts += [(start, 2, opening), (end, 0, closing)]
            at = end
    inserts += [(position, 1, note) for position, note in notes if position >= since]
    parts, at = [], since
    for position, _, insert in sorted(inserts, key=lambda i: i[:2]):
        parts += [piece(text[at:position]), insert]
        at = position
    return "".join(parts) + piece(text[at:])


def unsupported_notes(answer: Answer, mark: str) -> list[tuple[int, str]]:
    """`mark` after each sentence of the answer that no passage says (after its markers), as notes
    for mark_phrases."""
    flagged = {s.text for s in answer.sentences if not s.supported}
    return [(claim.end, mark) for claim in claim_sentences(answer.answer) if claim.text in flagged]


def warning_notes(answer: Answer) -> str:
    """The answer's warnings (an LLM that failed, a quotation not in the passages) as Markdown quotes."""
    notes = [warning[0].upper() + warning[1:] for warning in answer.warnings if warning]
    return "".join(f"\n\n> ⚠ {unlinked_markdown(note)}" for note in notes)


def read_as_note(answer: Answer) -> str:
    """What a follow-up was read as, when the conversation changed it, as a Markdown note."""
    if not answer.standalone_question or answer.standalone_question == answer.question:
        return ""
    return f"\n\n*Read as: {unlinked_markdown(answer.standalone_question)}*"


def chat_markdown(answer: Answer, turn: int) -> str:
    """The finished answer for the chat: its text as written, the asked-for phrases bold, a badge after
    each sentence no passage says, linked markers, then what a follow-up was read as and the warnings."""
    marked = mark_phrases(
        answer.answer,
        phrase_spans(answer),
        "**",
        "**",
        lambda piece: answer_markdown(piece, turn),
        notes=unsupported_notes(answer, NOT_FOUND_BADGE),
    )
    return marked + read_as_note(answer) + warning_notes(answer)


def highlighted_passage(citation: Citation, context: int = PASSAGE_CONTEXT) -> str:
    """The passage as HTML with its supporting sentence marked, and the asked-for phrase in it strong,
    cut to about `context` characters either side of it (at a word boundary, with an ellipsis): merged
    passages run long."""
    text, start, end = citation.passage, citation.sentence_start, citation.sentence_end
    before, after = text[:start], text[end:]
    if len(before) > context:
        before = "…" + before[-context:].split(" ", 1)[-1]
    if len(after) > context:
        after = after[:context].rsplit(" ", 1)[0] + "…"
    phrase = [citation.highlight] if citation.highlight else []
    sentence = mark_phrases(text[start:end], phrase, '<strong class="nq-answer-phrase">', "</strong>", escape)
    return f"{escape(before)}<mark>{sentence}</mark>{escape(after)}"


def article_link(article_id: str, url: str) -> str:
    """Where a source opens: a web article's own page, else the chat page's copy of the stored text
    (a relative link, so that it works under any path the page is served at)."""
    return url if is_url(url) else f"article/{quote(article_id, safe='')}"


def _title(title: str, article_id: str, url: str) -> str:
    link = article_link(article_id, url)  # an article's own url field could hold javascript:
    return f'<a href="{escape(link)}" target="_blank" rel="noopener noreferrer">{escape(title or "untitled")}</a>'


def _meta(published: str | None, source: str, file: str) -> str:
    """Date and source; a local file's name when there is no source. An undated article shows no date."""
    parts = (escape(part) for part in (published, source or file) if part)
    return f'<div class="nq-meta">{" · ".join(parts)}</div>'


def _source_card(citation: Citation, turn: int | None) -> str:
    published = citation.published.isoformat() if citation.published else None
    anchor = f' id="{source_anchor(turn, citation.number)}"' if turn is not None else ""
    return (
        f'<div class="nq-source"{anchor}>'
        f'<div class="nq-source-title"><span class="nq-number">[{citation.number}]</span> '
        f"{_title(citation.title or citation.file, citation.article_id, citation.url)}</div>"
        f"{_meta(published, citation.source, citation.file)}"
        f'<blockquote class="nq-passage">{highlighted_passage(citation)}</blockquote></div>'
    )


def _closest_card(passage: dict) -> str:
    """A passage near a refused question (an entry of `Answer.as_dict()["closest"]`)."""
    return (
        f'<div class="nq-source nq-closest">'
        f'<div class="nq-source-title">'
        f"{_title(passage['title'] or passage['file'], passage['article_id'], passage['url'])}</div>"
        f"{_meta(passage['published'], passage['source'], passage['file'])}"
        f'<blockquote class="nq-passage">{escape(passage["text"])}</blockquote></div>'
    )


def _cards(answer: Answer, turn: int | None) -> str:
    """The answer's source cards (anchored for the panel when `turn` is given); for a refusal, the
    closest articles, so the reader can judge it, said not to be an answer."""
    if answer.citations:
        return "".join(_source_card(c, turn) for c in answer.citations)
    if closest := answer.as_dict()["closest"]:
        return '<p class="nq-closest-heading">Closest articles (not an answer)</p>' + "".join(
            _closest_card(p) for p in closest
        )
    return '<p class="nq-none">No source cited.</p>'


def sources_block(answer: Answer, turn: int) -> str:
    """One answer's sources for the panel beside the chat, headed by its question."""
    return (
        f'<section class="nq-answer-sources" id="sources-{turn}">'
        f"<h4>Answer {turn}: {escape(answer.question)}</h4>{_cards(answer, turn)}</section>"
    )


_LINE_BREAKS = str.maketrans({"\n": "&#10;", "\r": "&#13;"})  # as character references, shown the same


def inline_sources(answer: Answer) -> str:
    """The answer's sources folded under it in the chat, for narrow screens where the panel is not
    beside the chat (the page's style shows one or the other)."""
    count = len(answer.citations)
    label = f"Sources ({count})" if count else "Sources"
    # On one line: a blank line would end the chat's HTML block, and Markdown would read what follows.
    cards = _cards(answer, None).translate(_LINE_BREAKS)
    return (
        f'\n\n<details class="nq-inline-sources"><summary>{label}</summary>'
        f'<div class="nq-sources-inline">{cards}</div></details>'
    )


def sources_panel(blocks: Sequence[str]) -> str:
    """The panel beside the chat: every answer's sources, newest first."""
    if not blocks:
        return '<div class="nq-sources"><p class="nq-none">Sources of each answer appear here.</p></div>'
    return '<div class="nq-sources">' + "".join(reversed(blocks)) + "</div>"


def api_markdown(answer: Answer) -> str:
    """The `/ask` and API result: the answer (each sentence no passage says marked) and its
    warnings, then its sources by title, linked to their pages; no link, image or HTML from an
    article or an LLM in it."""
    marked = mark_phrases(answer.answer, [], "", "", unlinked_markdown, notes=unsupported_notes(answer, NOT_FOUND_NOTE))
    lines = [marked + warning_notes(answer)]
    if answer.citations:
        lines += ["", "**Sources**", ""]
        for c in answer.citations:
            title = unlinked_markdown(c.title)
            title = f"[{title}]({_link_target(c.url)})" if is_url(c.url) else title
            details = ", ".join(p for p in (c.published.isoformat() if c.published else "", c.source) if p)
            lines.append(f"[{c.number}] {title}" + (f" ({unlinked_markdown(details)})" if details else ""))
    return "\n".join(lines)


def status_line(backend: str, articles: int) -> str:
    """One short line: which backend answered last (a fallback's reason is in the answer) and how
    much is indexed."""
    backend = backend.split(" (fallback:")[0] + " (fallback)" if " (fallback:" in backend else backend
    if backend.startswith("llamacpp:"):  # the file, not its whole path
        backend = f"llamacpp:{PurePath(backend.partition(':')[2]).name}"
    held = (
        f"{articles} article{'s' if articles != 1 else ''} indexed"
        if articles
        else "no articles yet: add some in the Library tab"
    )
    return f"{escape(backend)} · {held}"
