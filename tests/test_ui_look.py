"""The chat page as people use it, in headless Chromium: light and dark themes at desktop (1280 px)
and phone (390 px) widths, the contrast of every highlight measured from computed styles, citation
links, an LLM answer's sentence that the articles do not say marked, backend and model pickers fed by
stand-in Ollama and OpenAI-compatible servers on 127.0.0.1, Stop while an answer streams, Regenerate,
a conversation kept across reloads, and a reload after a command-line ingest. Screenshots of each state go to eval/results/screens/ (ignored by git)."""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import SEED_FILE, send_body
from tests.test_ui_browser import ANSWER_MS, CHROMIUM, CHROMIUM_ARGS, SEED_TITLE, ChatServer, ask, screenshot

pytestmark = pytest.mark.slow

WIDTHS = {"desktop": 1280, "phone": 390}
# Words the stand-in LLM writes: "slow-model" one every SLOW_SECONDS (time to press Stop), "quick-model" at once.
WRITTEN = "Putin said any further NATO expansion eastward is unacceptable [1]."
SLOW_WORDS = ("Putin said that the West must move quickly, " * 20).split()
SLOW_SECONDS = 0.3
# What "checked-model" writes: sentences the seed article says, and one it does not (the talks are in Geneva).
FALSE_SENTENCE = "The talks are set to start in Vienna next month."
CHECKED = (
    f"Putin welcomed talks with the U.S. [1]. {FALSE_SENTENCE.removesuffix('.')} [1]. "
    "He warned that Moscow expects the discussion to produce quick results [1]."
)
# WCAG AA for normal text.
AA = 4.5

# The contrast of an element's text on what shows behind it, as the browser composes them: every
# translucent background and every opacity (Gradio's dark theme dims a bot message to 0.8) from the
# root down (white under everything), then WCAG's formula.
CONTRAST_JS = """
(el) => {
  const rgba = (c) => { const v = c.match(/[\\d.]+/g).map(Number); return v.length === 3 ? [...v, 1] : v; };
  const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const chain = [];  // the root first
  for (let node = el; node; node = node.parentElement) chain.unshift(node);
  const render = (i, behind, text) => {
    const style = getComputedStyle(chain[i]);
    const inside = over(rgba(style.backgroundColor), behind);
    const drawn = i < chain.length - 1 ? render(i + 1, inside, text) : text ? over(rgba(style.color), inside) : inside;
    const opacity = parseFloat(style.opacity);
    return drawn.map((c, k) => (k < 3 ? opacity * c + (1 - opacity) * behind[k] : 1));
  };
  const white = [255, 255, 255, 1];
  const back = render(0, white, false), fore = render(0, white, true);
  const lum = (c) => { const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const [hi, lo] = [lum(fore), lum(back)].sort((a, b) => b - a);
  const shown = (c) => `rgb(${c.slice(0, 3).map(Math.round).join(",")})`;
  return {ratio: (hi + 0.05) / (lo + 0.05), text: el.innerText.slice(0, 40), color: shown(fore),
          background: shown(back)};
}
"""


