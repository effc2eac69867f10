"""Parsers: the bytes of one file or page into Articles, one function a format.

Each parser takes the raw bytes and a `Origin` (where they came from) and returns Articles, or
raises `BadInput` with a one-line reason a person can act on. Files of many records (JSON, JSON
lines) return a `Failure` for each bad record instead, so that one bad record costs only itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath

import yaml
from charset_normalizer import from_bytes

from app.documents import Article
from ingest.markdown_text import markdown_text


class BadInput(ValueError):
    """Input that cannot become an article; the message says why, in one line."""


@dataclass(frozen=True)
class Failure:
    """A source, or a record in one, that could not be read, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class Origin:
    """Where some bytes came from: a file path, or a URL (with the file name it is known by)."""

    location: str
    is_url: bool = False
    charset: str = ""  # as declared by the server, if any

    @property
    def name(self) -> str:
        return PurePosixPath(self.location.split("?")[0].rstrip("/")).name or self.location


# Single-byte encodings that decode some texts identically; charset detection cannot tell them
# apart, and for news text the Western one is by far the likeliest.
_PREFERRED_LEGACY = "cp1252"


def decode(data: bytes, declared: str = "") -> str:
    """Text from bytes: a declared charset first, then UTF-8, then the likeliest legacy encoding."""
    if not data.strip():
        raise BadInput("empty file")
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BadInput("binary file, not text")
    for encoding in filter(None, (declared, "utf-8-sig")):
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    matches = list(from_bytes(data))
    if not matches:
        raise BadInput("not text in any encoding that could be recognised")
    least_chaos = min(m.chaos for m in matches)
    if any(_PREFERRED_LEGACY in m.could_be_from_charset for m in matches if m.chaos <= least_chaos + 0.02):
        return data.decode(_PREFERRED_LEGACY)
    return str(matches[0])


def parse_date(value: object) -> date | None:
    """Dates as they come in front matter, JSON and feeds; an unreadable one is left unknown."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        except ValueError:
            pass
        from email.utils import parsedate_to_datetime

        try:
            return parsedate_to_datetime(text).date()
        except (TypeError, ValueError):
            return None
    return None


# Limits on what one article may carry beyond its text. A title or name past them is cut, not refused:
# it is metadata gone wrong, and the article's text is still worth indexing. The title heads every
# chunk's embedded text, so a long one would crowd out the text it is there to place.
MAX_TITLE_CHARS = 500
MAX_AUTHORS = 20
MAX_AUTHOR_CHARS = 100
# News records nest a level or two; anything much deeper is built to exhaust the stack of whatever
# walks it (str() of the title included).
MAX_DEPTH = 20


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: cut at a space where there is one, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "\u2026"


def _check_depth(value: object) -> None:
    """BadInput for lists and mappings nested more than MAX_DEPTH deep; level by level, so that the
    check itself does not recurse."""
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, (list, dict))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return
    raise BadInput(f"nested more than {MAX_DEPTH} levels deep")


# JSON's \ud800 escapes give strings that cannot be encoded, which the tokenizer and the index refuse.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters that are not white space (C0 and C1 but tab, line breaks and their kin; DEL): a
# terminal obeys them (ESC recolours the output, OSC 52 writes the clipboard) and no text needs them.
# The white space among them is made spaces or line breaks by each field's own clean-up.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def _text(value: object) -> str:
    return _CONTROL.sub("", _LONE_SURROGATE.sub("\ufffd", str(value or "")))


def _line(value: object) -> str:
    """A field of one line (title, source, author, URL): its white space, line breaks included, made single spaces."""
    return " ".join(_text(value).split())


def _authors(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        names = (_line(a) for a in re.split(r";|,| and ", _text(value)))
    elif isinstance(value, list):
        names = (_line(a) for a in value)
    else:
        return ()
    return tuple(_cut(a, MAX_AUTHOR_CHARS) for a in names if a)[:MAX_AUTHORS]


def _article(
    origin: Origin,
    title: str,
    body: str,
    *,
    key: str = "",
    published: object = None,
    source: object = "",
    url: object = "",
    authors: object = None,
) -> Article:
    title, body = _line(title), _clean_body(_text(body))
    first_line, _, rest = body.partition("\n")
    if title and first_line == title:  # pages often repeat their headline atop the text
        body = rest.strip()
    if not body:
        raise BadInput("no article text found")
    if not title:
        title = body.split("\n", 1)[0][:120]
    url = _line(url or (origin.location if origin.is_url else ""))
    return Article(
        title=_cut(title, MAX_TITLE_CHARS),
        body=body,
        origin=_text(key) or url or origin.location,
        published=parse_date(published),
        source=_line(source),
        url=url,
        authors=_authors(authors),
        file=origin.name,
    )


# A line of white space only: between paragraphs of a text that marks them so.
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")


def _clean_body(text: str) -> str:
    """One paragraph a line, white space made single spaces, whatever format the text came in.

    A text that separates its paragraphs by blank lines (JSON records, hard-wrapped plain text) has
    its single line breaks joined as wrapped lines; without blank lines (the .txt convention, the web
    page's text), every line is a paragraph. Either way no sentence is cut by a line break, and the
    same story has the same body, lines and offsets, from any format."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = _BLANK_LINE.split(text) if _BLANK_LINE.search(text) else text.split("\n")
    return "\n".join(filter(None, (" ".join(paragraph.split()) for paragraph in paragraphs)))


def parse_text(data: bytes, origin: Origin) -> list[Article]:
    """Plain text: the headline on the first line, the rest (deck, then body) is the article."""
    text = decode(data, origin.charset).strip()
    title, _, body = text.partition("\n")
    if not body.strip():
        raise BadInput("only one line: expected a headline line, then the article text")
    return [_article(origin, title, body)]


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
# libyaml's safe loader where the PyYAML wheel has it: 6x faster than the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Front matter is a handful of fields; a cap keeps what YAML builds from it small.
MAX_FRONT_MATTER_BYTES = 64 * 1024


def _front_matter(text: str) -> dict:
    if len(text.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise BadInput(f"YAML front matter over {MAX_FRONT_MATTER_BYTES // 1024} KB")
    try:
        # An alias repeats what its anchor names, and aliases of aliases multiply: a few hundred
        # bytes can build gigabytes. Front matter has no use for them.
        aliased = any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=_YAML_LOADER))
        meta = {} if aliased else yaml.load(text, Loader=_YAML_LOADER) or {}
    except (yaml.YAMLError, ValueError) as error:  # ValueError: a date like 2024-13-45, a 5000-digit number
        raise BadInput(f"malformed YAML front matter: {str(error).splitlines()[0]}") from None
    if aliased:
        raise BadInput("YAML front matter uses aliases (*name), which are not allowed")
    if not isinstance(meta, dict):
        raise BadInput("YAML front matter is not a mapping of fields")
    _check_depth(meta)
    return meta


