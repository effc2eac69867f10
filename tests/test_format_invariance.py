"""The same article gives the same Article, and the same answers, whatever its file format.

The seed article (a .txt: headline, deck, one paragraph a line) is written out as a Markdown file
(front matter, hard-wrapped paragraphs, an emphasised deck, a link, bold, subheadings), a saved web
page (nav, <h1>, deck, <h2> subheading, related links, footer, published-time meta) and a JSON
record (paragraphs separated by blank lines). Fast: the four Articles have the same title and body,
and the three formats that can carry a date the same date. Slow: each copy in an index of its own,
every question of the seed eval set gets the same verdict and the same first answer sentence from
each; the answers are compared with each other, not with fixed texts, so that a change of the
answerer changes all alike. A .txt cannot say when it was published, and the date heads every
chunk's embedded text, which moves borderline answers; so the .txt is compared with undated copies,
and the dated copies with each other.
"""

from __future__ import annotations

import html
import json
import textwrap
from datetime import date
from pathlib import Path

import pytest

from app.citations import MARKER
from app.documents import Answer
from app.engine import Engine
from app.sentences import split_sentences
from ingest.sources import Limits, Loader
from tests.conftest import FIXTURES, ROOT, SEED_FILE, SEEDS, make_settings

PUBLISHED = date(2021, 12, 23)
# Subheadings the Markdown and HTML copies put before the paragraphs of these numbers.
SUBHEADINGS = {4: "Demands on NATO", 11: "The Geneva talks"}
SEED_SET = ROOT / "eval" / "datasets" / "seed" / "questions.jsonl"
CASES = [json.loads(line) for line in SEED_SET.read_text().splitlines() if line.strip()]
TALKS = "Where will the talks with the U.S. take place?"
# A second article on the same talks, with a heading that nearly repeats TALKS.
BRIEFING = FIXTURES / "formats" / "geneva_talks_briefing.md"


def _seed_parts() -> tuple[str, str, list[str]]:
    headline, deck, *paragraphs = SEED_FILE.read_text(encoding="utf-8").splitlines()
    return headline, deck, paragraphs


def _markdown(headline: str, deck: str, paragraphs: list[str], dated: bool) -> str:
    lines = ["---", f"title: {json.dumps(headline)}", *([f"date: {PUBLISHED}"] if dated else []), "---", ""]
    lines += [f"*{deck}*", ""]
    for number, paragraph in enumerate(paragraphs):
        if number in SUBHEADINGS:
            lines += [f"## {SUBHEADINGS[number]}", ""]
        paragraph = paragraph.replace("NATO's eastward", "[NATO](https://www.nato.int/)'s eastward", 1)
        paragraph = paragraph.replace("Joe Biden", "**Joe Biden**", 1)
        lines += [textwrap.fill(paragraph, 90), ""]
    return "\n".join(lines)


