"""The API's answers carry no markup from the articles: titles, URLs and quoted sentences holding
links, images or HTML come out, plain or streamed, as text that a Markdown client shows as written,
with the answer's own [n] markers and source links intact. Rendered with a CommonMark renderer that
lets raw HTML through, as a client's renderer does before any sanitizer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from app.engine import Engine
from app.ui import auth, server
from app.ui.api import add_api_routes, completion_events
from app.ui.render import api_markdown
from tests.conftest import free_port, make_settings
from tests.test_api import LOGIN, client

TITLE = "Talks [open](javascript:alert(1)) <b>now</b> \\](javascript:alert(2))"
URL = "https://example.org/talks_(geneva)?a=<b>&c=d e"
BODY_SENTENCE = (
    "The ceasefire talks will take place in Geneva <img src=http://beacon.example/b.png> next week, "
    "officials said ![x](http://beacon.example/i.png) <form action=http://beacon.example><input></form>."
)
QUESTION = "Where will the ceasefire talks take place?"


class Markup(HTMLParser):
    """The elements of an HTML fragment and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def rendered(markdown: str) -> Markup:
    from markdown_it import MarkdownIt

    return Markup(MarkdownIt("commonmark").render(markdown))


@pytest.fixture(scope="module")
def hostile_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API over two articles: a text file whose title and body hold markup, and a Markdown file
    whose title holds a link and whose URL holds `)`, `<` and a space."""
    import gradio as gr

    folder = tmp_path_factory.mktemp("hostile")
    (folder / "talks.txt").write_text(f"{TITLE}\n\n{BODY_SENTENCE}\n\nDelegates arrive on Monday.\n")
    (folder / "summit.md").write_text(
        f"---\ntitle: {json.dumps(TITLE + ' summit')}\ndate: 2024-01-10\nsource: Wire\nurl: {json.dumps(URL)}\n---\n"
        "The summit on the harbour will open in Oslo on Tuesday, its hosts said.\n"
    )
    engine = Engine(make_settings(folder / "index", llm="extractive"))
    engine.add([str(folder / "talks.txt"), str(folder / "summit.md")], progress=False)
    with gr.Blocks() as blocks:
        gr.Markdown("the chat page")
    login = auth.Login(LOGIN)
    url = server.launch(blocks, "127.0.0.1", free_port(), login, max_file_bytes=1000)
    add_api_routes(blocks.server_app, engine, login)
    yield url
    blocks.close()


def completion(url: str, question: str, stream: bool) -> str:
    messages = [{"role": "user", "content": question}]
    if not stream:
        return client(url).chat.completions.create(model="newsqa", messages=messages).choices[0].message.content
    chunks = client(url).chat.completions.create(model="newsqa", messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks)


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_a_quoted_sentence_and_a_title_holding_markup_are_shown_as_written(hostile_api: str, stream: bool):
    page = rendered(completion(hostile_api, QUESTION, stream))
    assert page.tags == [("p", {}), ("p", {}), ("strong", {}), ("p", {})]  # answer, heading, source line
    assert BODY_SENTENCE in page.text and f"[1] {TITLE}" in page.text and "[1]" in page.text.split("Sources")[0]


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_a_title_and_a_url_holding_link_syntax_stay_one_link_to_the_page(hostile_api: str, stream: bool):
    page = rendered(completion(hostile_api, "Where will the summit on the harbour open?", stream))
    links = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert links == ["https://example.org/talks_%28geneva%29?a=%3Cb%3E&c=d%20e"]
    assert f"[1] {TITLE} summit (2024-01-10, Wire)" in page.text
    assert not [tag for tag, _ in page.tags if tag in ("img", "b", "form", "input")]


def test_a_line_that_would_define_a_marker_as_a_link_is_escaped(seed_engine: Engine):
    answer = seed_engine.ask("Where will the talks with the U.S. take place?")
    hostile = replace(answer, answer=answer.answer + "\n\n[1]: http://beacon.example/x")
    page = rendered(api_markdown(hostile))
    assert [attrs for tag, attrs in page.tags if tag == "a"] == []  # the seed has no URL: no link at all
    assert "[1]: http://beacon.example/x" in page.text


def test_streamed_text_is_escaped_as_the_final_text_and_a_marker_cut_in_two_is_sent_once_whole(
    seed_engine: Engine,
):
    """An LLM writes a marker a token at a time ("[", "1", "]"): the half-written marker waits, so
    that what was sent stays the start of the final text and nothing is sent twice."""
    answer = seed_engine.ask("Where will the talks with the U.S. take place?")
    text = "Talks <b>in</b> Geneva [1]. More [x](y) [2"
    answer = replace(answer, answer=text + "].", sentences=())
    partials = [text[:n] for n in range(1, len(text) + 1)]
    events = list(completion_events(iter([*partials, answer]), "newsqa"))
    deltas = [json.loads(e.removeprefix("data: "))["choices"][0]["delta"].get("content") for e in events[:-1]]
    streamed = "".join(d for d in deltas if d)
    assert streamed == api_markdown(answer)
    assert streamed.startswith(r"Talks \<b>in\</b> Geneva [1]. More \[x\]\(y) [2].")
    assert not any("<b>" in d for d in deltas if d)