class StandInModels(http.server.BaseHTTPRequestHandler):
    """Ollama's /api/tags, and an OpenAI-compatible /v1/models and /v1/chat/completions (streamed as
    server-sent events, as the openai client asks)."""

    def do_GET(self):  # noqa: N802 (the http.server name)
        body = {
            "/api/tags": {"models": [{"name": "tiny-ollama:latest"}]},
            "/v1/models": {
                "object": "list",
                "data": [{"id": "quick-model"}, {"id": "slow-model"}, {"id": "checked-model"}],
            },
        }.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self._json(body)

    def do_POST(self):  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = request["model"]
        words = {"slow-model": SLOW_WORDS, "checked-model": CHECKED.split()}.get(model, WRITTEN.split())
        if not request.get("stream"):
            self._json(
                {
                    "id": "c",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": " ".join(words)},
                        }
                    ],
                }
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for n, word in enumerate(words):
                self._event(
                    {"delta": {"role": "assistant", "content": ("" if n == 0 else " ") + word}, "finish_reason": None},
                    model,
                )
                if model == "slow-model":
                    time.sleep(SLOW_SECONDS)
            self._event({"delta": {}, "finish_reason": "stop"}, model)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):  # the reader stopped: the answer was stopped
            pass

    def _event(self, choice: dict, model: str) -> None:
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, **choice}],
        }
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()

    def _json(self, body: dict) -> None:
        send_body(self, json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def models() -> Iterator[str]:
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandInModels)
    site.daemon_threads = True
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_port}"
    site.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models: str) -> Iterator[ChatServer]:
    folder = tmp_path_factory.mktemp("models")
    (folder / "tiny-chat.gguf").write_bytes(b"GGUF")  # listed only: never loaded here
    chat = ChatServer(
        tmp_path_factory.mktemp("look") / "index",
        NEWSQA_OLLAMA_URL=models,
        NEWSQA_OPENAI_BASE_URL=f"{models}/v1",
        NEWSQA_OPENAI_API_KEY="unused",
        NEWSQA_MODELS_FOLDER=str(folder),
    )
    ingested = chat.newsqa("ingest", str(SEED_FILE))
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    chat.start()
    assert chat.output[-2].startswith("newsqa chat: ready in ") and chat.output[-1] == f"{chat.url}\n"  # last, alone
    yield chat
    chat.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, url: str, theme: str = "light", width: str = "desktop"):
    context = browser.new_context(viewport={"width": WIDTHS[width], "height": 900}, color_scheme=theme)
    page = context.new_page()
    page.set_default_timeout(ANSWER_MS)
    page.goto(url)
    page.locator("#status").get_by_text("indexed").wait_for()  # the load has read the index
    assert page.evaluate("document.body.classList.contains('dark')") == (theme == "dark")
    return page


def contrasts(page, selector: str) -> list[dict]:
    """The contrast of each visible element `selector` matches."""
    return [
        page.evaluate(CONTRAST_JS, handle) for handle in page.locator(selector).element_handles() if handle.is_visible()
    ]


def assert_readable(page, selector: str) -> list[dict]:
    measured = contrasts(page, selector)
    assert measured, f"nothing visible matches {selector}"
    for found in measured:
        assert found["ratio"] >= AA, found
    return measured


def status_count(page) -> int:
    return int(re.search(r"(\d+) articles? indexed", page.locator("#status").inner_text()).group(1))


def choose_model(page, backend: str, model: str) -> None:
    """Pick a backend, then one of the models the page lists for it (the list follows the backend)."""
    if not page.locator("#backend input").is_visible():
        page.get_by_text("Model, filters and options").click()
    page.locator("#backend input").click()
    page.locator("#backend").get_by_role("option", name=backend, exact=True).click()
    option = page.locator("#model").get_by_role("option", name=model, exact=True)
    for _ in range(20):  # until the model menu holds the backend's models
        page.locator("#model input").click()
        if option.count():
            option.click()
            expect(page.locator("#model input")).to_have_value(model)
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(250)
    pytest.fail(f"{model} is not offered for {backend}")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_answer_sources_and_highlights_read_well(server: ChatServer, browser, theme: str, width: str):
    page = open_page(browser, server.url, theme, width)
    status = page.locator("#status")
    assert status.inner_text().strip() == "extractive · 1 article indexed"
    assert status.bounding_box()["height"] <= 32  # one line
    # No web font: Gradio's bundled one set bold capitals in another face; the system's has every weight.
    assert page.evaluate("[...document.fonts].filter((f) => f.status === 'loaded').map((f) => f.family)") == []
    screenshot(page, f"{theme}-{width}-start")

    ask(page, "What did Putin say about NATO expansion?")
    answer = page.locator("#chat [data-testid=bot]").last
    assert "NATO" in answer.inner_text()
    if width == "phone":  # the sources fold under the answer; the panel beside the chat is gone
        assert not page.locator("#sources-column").is_visible()
        folded = answer.locator("details.nq-inline-sources")
        folded.locator("summary").click()
        assert SEED_TITLE in folded.inner_text()
        source = folded.locator(".nq-source").first
    else:
        assert not answer.locator("details.nq-inline-sources").is_visible()
        source = page.locator("#source-1-1")
        answer.locator("a", has_text="[1]").first.click()  # the source it leads to is highlighted too
        assert page.evaluate("location.hash") == "#source-1-1"
        card = page.evaluate("getComputedStyle(document.querySelector('#source-1-1')).backgroundColor")
        for found in assert_readable(
            page,
            "#source-1-1 .nq-source-title a, #source-1-1 .nq-meta, #source-1-1 .nq-number, #source-1-1 .nq-passage",
        ):
            assert card != "rgba(0, 0, 0, 0)" and found["background"] != "rgb(253,230,138)", found  # on the card
    measured = assert_readable(page, "mark, mark strong")
    print(f"\n{theme} {width}: highlight contrast {min(m['ratio'] for m in measured):.1f}:1")
    assert source.locator(".nq-meta").inner_text().strip() == SEED_FILE.name  # the file's name, no "undated"
    screenshot(page, f"{theme}-{width}-answer")

    link = source.locator(".nq-source-title a")
    assert link.get_attribute("target") == "_blank"
    with page.context.expect_page() as opened:  # a local file opens as the page's copy of its stored text
        link.click()
    article = opened.value
    article.wait_for_load_state()
    assert re.fullmatch(rf"{re.escape(server.url)}article/[0-9a-f]+", article.url)
    text = article.locator("body").inner_text()
    assert text.startswith(SEED_TITLE) and "Vladimir Putin turned up the pressure" in text
    screenshot(article, f"{theme}-{width}-article")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_an_llm_sentence_the_articles_do_not_say_is_marked(server: ChatServer, browser, theme: str, width: str):
    page = open_page(browser, server.url, theme, width)
    choose_model(page, "OpenAI-compatible", "checked-model")
    ask(page, "Where will the talks with the U.S. take place?")
    answer = page.locator("#chat [data-testid=bot]").last
    marks = answer.locator(".nq-unsupported")
    expect(marks).to_have_count(1)
    assert marks.inner_text() == "not found in the articles"
    written = answer.inner_text()
    # The mark follows the false sentence (and its marker), before the next one.
    assert written.index("Vienna next month") < written.index("not found in the articles") < written.index("Moscow")
    assert "1 sentence not found in the articles" in written  # the warning under the answer
    measured = assert_readable(page, "#chat .nq-unsupported")
    worst = min(measured, key=lambda m: m["ratio"])
    print(f"\n{theme} {width}: 'not found' mark {worst['color']} on {worst['background']}, {worst['ratio']:.1f}:1")
    screenshot(page, f"{theme}-{width}-not-found")
    page.context.close()


