"""Markdown into an article's plain text, by markdown-it-py's CommonMark parser (tables too).

The body must read as the same story does in a .txt or on a web page: one paragraph a line, with no
Markdown syntax left for retrieval, the answerer or a citation to quote. So a paragraph's wrapped
lines are joined; emphasis, links and inline code keep only their text; images and raw HTML, which
are not text a reader reads, are left out; each table row becomes a line of its cells.

Headings are left out of the body, as the web page parser leaves out the page's headings: a heading
labels the paragraphs under it rather than stating anything, so it is no sentence to quote as an
answer, and a story saved with subheadings then reads the same as its .txt, which has none. The
first level-one heading is returned as the title, for a file whose front matter names none.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark").enable("table")
# Line breaks inside a paragraph: a soft one is a wrapped line, a hard one (two spaces, a backslash)
# breaks it. Markup tokens (em_open, link_open, image, html_inline...) give no text.
_BREAKS = {"softbreak": " ", "hardbreak": "\n"}


def _inline_text(children: Sequence[Token]) -> str:
    return "".join(
        token.content if token.type in ("text", "code_inline") else _BREAKS.get(token.type, "") for token in children
    )


def markdown_text(source: str) -> tuple[str, str]:
    """The first level-one heading ("" when there is none) and the text of everything but headings,
    one paragraph, list item, quote paragraph, code line or table row a line."""
    title, lines, row = "", [], None
    heading = ""  # the tag of the heading being read
    for token in _PARSER.parse(source):
        if token.type == "heading_open":
            heading = token.tag
        elif token.type == "heading_close":
            heading = ""
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            lines.append("; ".join(row))
            row = None
        elif token.type in ("fence", "code_block"):
            lines.extend(token.content.splitlines())
        elif token.type == "inline":
            text = _inline_text(token.children or ())
            if heading:
                title = title or (text if heading == "h1" else "")
            elif row is not None:
                row.append(text)
            else:
                lines.append(text)
    return title, "\n".join(line for line in lines if line.strip())