def _html(headline: str, deck: str, paragraphs: list[str], dated: bool) -> str:
    published = f'<meta property="article:published_time" content="{PUBLISHED}T14:05:00+03:00">' if dated else ""
    body = []
    for number, paragraph in enumerate(paragraphs):
        if number in SUBHEADINGS:
            body.append(f"<h2>{SUBHEADINGS[number]}</h2>")
        body.append(f"<p>{html.escape(paragraph)}</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(headline)} | World Desk</title>
{published}
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li><li><a href="/business">Business</a></li>
<li><a href="/sport">Sport</a></li></ul></nav>
<main><article>
<h1>{html.escape(headline)}</h1>
<p class="deck">{html.escape(deck)}</p>
{chr(10).join(body)}
</article>
<aside><h3>Related</h3><ul><li><a href="/world/1">Ukraine tensions: what we know</a></li>
<li><a href="/world/2">NATO allies meet in Brussels</a></li></ul></aside>
</main>
<footer><p>Copyright 2021 World Desk. All rights reserved.</p><a href="/privacy">Privacy</a>
<a href="/contact">Contact us</a></footer>
</body></html>
"""


def _json(headline: str, deck: str, paragraphs: list[str], dated: bool) -> str:
    record = {"title": headline, "body": "\n\n".join([deck, *paragraphs])}
    return json.dumps(record | ({"published": f"{PUBLISHED}T11:05:00Z"} if dated else {}), indent=2)


WRITERS = {"md": _markdown, "html": _html, "json": _json}


def write_copies(folder: Path, dated: bool) -> dict[str, Path]:
    """The seed article in each format, one file a subfolder: {"txt": path, "md": path, ...}; `dated`:
    the formats that can say when it was published say PUBLISHED."""
    parts = _seed_parts()
    copies = {"txt": SEED_FILE.read_bytes()} | {kind: write(*parts, dated).encode() for kind, write in WRITERS.items()}
    paths = {}
    for kind, data in copies.items():
        path = folder / kind / f"seed.{kind}"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        paths[kind] = path
    return paths


def test_every_format_gives_the_same_title_body_and_date(tmp_path: Path):
    with Loader(Limits(max_bytes=10**6, timeout=5)) as loader:
        articles = {kind: loader.load(str(path)) for kind, path in write_copies(tmp_path, dated=True).items()}
    assert all(len(found) == 1 for found in articles.values()), articles
    text = articles.pop("txt")[0]
    assert text.published is None  # a .txt cannot say when it was published
    assert "#" not in text.body and "*" not in text.body
    for kind, [article] in articles.items():
        assert article.title == text.title, kind
        assert article.body == text.body, kind
        assert article.published == PUBLISHED, kind


def split_sentences_of(answer: Answer) -> list[str]:
    """The sentences of an answer without its markers; none for a refusal."""
    if answer.refused:
        return []
    text = MARKER.sub("", answer.answer).strip()
    return [text[span.start : span.end].strip() for span in split_sentences(text)]


def first_sentence(answer: Answer) -> str:
    """The answer's first sentence; "" for a refusal."""
    return next(iter(split_sentences_of(answer)), "")


def _ask_case(engine: Engine, case: dict) -> list[tuple[bool, str]]:
    """Each turn of a case (a single question is one turn) asked in order with the engine's own
    earlier answers as history: its verdict and first sentence."""
    history: list[tuple[str, str]] = []
    seen = []
    for turn in case.get("turns", [case]):
        answer = engine.ask(turn["question"], history=tuple(history))
        history.append((turn["question"], answer.answer))
        seen.append((answer.refused, first_sentence(answer)))
    return seen


@pytest.fixture(scope="module")
def format_engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Engine]]:
    """An extractive engine over each copy of the seed article, each in an index of its own: the
    undated copies with the .txt, and the dated ones."""
    folder = tmp_path_factory.mktemp("formats")
    groups: dict[str, dict[str, Engine]] = {"undated": {}, "dated": {}}
    for group, engines in groups.items():
        copies = write_copies(folder / group, dated=group == "dated")
        for kind, path in copies.items() if group == "undated" else list(copies.items())[1:]:
            engine = Engine(make_settings(folder / group / f"index-{kind}", llm="extractive"))
            assert engine.add([str(path)], progress=False).counts()["added"] == 1
            engines[kind] = engine
    return groups


@pytest.mark.slow
@pytest.mark.parametrize("group", ["undated", "dated"])
@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_every_format_gets_the_same_answers(format_engines: dict[str, dict[str, Engine]], group: str, case: dict):
    seen = {kind: _ask_case(engine, case) for kind, engine in format_engines[group].items()}
    first_kind, first = next(iter(seen.items()))
    for kind, answers in seen.items():
        assert answers == first, f"{kind} differs from {first_kind}"


@pytest.fixture(scope="module")
def seed_and_briefing(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An extractive engine over the seed article and BRIEFING, a Markdown article on the same talks."""
    engine = Engine(make_settings(tmp_path_factory.mktemp("briefing") / "index", llm="extractive"))
    assert engine.add([str(SEEDS), str(BRIEFING)], progress=False).counts()["added"] == 2
    return engine


@pytest.mark.slow
@pytest.mark.parametrize("question", [TALKS, "What will the talks in Geneva be about?", "Who will lead the talks?"])
def test_no_answer_sentence_is_a_markdown_heading(seed_and_briefing: Engine, question: str):
    headings = {line.lstrip("#").strip() for line in BRIEFING.read_text().splitlines() if line.startswith("#")}
    answer = seed_and_briefing.ask(question)
    sentences = split_sentences_of(answer)
    assert not any(s.startswith("#") or s in headings for s in sentences), sentences
    assert not any(c.sentence.strip() in headings for c in answer.citations)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="once a second article on the talks competes, the extractive answerer answers TALKS with the "
    "briefing's Brussels sentence instead of its 'meet at the U.S. mission in Geneva': not a format "
    "difference, but the answerer's choice of sentence",
)
def test_the_geneva_question_is_still_answered_beside_a_second_article(seed_and_briefing: Engine):
    answer = seed_and_briefing.ask(TALKS)
    assert not answer.refused and "Geneva" in answer.answer