def test_pick_a_backend_stop_a_stream_and_regenerate(server: ChatServer, browser):
    page = open_page(browser, server.url)
    page.get_by_text("Model, filters and options").click()
    page.locator("#backend input").click()
    page.get_by_role("option", name="Ollama").wait_for()
    offered = page.get_by_role("listbox").inner_text()
    for kind in ("Extractive (quotes the articles)", "Ollama", "OpenAI-compatible", "llama.cpp (GGUF file)"):
        assert kind in offered
    page.get_by_role("option", name="Ollama").click()
    expect(page.locator("#model input")).to_have_value("tiny-ollama:latest")  # what /api/tags listed
    choose_model(page, "llama.cpp (GGUF file)", "tiny-chat.gguf")
    choose_model(page, "OpenAI-compatible", "quick-model")
    screenshot(page, "light-desktop-models")

    ask(page, "What did Putin say about NATO expansion?")
    written = page.locator("#chat [data-testid=bot]").last.inner_text()
    assert "Putin said any further NATO expansion eastward is unacceptable" in written
    assert page.locator("#status").inner_text().startswith("openai:quick-model ·")

    choose_model(page, "OpenAI-compatible", "slow-model")
    page.locator("#question textarea").fill("What does Putin want from the West?")
    page.locator("#ask").click()
    streaming = page.locator("#chat [data-testid=bot]").nth(1)
    page.wait_for_function("document.querySelectorAll('#chat [data-testid=bot]')[1]?.innerText.includes('quickly')")
    assert page.locator("#stop").is_visible() and not page.locator("#ask").is_visible()
    screenshot(page, "light-desktop-streaming")
    page.locator("#stop").click()
    streaming.get_by_text("Stopped.").wait_for()
    stopped = streaming.inner_text()
    assert stopped.startswith("Putin said that the West must move quickly"), stopped  # the text as far as it got
    page.wait_for_timeout(int(SLOW_SECONDS * 4000))
    assert streaming.inner_text() == stopped  # nothing more came
    assert len(stopped.split()) < len(SLOW_WORDS)
    # Ask comes back by a second request after Stop's own: waited for, as a person would see it.
    expect(page.locator("#ask")).to_be_visible()
    expect(page.locator("#stop")).to_be_hidden()
    screenshot(page, "light-desktop-stopped")

    choose_model(page, "Extractive (quotes the articles)", "Extractive (quotes the articles)")
    page.locator("#regenerate").click()  # the last kept answer (the stopped one is not kept), written again
    page.wait_for_function(
        "document.querySelectorAll('#chat [data-testid=bot]').length === 1 && "
        "!document.querySelector('#stop')?.offsetParent"
    )
    page.locator("#sources-1").wait_for()
    page.get_by_text("extractive · 1 article indexed").wait_for()
    assert page.locator("#chat [data-testid=user]").count() == 1
    assert "[1]" in page.locator("#chat [data-testid=bot]").last.inner_text()
    screenshot(page, "light-desktop-regenerated")
    page.context.close()


