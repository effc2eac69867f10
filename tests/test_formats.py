"""Loaders on small fixture files: one per format, one per kind of bad input. No model, no index."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from app.documents import Article
from ingest.formats import (
    MAX_AUTHOR_CHARS,
    MAX_AUTHORS,
    MAX_TITLE_CHARS,
    BadInput,
    Origin,
    decode,
    parse_feed,
    parse_html,
    parse_json,
    parse_jsonl,
    parse_markdown,
    parse_text,
)
from ingest.sources import Failure, Limits, Loader, expand

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTICLES = FIXTURES / "articles"
BAD = FIXTURES / "bad"


def load(path: Path, max_bytes: int = 10**6) -> list:
    with Loader(Limits(max_bytes=max_bytes, timeout=5)) as loader:
        return loader.load(str(path))


def load_one(path: Path):
    [article] = load(path)
    assert not isinstance(article, Failure), article
    return article


def failure_reason(path: Path, **limits) -> str:
    [result] = load(path, **limits)
    assert isinstance(result, Failure), f"{path.name} was accepted: {result}"
    assert "\n" not in result.reason
    return result.reason


def test_plain_text_headline_then_deck_and_body():
    article = load_one(ARTICLES / "harbor_plain.txt")
    assert article.title == "Harbor town votes to rebuild storm-damaged pier"
    assert article.body.startswith("Residents backed a $4 million plan")  # the deck opens the body
    assert article.body.endswith("before the summer ferry season.")
    assert article.published is None
    assert article.file == "harbor_plain.txt"
    assert article.origin == str((ARTICLES / "harbor_plain.txt").resolve())


def test_markdown_front_matter_fields():
    article = load_one(ARTICLES / "orchard_frontmatter.md")
    assert article.title == "Late frost cuts apple harvest in the valley"
    assert article.published == date(2024, 5, 14)
    assert article.source == "Valley Courier"
    assert article.url == "https://courier.example/2024/05/late-frost-apples"
    assert article.authors == ("Maria Chen", "Tom Baptiste")
    assert article.origin == article.url  # the URL, not the file, is what makes it the same article
    assert "---" not in article.body and "title:" not in article.body
    assert article.body.startswith("A late frost on the night of May 9")


def test_markdown_without_front_matter_takes_its_heading():
    [article] = parse_markdown(
        b"# Dam opens\n\nThe new dam opened on Friday. It holds a lake of water.\n", Origin("/x/dam.md")
    )
    assert article.title == "Dam opens"
    assert article.body == "The new dam opened on Friday. It holds a lake of water."


def test_markdown_reaches_the_body_as_plain_text_without_its_headings():
    source = (
        b"---\ntitle: Dam opens\n---\n\n# Dam opens\n\n*The new dam* opened on Friday, [officials](https://x.example/)\n"
        b"said. It holds **a lake** of `water`.\n\n## What comes next\n\n- The road reopens in May.\n"
        b"- Boats follow &amp; fish return.\n\n> It is a great day, the mayor said.\n\n![a dam](dam.jpg)\n"
        b"<div class='ad'>Advert</div>\n\n| Lake | Depth |\n|---|---|\n| North | 12 m |\n"
    )
    [article] = parse_markdown(source, Origin("/x/dam.md"))
    assert article.title == "Dam opens"
    assert article.body.split("\n") == [
        "The new dam opened on Friday, officials said. It holds a lake of water.",  # wrapped lines joined
        "The road reopens in May.",
        "Boats follow & fish return.",
        "It is a great day, the mayor said.",
        "Lake; Depth",
        "North; 12 m",
    ]


def test_a_setext_heading_is_a_title_too():
    [article] = parse_markdown(b"Dam opens\n=========\n\nThe new dam opened on Friday.\n", Origin("/x/dam.md"))
    assert (article.title, article.body) == ("Dam opens", "The new dam opened on Friday.")


def test_html_headings_are_left_out_of_the_body():
    page = (
        b"<html><head><title>Dam opens</title></head><body><article><h1>Dam opens</h1><p>The new dam opened on "
        b"Friday after four years of building, officials said.</p><h2>What comes next</h2><p>The road over it "
        b"reopens in May, and boats follow in June.</p></article></body></html>"
    )
    [article] = parse_html(page, Origin("/x/dam.html"))
    assert "What comes next" not in article.body
    assert article.body.split("\n") == [
        "The new dam opened on Friday after four years of building, officials said.",
        "The road over it reopens in May, and boats follow in June.",
    ]


def test_a_page_without_a_date_is_not_dated_by_its_copyright_line():
    page = (
        b"<html><head><title>Dam opens</title></head><body><article><p>The new dam opened on Friday after four "
        b"years of building, officials said.</p></article><footer>Copyright 2021 Gazette</footer></body></html>"
    )
    [article] = parse_html(page, Origin("/x/dam.html"))
    assert article.published is None


@pytest.mark.parametrize(
    "text",
    [
        "The dam opened on Friday,\nofficials said.\n\nBoats follow\nin June.",  # hard-wrapped, blank-line paragraphs
        "The dam opened on Friday, officials said.\nBoats follow in June.",  # a paragraph a line
        "The dam opened on Friday, officials said.\r\n\r\n\r\nBoats  follow in June.\n",
    ],
)
def test_every_body_is_one_paragraph_a_line(text: str):
    [article] = parse_json(json.dumps({"title": "Dam opens", "text": text}).encode(), Origin("/x/dam.json"))
    assert article.body == "The dam opened on Friday, officials said.\nBoats follow in June."


def test_html_main_text_and_page_metadata():
    article = load_one(ARTICLES / "library_page.html")
    assert article.title == "City library reopens after two-year renovation"
    assert article.published == date(2023, 9, 2)
    assert article.source == "Northfield Gazette"
    assert article.authors == ("Ana Ruiz",)
    assert article.body.startswith("The Northfield central library reopened")  # headline not repeated
    assert "two hours later than before the works." in article.body
    for boilerplate in ("Home", "Sport", "Copyright"):
        assert boilerplate not in article.body


@pytest.mark.parametrize(
    "head, url",
    [
        (
            '<meta property="og:url" content="https://news.example/a/1"><link rel="canonical" href="https://news.example/c">',
            "https://news.example/a/1",
        ),
        ('<link rel="canonical" href="https://news.example/c">', "https://news.example/c"),
        ('<link rel="canonical" href="javascript:alert(1)">', ""),
        ("", ""),
    ],
)
def test_a_saved_page_takes_its_og_url_or_canonical_link_as_its_url(head: str, url: str):
    page = (
        f"<html><head><title>Flood in the old town</title>{head}</head><body><article><p>Flood waters rose "
        "overnight in the old town and many streets were closed to traffic by morning.</p><p>Shelters opened "
        "in three schools.</p></article></body></html>"
    ).encode()
    [article] = parse_html(page, Origin("/news/flood.html"))
    assert article.url == url
    assert article.origin == "/news/flood.html"  # its id stays that of its file


def test_json_list_of_records_with_text_or_body():
    articles = load(ARTICLES / "wire_records.json")
    assert [a.title for a in articles] == [
        "Rail strike halts trains across the north",
        "Museum returns bronze statue to its home village",
    ]
    strike, statue = articles
    assert strike.published == date(2024, 2, 21) and strike.source == "Wire Service"
    assert strike.url == strike.origin == "https://wire.example/rail-strike"
    assert strike.body.startswith("Train drivers") and "services.\nThe union said" in strike.body  # a paragraph a line
    assert statue.body.startswith("A bronze statue")  # from "body", not "text"
    assert {a.file for a in articles} == {"wire_records.json"}


def test_jsonl_records_without_url_are_told_apart_by_line():
    articles = load(ARTICLES / "briefs.jsonl")
    assert [a.title for a in articles] == [
        "Bridge closed for inspection after crack found",
        "School wins national robotics contest",
    ]
    assert [a.published for a in articles] == [date(2024, 6, 6), date(2024, 6, 7)]
    path = str((ARTICLES / "briefs.jsonl").resolve())
    assert [a.origin for a in articles] == [f"{path}#1", f"{path}#2"]
    assert len({a.id for a in articles}) == 2


def test_rss_file_entries_without_links_use_their_own_text():
    articles = load(ARTICLES / "science.rss")
    assert [a.title for a in articles] == [
        "Astronomers find water vapour around distant planet",
        "Glacier melt speeds up in the Alps",
    ]
    planet, glacier = articles
    assert planet.published == date(2024, 3, 12)
    assert planet.source == "Science Desk"  # the feed's title when the entry names no source
    assert planet.authors == ("Irene Volkova",)
    assert planet.url == ""  # a bare guid is not a web address
    assert planet.body.startswith("Astronomers using a space telescope")
    assert "<p>" not in planet.body and "every 33 days." in planet.body
    assert glacier.body.startswith("Alpine glaciers lost four percent")
    feed = str((ARTICLES / "science.rss").resolve())
    assert [a.origin for a in articles] == [f"{feed}#science-desk-1001", f"{feed}#science-desk-1002"]


def test_atom_file_entry():
    [article] = load(ARTICLES / "sport.atom")
    assert article.title == "Underdogs win the cup final on penalties"
    assert article.published == date(2024, 4, 1)
    assert article.authors == ("Kofi Mensah",)
    assert article.source == "Sport Desk"
    assert article.body.startswith("Second-division Riverside won")
    assert "Sam Adeyemi saved two penalties." in article.body


def test_cp1252_text_is_decoded_to_the_right_characters():
    raw = (ARTICLES / "terraces_cp1252.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    article = load_one(ARTICLES / "terraces_cp1252.txt")
    assert article.title == "Café owners fear “new” rules on terraces"
    assert "€5 a day" in article.body
    assert "naïve plan" in article.body and "Hélène Dubois" in article.body and "crêperie" in article.body
    assert "council’s vote" in article.body


@pytest.mark.parametrize(
    "text",
    [
        "Die Bürger äußerten Ärger über die Straße am Montag.",  # identical in several single-byte encodings
        "Les élèves ont été reçus à l'hôtel de ville, où le maire a parlé.",
    ],
)
def test_latin1_text_is_decoded_as_western(text):
    assert decode(text.encode("latin-1")) == text


def test_other_legacy_encodings_still_recognised():
    text = "Президент России заявил, что переговоры продолжатся в Женеве в следующем месяце."
    assert decode(text.encode("cp1251")) == text


def test_declared_charset_wins():
    text = "Zażółć gęślą jaźń: władze w Łodzi ogłosiły nowe przepisy."
    assert decode(text.encode("iso-8859-2"), declared="iso-8859-2") == text


def test_utf8_with_byte_order_mark():
    assert decode("\ufeffHeadline\nBody.".encode()) == "Headline\nBody."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("empty.txt", "empty file"),
        ("blank.md", "empty file"),
        ("photo.txt", "binary file, not text"),
        ("no_text.html", "no article text found in the page"),
        ("malformed.json", "malformed JSON: Unterminated string"),
        ("malformed.rss", "malformed feed: no element found (line 4)"),
    ],
)
def test_bad_input_gets_a_one_line_reason(name, expected):
    assert failure_reason(BAD / name).startswith(expected)


def test_bad_records_fail_alone():
    good, bad = load(BAD / "malformed.jsonl")
    assert good.title == "Good line" and good.body == "This line is fine and has text."
    assert bad == Failure(f"{(BAD / 'malformed.jsonl').resolve()} line 2", "malformed JSON: Expecting value")
    records = parse_json(
        b'[{"title": "Kept", "text": "Kept text."}, {"title": "No text"}, "just a string"]', Origin("/x/records.json")
    )
    assert [r.title if isinstance(r, Article) else r for r in records] == [
        "Kept",
        Failure("/x/records.json record 2", "no 'text' or 'body' field"),
        Failure("/x/records.json record 3", "expected an object with title and text"),
    ]


def test_json_without_records_is_refused():
    with pytest.raises(BadInput, match="^an empty list, no records$"):
        parse_json(b"[]", Origin("/x/none.json"))
    with pytest.raises(BadInput, match="^no 'text' or 'body' field$"):
        parse_json(b'{"title": "Only a title"}', Origin("/x/one.json"))


def test_malformed_html_still_gives_its_text():
    # Unclosed paragraphs, crossed tags and a cut-off closing tag: browsers show the text, so do we.
    article = load_one(BAD / "malformed.html")
    assert article.title == "Ferry service resumes after repairs"
    assert article.body.split("\n") == [
        "The island ferry service resumed on Sunday after three weeks of repairs to its only boat, the operator said.",
        "Passengers had been flown to the mainland on small planes during the repairs, at the county's expense.",
        "Timetables are unchanged for the summer.",
    ]


def test_file_over_the_size_limit_is_refused_before_reading():
    size = (ARTICLES / "harbor_plain.txt").stat().st_size
    reason = failure_reason(ARTICLES / "harbor_plain.txt", max_bytes=size - 1)
    assert reason.startswith("file is 0.0 MB, over the") and "NEWSQA_MAX_FILE_MB" in reason
    assert not isinstance(load(ARTICLES / "harbor_plain.txt", max_bytes=size)[0], Failure)


def test_one_line_text_file_is_refused(tmp_path):
    path = tmp_path / "headline.txt"
    path.write_text("Only a headline here\n")
    assert failure_reason(path) == "only one line: expected a headline line, then the article text"


def test_malformed_front_matter_is_refused():
    with pytest.raises(BadInput, match="^malformed YAML front matter"):
        parse_markdown(b"---\ntitle: [unclosed\n---\nBody text.\n", Origin("/x/a.md"))


def test_unsupported_and_missing_files(tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    assert failure_reason(pdf).startswith("unsupported file type .pdf; supported: ")
    assert expand([str(tmp_path / "nowhere.txt")]) == [
        Failure(str(tmp_path / "nowhere.txt"), "no such file, folder or URL")
    ]


def test_folders_are_read_recursively_skipping_hidden_and_unsupported(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ("a/one.txt", "a/b/two.md", "a/b/notes.pdf", ".git/three.txt", "a/.draft.txt"):
        (tmp_path / name).write_text("x")
    assert expand([str(tmp_path)]) == [str(tmp_path / "a" / "b" / "two.md"), str(tmp_path / "a" / "one.txt")]


def test_text_and_html_without_a_title_take_their_first_line():
    [article] = parse_html(
        b"<html><body><article><p>Flood waters rose overnight in the old town and "
        b"forced two hundred families from their homes, officials said.</p>"
        b"<p>Shelters opened in three schools.</p></article></body></html>",
        Origin("/x/p.html"),
    )
    assert article.title.startswith("Flood waters rose overnight")
    [article] = parse_text(b"Headline\n\n\n\nBody after blank lines.", Origin("/x/t.txt"))
    assert (article.title, article.body) == ("Headline", "Body after blank lines.")


# -- hostile input: each fails alone with its reason, or is cut down to size


def alias_bomb(levels: int = 6, width: int = 9) -> bytes:
    """A few hundred bytes of front matter whose aliases of aliases expand to width**levels items."""
    lines = ["---", "a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * width) + "]" for n in range(1, levels + 1)]
    return "\n".join([*lines, f"title: *a{levels}", "---", "Body text."]).encode() + b"\n"


def test_front_matter_aliases_are_refused():
    bomb = alias_bomb()  # 9**6 items, a title of 3.7 million characters, from 408 bytes
    assert len(bomb) < 500
    with pytest.raises(BadInput, match=r"^YAML front matter uses aliases \(\*name\), which are not allowed$"):
        parse_markdown(bomb, Origin("/x/bomb.md"))
    # One harmless alias is refused too: front matter has no use for them.
    with pytest.raises(BadInput, match="aliases"):
        parse_markdown(b"---\nsource: &s Wire\nauthor: *s\n---\nBody text.\n", Origin("/x/a.md"))
    # An anchor alone repeats nothing.
    [article] = parse_markdown(b"---\ntitle: &t Anchored title\n---\nBody text.\n", Origin("/x/a.md"))
    assert article.title == "Anchored title"


def test_front_matter_over_64_kb_is_refused():
    big = b"---\ntitle: Big\nnotes: " + b"x" * (64 * 1024) + b"\n---\nBody text.\n"
    with pytest.raises(BadInput, match="^YAML front matter over 64 KB$"):
        parse_markdown(big, Origin("/x/big.md"))


def test_front_matter_nested_too_deep_is_refused():
    deep = b"---\ntitle: " + b"[" * 30 + b"x" + b"]" * 30 + b"\n---\nBody text.\n"
    with pytest.raises(BadInput, match="^nested more than 20 levels deep$"):
        parse_markdown(deep, Origin("/x/deep.md"))
    # libyaml's own limit speaks for nesting deeper still, before anything is built.
    deeper = b"---\ntitle: " + b"[" * 30000 + b"]" * 30000 + b"\n---\nBody text.\n"
    with pytest.raises(BadInput, match="^malformed YAML front matter"):
        parse_markdown(deeper, Origin("/x/deeper.md"))


def test_deeply_nested_json_fails_alone():
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(BadInput, match="^nested more than 20 levels deep$"):
        parse_json(deep, Origin("/x/deep.json"))
    # Just inside what the decoder takes: the record is refused before anything walks it.
    nested_title = b'{"title": ' + b"[" * 990 + b"]" * 990 + b', "text": "Body."}'
    with pytest.raises(BadInput, match="^nested more than 20 levels deep$"):
        parse_json(nested_title, Origin("/x/title.json"))
    nested_title = b'{"title": ' + b"[" * 50 + b"]" * 50 + b', "text": "Body."}'
    records = parse_json(b'[{"title": "Kept", "text": "Kept text."}, ' + nested_title + b"]", Origin("/x/r.json"))
    assert [r.title if isinstance(r, Article) else r for r in records] == [
        "Kept",
        Failure("/x/r.json record 2", "nested more than 20 levels deep"),
    ]
    lines = parse_jsonl(
        b'{"title": "Kept", "text": "Kept text."}\n' + deep + b"\n" + nested_title + b"\n", Origin("/x/r.jsonl")
    )
    assert [r.title if isinstance(r, Article) else r for r in lines] == [
        "Kept",
        Failure("/x/r.jsonl line 2", "nested more than 20 levels deep"),
        Failure("/x/r.jsonl line 3", "nested more than 20 levels deep"),
    ]


def test_long_title_is_cut_at_a_word_with_an_ellipsis():
    words = " ".join(f"word{n}" for n in range(1000))
    [article] = parse_json(f'{{"title": "{words}", "text": "Body."}}'.encode(), Origin("/x/a.json"))
    assert len(article.title) <= MAX_TITLE_CHARS and article.title.endswith("\u2026")
    assert words.startswith(article.title[:-1]) and article.title[-2].isdigit()
    [article] = parse_json(b'{"title": "' + b"x" * 10**6 + b'", "text": "Body."}', Origin("/x/b.json"))
    assert article.title == "x" * (MAX_TITLE_CHARS - 1) + "\u2026"
    # A title taken from the text is cut as well, and the text is kept whole.
    [article] = parse_text(b"Headline\n" + b"y" * 10**6, Origin("/x/t.txt"))
    assert article.body == "y" * 10**6


def test_authors_are_capped_in_number_and_length():
    names = [f"Reporter {n}" for n in range(50)] + ["z" * 1000]
    [article] = parse_json(json.dumps({"title": "T", "text": "Body.", "authors": names}).encode(), Origin("/x/a.json"))
    assert article.authors == tuple(names[:MAX_AUTHORS])
    [article] = parse_json(
        json.dumps({"title": "T", "text": "Body.", "author": "z" * 1000 + ", Ana Ruiz"}).encode(), Origin("/x/b.json")
    )
    assert article.authors == ("z" * (MAX_AUTHOR_CHARS - 1) + "\u2026", "Ana Ruiz")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"---\ntitle: T\ndate: 2024-13-45\n---\nBody text.\n", "malformed YAML front matter: month must be in 1..12"),
        (b"---\ntitle: " + b"1" * 5000 + b"\n---\nBody text.\n", "malformed YAML front matter: Exceeds the limit"),
    ],
)
def test_front_matter_values_python_cannot_build_are_refused(data, reason):
    with pytest.raises(BadInput, match=f"^{re.escape(reason)}"):
        parse_markdown(data, Origin("/x/a.md"))


def test_json_number_too_long_to_read_fails_alone():
    long_number = b'{"title": ' + b"1" * 5000 + b', "text": "Body."}'
    with pytest.raises(BadInput, match="^malformed JSON: a number too long to read$"):
        parse_json(long_number, Origin("/x/a.json"))
    assert parse_jsonl(long_number + b"\n", Origin("/x/a.jsonl")) == [
        Failure("/x/a.jsonl line 1", "malformed JSON: a number too long to read")
    ]


def test_lone_surrogates_from_json_escapes_become_replacement_characters():
    # The tokenizer and the index cannot take a string holding half a surrogate pair.
    [article] = parse_json(
        b'{"title": "Smile \\ud83d\\ude00 \\ud800", "text": "Half \\udfff.",'
        b' "url": "https://a.example/\\ud800", "source": "\\udc00", "authors": ["Ana \\ud800"]}',
        Origin("/x/a.json"),
    )
    assert (article.title, article.body, article.source, article.authors) == (
        "Smile \U0001f600 \ufffd",
        "Half \ufffd.",
        "\ufffd",
        ("Ana \ufffd",),
    )
    assert article.url == article.origin == "https://a.example/\ufffd"
    assert article.id and article.content_hash  # both encode the text


# What a terminal would obey: OSC 52 (write the clipboard, ended by BEL), a colour change, a C1 CSI, DEL.
CONTROLS = "\x1b]52;c;aGk=\x07 \x1b[31m\x9b2J\x7f"
# Every control character (C0, DEL, C1) but the line feed a body keeps between its paragraphs.
ANY_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# The same in YAML's escapes.
YAML_CONTROLS = "\\e]52;c;aGk=\\a \\e[31m\\x9b2J\\x7f"
PARAGRAPH = " body, long enough for the page parser to take it as the text of the article."


@pytest.mark.parametrize(
    "parse, data",
    [
        (parse_text, f"Red{CONTROLS}alert\nThe{CONTROLS}{PARAGRAPH}\nA\x0bsecond\x1cline.\n"),
        (
            parse_markdown,
            f'---\ntitle: "Red{YAML_CONTROLS}alert"\nsource: "Wire\\nNews\\e[0m"\n'
            f'authors: ["Ana\\r\\nBell\\e[5m"]\n---\nThe{CONTROLS}{PARAGRAPH}\n\nA\x0bsecond\x1cline.\n',
        ),
        (
            parse_html,
            f"<html><head><title>Red{CONTROLS}alert</title></head><body><article>"
            f"<p>The{CONTROLS}{PARAGRAPH}</p><p>A second line, a paragraph of its own.</p>"
            "</article></body></html>",
        ),
        (
            parse_json,
            json.dumps(
                {
                    "title": f"Red{CONTROLS}alert",
                    "text": f"The{CONTROLS}{PARAGRAPH}\n\nA\x0bsecond\x1cline.",
                    "source": "Wire\nNews\x1b[0m",
                    "authors": ["Ana\r\nBell\x1b[5m"],
                    "url": "https://a.example/x\x1b[0m",
                }
            ),
        ),
    ],
    ids=["text", "markdown", "html", "json"],
)
def test_control_characters_are_dropped_at_parse_time(parse, data):
    """A title, source, author or URL is one line without a control character; the body keeps the
    line breaks between its paragraphs and nothing else, whatever the format."""
    [article] = parse(data.encode("utf-8"), Origin("/x/story"))
    assert article.title == "Red]52;c;aGk= [31m2Jalert"
    assert article.body.startswith("The]52;c;aGk= [31m2J body")
    assert "\nA second line" in article.body  # white-space controls become spaces, not glued words
    fields = [article.title, article.source, article.url, *article.authors]
    assert not [field for field in fields if ANY_CONTROL.search(field) or "\n" in field]
    assert not ANY_CONTROL.search(article.body)
    if parse in (parse_markdown, parse_json):
        assert (article.source, article.authors) == ("Wire News[0m", ("Ana Bell[5m",))


def test_a_feed_title_is_one_line_without_control_characters():
    rss = b"<rss><channel><title>Wire\x1b[31m\n  News</title><item><link>https://a.example/1</link></item></channel></rss>"
    assert parse_feed(rss).title == "Wire[31m News"