def parse_markdown(data: bytes, origin: Origin) -> list[Article]:
    """Markdown with optional YAML front matter (title, date, source, url, authors); the text as plain
    text, headings left out (ingest/markdown_text.py), the first `# heading` the title if the front
    matter names none."""
    text = decode(data, origin.charset)
    meta: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        meta = _front_matter(match.group(1))
        text = text[match.end() :]
    heading, text = markdown_text(text)
    return [
        _article(
            origin,
            meta.get("title") or heading,
            text,
            published=meta.get("date") or meta.get("published"),
            source=meta.get("source"),
            url=meta.get("url"),
            authors=meta.get("authors") or meta.get("author"),
        )
    ]


def _page_text(extracted: object) -> str:
    """The main text trafilatura found (a `bare_extraction`, None when it found nothing), one block a
    line, without the page's headings: left out as a Markdown file's are (ingest/markdown_text.py says
    why), so that the story reads the same from a page as from its .txt or .md."""
    from lxml import etree
    from trafilatura.xml import xmltotxt

    if extracted is None or extracted.body is None:
        return ""
    etree.strip_elements(extracted.body, "head", with_tail=False)  # trafilatura's tag of <h1>...<h6>
    return xmltotxt(extracted.body, include_formatting=False)


def parse_html(data: bytes, origin: Origin) -> list[Article]:
    """HTML: the main text by trafilatura, title, date and author from the page's metadata."""
    import trafilatura
    from trafilatura.settings import set_date_params

    html = decode(data, origin.charset)
    extracted = trafilatura.bare_extraction(
        html,
        url=origin.location if origin.is_url else None,
        with_metadata=True,
        include_comments=False,
        favor_precision=True,
        # The date the page declares (meta tags, JSON-LD, <time>, a dated byline), not htmldate's
        # extensive guesses: they dated a page with no date by its footer's "Copyright 2021" as
        # 2021-01-01, a day the same article in any other format would not have.
        date_extraction_params=set_date_params(extensive=False),
    )
    text = _page_text(extracted)
    if not text.strip():
        raise BadInput("no article text found in the page")
    # trafilatura reads the page's own address from og:url, else <link rel=canonical>. A saved page
    # takes it as its URL (a web address only), while its id stays that of its file.
    declared = extracted.url or ""
    url = declared if origin.is_url or declared.startswith(("http://", "https://")) else ""
    return [
        _article(
            origin,
            extracted.title,
            text,
            key="" if origin.is_url else origin.location,
            published=extracted.date,
            source=extracted.sitename or extracted.hostname,
            url=url,
            authors=extracted.author,
        )
    ]


def _record(origin: Origin, record: object, key: str = "") -> Article:
    """One JSON record; `key` tells it apart from the other records of its file when it has no URL."""
    if not isinstance(record, dict):
        raise BadInput("expected an object with title and text")
    _check_depth(record)
    body = record.get("text") or record.get("body") or record.get("content")
    if not body:
        raise BadInput("no 'text' or 'body' field")
    return _article(
        origin,
        record.get("title"),
        body,
        key=str(record.get("url") or key),
        published=record.get("date") or record.get("published"),
        source=record.get("source"),
        url=record.get("url"),
        authors=record.get("authors") or record.get("author"),
    )