def test_a_conversation_is_kept_across_reloads_until_a_new_one(server: ChatServer, browser):
    page = open_page(browser, server.url, "dark")
    ask(page, "Where will the talks with the U.S. take place?")
    choose_model(page, "OpenAI-compatible", "quick-model")
    ask(page, "What did Putin say about NATO expansion?")
    page.reload()
    page.locator("#sources-2").wait_for()
    answers = page.locator("#chat [data-testid=bot]")
    assert "Geneva" in answers.first.inner_text() and WRITTEN.removesuffix(" [1].") in answers.last.inner_text()
    questions = page.locator("#chat [data-testid=user]")
    assert questions.first.inner_text() == "Where will the talks with the U.S. take place?"
    page.get_by_text("Model, filters and options").click()
    expect(page.locator("#model input")).to_have_value("quick-model")  # the conversation's model, kept too
    choose_model(page, "Extractive (quotes the articles)", "Extractive (quotes the articles)")
    ask(page, "And what about Geneva?")  # the kept conversation is the follow-up's history
    assert answers.count() == 3 and "Geneva" in page.locator("#sources-3").inner_text()
    screenshot(page, "dark-desktop-kept")
    page.locator("#new-conversation").click()
    page.locator("#chat [data-testid=bot]").first.wait_for(state="detached")
    page.reload()
    page.locator("#status").get_by_text("indexed").wait_for()
    page.wait_for_timeout(1000)
    assert page.locator("#chat [data-testid=bot]").count() == 0
    page.context.close()


def test_a_reload_after_a_command_line_ingest_shows_it(server: ChatServer, browser, tmp_path: Path):
    page = open_page(browser, server.url, "light", "phone")
    before = status_count(page)
    article = tmp_path / "ferry.md"
    article.write_text(
        '---\ntitle: "Galway ferry names Tessa Quinlan captain"\ndate: 2030-05-02\n---\n\n'
        "The Galway ferry named Tessa Quinlan as its new captain on Monday.\n"
    )
    ingested = server.newsqa("ingest", str(article))
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    page.reload()
    page.locator("#status").get_by_text(f"{before + 1} articles indexed").wait_for()
    examples = page.locator("#examples button")
    assert examples.first.inner_text().strip() == "What is the latest on Tessa Quinlan?"  # the newest article first
    screenshot(page, "light-phone-after-ingest")
    page.context.close()


def test_the_article_route_serves_indexed_articles_only_and_behind_the_login(browser, tmp_path: Path):
    login = tmp_path / "login"
    login.write_text("ann:s3cret\n")
    login.chmod(0o600)
    chat = ChatServer(tmp_path / "index", "--auth-file", str(login))
    assert chat.newsqa("ingest", str(SEED_FILE)).returncode == 0
    [article_id] = [line.split()[0] for line in chat.newsqa("list").stdout.splitlines()[1:]]
    chat.start()
    context = browser.new_context()
    try:
        assert context.request.get(f"{chat.url}article/{article_id}").status == 401
        page = context.new_page()
        page.goto(chat.url)
        page.get_by_label("username").fill("ann")
        page.get_by_label("password").fill("s3cret")
        page.get_by_role("button", name="Login").click()
        page.locator("#status").get_by_text("indexed").wait_for()
        served = context.request.get(f"{chat.url}article/{article_id}")
        assert served.status == 200 and served.text().startswith(SEED_TITLE)
        assert served.headers["content-type"].startswith("text/plain")
        assert served.headers["x-content-type-options"] == "nosniff"
        for other in (SEED_FILE.name, str(SEED_FILE), "..%2F..%2F..%2Fetc%2Fpasswd", "0000000000000000"):
            assert context.request.get(f"{chat.url}article/{other}").status == 404, other
    finally:
        context.close()
        chat.stop()