def _numbered_record(origin: Origin, record: object, number: int, unit: str) -> Article | Failure:
    try:
        return _record(origin, record, key=f"{origin.location}#{number}")
    except BadInput as error:
        return Failure(f"{origin.location} {unit} {number}", str(error))


def _json(text: str) -> object:
    """The decoded value; JSONDecodeError for bad syntax, BadInput for what the decoder gives up on."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise  # its callers name where, each in its own way
    except RecursionError:  # the decoder recurses once a level: [[[[...]]]] exhausts the stack
        raise BadInput(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise BadInput("malformed JSON: a number too long to read") from None


def parse_json(data: bytes, origin: Origin) -> list[Article | Failure]:
    """A JSON object (one article) or a list of objects."""
    try:
        value = _json(decode(data, origin.charset))
    except json.JSONDecodeError as error:
        raise BadInput(f"malformed JSON: {error}") from None
    if not isinstance(value, list):
        return [_record(origin, value)]
    if not value:
        raise BadInput("an empty list, no records")
    return [_numbered_record(origin, record, n, "record") for n, record in enumerate(value, 1)]


def parse_jsonl(data: bytes, origin: Origin) -> list[Article | Failure]:
    """One JSON object a line; a malformed line is a failure of its own, naming the line."""
    results: list[Article | Failure] = []
    for n, line in enumerate(decode(data, origin.charset).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = _json(line)
        except json.JSONDecodeError as error:
            results.append(Failure(f"{origin.location} line {n}", f"malformed JSON: {error.msg}"))
            continue
        except BadInput as error:
            results.append(Failure(f"{origin.location} line {n}", str(error)))
            continue
        results.append(_numbered_record(origin, record, n, "line"))
    return results


@dataclass(frozen=True)
class Feed:
    title: str
    entries: list[dict]


def parse_feed(data: bytes) -> Feed:
    """An RSS or Atom feed (entries as feedparser dicts); a feed with nothing usable is BadInput."""
    import feedparser

    feed = feedparser.parse(data)
    # A broken feed can still yield entries; keep those that carry anything to index.
    entries = [e for e in feed.entries if e.get("link") or e.get("content") or e.get("summary")]
    if not entries:
        if feed.bozo:
            error = feed.bozo_exception
            line = getattr(error, "getLineNumber", lambda: None)()
            message = getattr(error, "getMessage", lambda: str(error))()
            raise BadInput(f"malformed feed: {message}" + (f" (line {line})" if line else ""))
        raise BadInput("feed has no entries")
    return Feed(title=_line(feed.feed.get("title", "")), entries=entries)


def entry_date(entry: dict) -> date | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return date(*parsed[:3]) if parsed else None


_EMAIL_AUTHOR = re.compile(r"\S+@\S+\s*\((.+)\)")  # RSS's "desk@example.com (Name)"


def article_from_entry(entry: dict, origin: Origin, feed_title: str = "") -> Article:
    """A feed entry's own text, for entries whose page cannot be fetched or that carry the full text.

    `origin` is the entry's page when it has one, else the feed (the entry's id then tells it apart).
    """
    content = entry.get("content") or []
    body = content[0].get("value", "") if content else entry.get("summary", "")
    if "<" in body:
        import trafilatura

        body = _page_text(trafilatura.bare_extraction(f"<html><body><article>{body}</article></body></html>"))
    author = entry.get("author", "")
    named = _EMAIL_AUTHOR.fullmatch(author)
    on_its_page = origin.location == entry.get("link")
    key = "" if on_its_page else f"{origin.location}#{entry.get('id') or entry.get('title', '')}"
    return _article(
        origin,
        entry.get("title"),
        body,
        key=key,
        published=entry_date(entry),
        source=entry.get("source", {}).get("title") or feed_title,
        authors=named.group(1) if named else author,
    )


ParseFn = Callable[[bytes, Origin], list[Article | Failure]]

PARSERS_BY_SUFFIX: dict[str, ParseFn] = {
    ".txt": parse_text,
    ".text": parse_text,
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
    ".json": parse_json,
    ".jsonl": parse_jsonl,
    ".ndjson": parse_jsonl,
}
FEED_SUFFIXES = {".xml", ".rss", ".atom"}

PARSERS_BY_CONTENT_TYPE: dict[str, ParseFn] = {
    "text/html": parse_html,
    "application/xhtml+xml": parse_html,
    "text/plain": parse_text,
    "text/markdown": parse_markdown,
    "application/json": parse_json,
    "application/x-ndjson": parse_jsonl,
    "application/jsonl": parse_jsonl,
}
FEED_CONTENT_TYPES = {"application/rss+xml", "application/atom+xml", "application/xml", "text/xml"}
