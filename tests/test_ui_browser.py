"""The chat page for real: `newsqa chat` in a subprocess over a throw-away index holding the seed
article, driven by headless Chromium (Playwright) and by gradio_client. Screenshots go to
eval/results/screens/ (ignored by git)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AuthenticationError
from playwright.sync_api import sync_playwright

from tests.conftest import ROOT, SEED_FILE, free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "eval" / "results" / "screens"
SEED_TITLE = "Russia urges West to move quickly to guarantee Ukraine won't join NATO"
UPLOAD_TITLE = "Drillers reach Lake Vostok water"
UPLOAD = f"""---
title: "{UPLOAD_TITLE}"
date: 2024-05-02
source: "Polar Wire"
---

A Russian drilling team at Vostok Station reached the water of the subglacial lake on Thursday, after boring through 3,769 metres of Antarctic ice.

The team leader, Nadia Orlova, said the first water sample would be flown to Saint Petersburg in December.
"""
STARTUP_SECONDS = 300  # a cold model load on a busy two-core machine
ANSWER_MS = 120_000


def serve_folder(folder: Path) -> http.server.ThreadingHTTPServer:
    """A web site of `folder`'s files on 127.0.0.1, served in a thread until shut down."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    return site


class ChatServer:
    """`newsqa chat` in a subprocess; its output is drained in a thread and kept for failure messages."""

    def __init__(self, index: Path, *args: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {
            **os.environ,
            "NEWSQA_INDEX": str(index),
            "NEWSQA_LLM": "extractive",
            "NEWSQA_CONFIG": str(index / "no-config.toml"),
            "NEWSQA_OPEN_BROWSER": "0",
            **env,
        }
        self.args = args
        self.output: list[str] = []

    def newsqa(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env={**self.env, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
        )

    def start(self) -> float:
        """Start and wait until the page is served; the seconds that took."""
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "chat", "--port", str(self.port), *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()

        def drain() -> None:
            for line in self.process.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put("")

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith("http"):  # the page's address, alone on the last line
                return time.perf_counter() - started
            if line == "":
                break
        self.stop()
        pytest.fail("newsqa chat did not start:\n" + "".join(self.output))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    # The test web sites are served on 127.0.0.1, an address the page refuses to fetch unless allowed.
    chat = ChatServer(tmp_path_factory.mktemp("chat") / "index", NEWSQA_ALLOW_PRIVATE_URLS="1")
    ingested = chat.newsqa("ingest", str(SEED_FILE))
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    seconds = chat.start()
    print(f"\nnewsqa chat served its page {seconds:.1f} s after start (index built)")
    yield chat
    chat.stop()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(ANSWER_MS)
    yield page
    screenshot(page, f"{request.node.name}-end")
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def ask(page, question: str) -> None:
    answers = page.locator("#chat [data-testid=bot]").count()
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.locator("#chat [data-testid=bot]").nth(answers).wait_for()
    # The answer is finished when its sources are in the panel.
    page.locator(f"#sources-{answers + 1}").wait_for(state="attached")  # hidden beside the chat on a phone


def set_date(page, control: str, day: str) -> None:
    page.locator(f"{control} input").first.fill(day)
    page.locator(f"{control} input").first.press("Enter")


def choose(page, control: str, option: str) -> None:
    page.locator(f"{control} input").click()
    page.get_by_role("option", name=option).click()


def open_library(page) -> None:
    page.get_by_role("tab", name="Library").click()
    page.locator("#articles").wait_for()


def test_ask_about_the_seed_article(server: ChatServer, page):
    hosts = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.goto(server.url)
    status = page.locator("#status")
    page.get_by_text("1 article indexed").wait_for()  # filled in by the page's load
    assert status.inner_text().strip() == "extractive · 1 article indexed"

    page.locator("#ask").click()  # an empty question does nothing
    page.locator("#chat .progress-text").wait_for(state="detached")  # the event is over
    assert page.locator("#chat [data-testid=user]").count() == 0

    ask(page, "What did Putin say about NATO expansion?")
    answer = page.locator("#chat [data-testid=bot]").last
    assert "NATO" in answer.inner_text()
    source = page.locator("#source-1-1")
    assert SEED_TITLE in source.inner_text()
    assert page.locator("#source-1-1 mark").inner_text().strip()  # the supporting sentence is highlighted
    screenshot(page, "chat-answer")

    answer.locator("a", has_text="[1]").first.click()  # a marker leads to its source
    assert page.evaluate("location.hash") == "#source-1-1"

    ask(page, "And what about Geneva?")  # a follow-up: a second answer with its own sources
    assert page.locator("#chat [data-testid=bot]").count() == 2
    assert "Geneva" in page.locator("#sources-2").inner_text()

    page.locator("#new-conversation").click()
    page.locator("#chat [data-testid=bot]").first.wait_for(state="detached")
    assert "Sources of each answer appear here" in page.locator("#sources").inner_text()

    example = page.locator("#examples button").first  # drawn from the indexed titles; a click asks it
    assert example.inner_text().strip() == "What is the latest on West, Ukraine and NATO?"
    example.click()
    page.locator("#sources-1").wait_for()
    assert SEED_TITLE in page.locator("#sources-1").inner_text()
    assert hosts == {f"127.0.0.1:{server.port}"}  # nothing fetched from elsewhere: fonts, scripts, analytics


def test_upload_ask_and_delete_an_article(server: ChatServer, page, tmp_path: Path):
    upload = tmp_path / "vostok.md"
    upload.write_text(UPLOAD)
    page.goto(server.url)
    open_library(page)
    page.locator("#upload input[type=file]").set_input_files(upload)
    page.locator("#add-files").click()
    report = page.locator("#report textarea")
    page.wait_for_function("document.querySelector('#report textarea').value.includes('added')")
    assert report.input_value().startswith("1 added")
    page.locator("#articles").get_by_text(UPLOAD_TITLE).wait_for()
    screenshot(page, "library-added")

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How thick was the ice the Vostok drillers bored through?")
    assert "3,769" in page.locator("#chat [data-testid=bot]").last.inner_text()
    assert UPLOAD_TITLE in page.locator("#sources-1").inner_text()

    page.get_by_text("Filters and options").click()
    set_date(page, "#as-of", "2024-05-01")  # the day before it was published: out of reach
    ask(page, "How thick was the ice the Vostok drillers bored through?")
    assert UPLOAD_TITLE not in page.locator("#sources-2").inner_text()
    set_date(page, "#as-of", "")
    choose(page, "#source-filter", "Polar Wire")
    ask(page, "What did Putin say about NATO expansion?")
    assert SEED_TITLE not in page.locator("#sources-3").inner_text()
    choose(page, "#source-filter", "All sources")

    open_library(page)
    page.locator("#articles").get_by_text(UPLOAD_TITLE).click()  # choosing a row picks it for deletion
    page.locator("#delete").click()
    page.wait_for_function("document.querySelector('#report textarea').value.startsWith('Deleted')")
    assert report.input_value() == f"Deleted: {UPLOAD_TITLE}"
    page.locator("#articles").get_by_text(UPLOAD_TITLE).wait_for(state="detached")
    assert SEED_TITLE in page.locator("#articles").inner_text()

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How thick was the ice the Vostok drillers bored through?")
    assert UPLOAD_TITLE not in page.locator("#sources-4").inner_text()


def test_ask_endpoint_through_gradio_client(server: ChatServer):
    result = Client(server.url, verbose=False).predict("What did Putin say about NATO expansion?", api_name="/ask")
    answer, sources = result.split("\n\n**Sources**\n\n")
    assert "NATO" in answer and "[1]" in answer
    assert sources.startswith(f"[1] {SEED_TITLE}")


def test_login_failing_llm_and_upload_limit(tmp_path: Path, page):
    """A login from a file; an LLM server that does not answer (nothing listens on its port); a tiny upload limit."""
    login = tmp_path / "login"
    login.write_text("ann:s3cret\n")
    login.chmod(0o600)
    chat = ChatServer(
        tmp_path / "index",
        "--auth-file",
        str(login),
        NEWSQA_MAX_FILE_MB="0.001",
        NEWSQA_LLM="openai:some-model",
        NEWSQA_OPENAI_API_KEY="unused",
        NEWSQA_OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
    )
    ingested = chat.newsqa("ingest", str(SEED_FILE), NEWSQA_MAX_FILE_MB="20")
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    chat.start()
    try:
        with pytest.raises(AuthenticationError):
            Client(chat.url, verbose=False)
        assert "NATO" in Client(chat.url, auth=("ann", "s3cret"), verbose=False).predict(
            "What did Putin say about NATO expansion?", api_name="/ask"
        )

        page.goto(chat.url)
        page.get_by_label("username").fill("ann")
        page.get_by_label("password").fill("s3cret")
        page.get_by_role("button", name="Login").click()
        page.locator("#status").get_by_text("openai:some-model").wait_for()  # the load fills it in
        ask(page, "What did Putin say about NATO expansion?")
        answer = page.locator("#chat [data-testid=bot]").last.inner_text()
        assert "NATO" in answer and "The LLM could not answer: openai:some-model" in answer
        assert "fallback" in page.locator("#status").inner_text()
        assert SEED_TITLE in page.locator("#source-1-1").inner_text()
        screenshot(page, "llm-fallback")

        open_library(page)
        big = tmp_path / "big.txt"
        big.write_text("A headline\n" + "words " * 1000)
        page.locator("#upload input[type=file]").set_input_files(big)
        page.get_by_text("maximum", exact=False).first.wait_for()
        screenshot(page, "upload-too-big")
    finally:
        chat.stop()


def test_paste_and_url_add_articles(server: ChatServer, page, tmp_path: Path):
    (tmp_path / "heron.txt").write_text(
        "Herons return to the Thames marshes\n"
        "Grey herons nested at Rainham Marshes this spring for the first time in forty years.\n"
    )
    with serve_folder(tmp_path) as site:
        page.goto(server.url)
        open_library(page)
        page.get_by_role("tab", name="From URL or feed").click()
        page.locator("#urls textarea").fill(f"http://127.0.0.1:{site.server_port}/heron.txt\n/etc/hostname")
        page.locator("#add-urls").click()
        page.wait_for_function("document.querySelector('#report textarea').value.includes('added')")
        site.shutdown()
    report = page.locator("#report textarea").input_value()
    assert report.startswith("1 added") and "not a http(s) URL: /etc/hostname" in report
    page.locator("#articles").get_by_text("Herons return to the Thames marshes").wait_for()

    page.get_by_role("tab", name="Paste text").click()
    page.locator("#paste-title textarea").fill("Tram line opens in Galway")
    page.locator("#paste-text textarea").fill("Galway's first tram line opened on Monday with eleven stops.")
    page.locator("#add-text").click()
    page.wait_for_function("document.querySelector('#report textarea').value.startsWith('1 added')")
    page.locator("#articles").get_by_text("Tram line opens in Galway").wait_for()

    page.locator("#search textarea").fill("galway")
    page.locator("#articles").get_by_text("Herons return").wait_for(state="detached")
    assert "Tram line opens in Galway" in page.locator("#articles").inner_text()
    screenshot(page, "library-search")

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How many stops does the Galway tram line have?")
    assert "eleven stops" in page.locator("#chat [data-testid=bot]").last.inner_text()


def test_library_endpoints_through_gradio_client(server: ChatServer, tmp_path: Path):
    client = Client(server.url, verbose=False)
    question = "Where were the otters seen?"
    (tmp_path / "otters.txt").write_text(
        "Otters return to the River Tyne\n"
        "Otters were seen under the Swing Bridge in Newcastle for the first time "
        "in a century.\n"
    )
    with serve_folder(tmp_path) as site:
        url = f"http://127.0.0.1:{site.server_port}/otters.txt"
        report = client.predict(f"{url}\n/etc/hostname", api_name="/add_urls")
        site.shutdown()
    assert report.startswith("1 added") and "not a http(s) URL: /etc/hostname" in report
    assert "Otters return to the River Tyne" in client.predict(question, api_name="/ask")

    assert client.predict(url, api_name="/delete") == "Deleted: Otters return to the River Tyne"
    assert client.predict(url, api_name="/delete") == f"Not found: {url}"
    assert "Otters return to the River Tyne" not in client.predict(question, api_name="/ask")

    # Two people's report.txt: two articles, each kept under its name and the hash of its text.
    reports = {
        "ann": b"Bridge repairs finish early\nThe Swing Bridge reopened to traffic on Friday.\n",
        "bob": b"Ferry timetable changes\nThe Tyne ferry runs every half hour from June.\n",
    }
    for who, text in reports.items():
        upload = tmp_path / who / "report.txt"
        upload.parent.mkdir()
        upload.write_bytes(text)
        assert client.predict([handle_file(str(upload))], api_name="/upload").startswith("1 added")
    for text, title in zip(reports.values(), ["Bridge repairs finish early", "Ferry timetable changes"]):
        copy = f"report-{hashlib.sha256(text).hexdigest()[:12]}.txt"
        assert client.predict(copy, api_name="/delete") == f"Deleted: {title}"


def test_eight_askers_while_a_command_line_ingest_runs(tmp_path: Path):
    """Readers never wait for the writer: eight gradio_client callers ask through the page while
    `newsqa ingest` adds articles to the same index, and the new article is answerable at once."""
    chat = ChatServer(tmp_path / "index")
    assert chat.newsqa("ingest", str(SEED_FILE)).returncode == 0
    chat.start()
    new = tmp_path / "new"
    new.mkdir()
    for n in range(30):
        (new / f"harbor-{n:02}.md").write_text(
            f'---\ntitle: "Harbor report {n}"\ndate: 2024-05-{n % 28 + 1:02}\n---\n\n'
            + " ".join(f"Harbor crews logged {n * 7 + k} crossings of the ferry on day {k}." for k in range(40))
            + "\n"
        )
    (new / "captain.md").write_text(
        '---\ntitle: "Ferry names a new captain"\n---\n\n'
        "The Marigold ferry named Tessa Quinlan as its new captain on Monday.\n"
    )
    try:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "ingest", str(new)],
            env=chat.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        latencies: list[float] = []
        errors: list[str] = []

        def ask_while_ingesting() -> None:
            client = Client(chat.url, verbose=False)
            while ingest.poll() is None:
                started = time.perf_counter()
                try:
                    answer = client.predict("Where will the talks with the U.S. take place?", api_name="/ask")
                except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                    errors.append(repr(error))
                    continue
                latencies.append(time.perf_counter() - started)
                if "Geneva" not in answer:
                    errors.append(f"wrong answer: {answer[:200]}")

        askers = [threading.Thread(target=ask_while_ingesting) for _ in range(8)]
        for asker in askers:
            asker.start()
        output, _ = ingest.communicate(timeout=STARTUP_SECONDS)
        for asker in askers:
            asker.join(timeout=ANSWER_MS / 1000)
        assert ingest.returncode == 0, output
        assert not errors, errors[:3]
        assert latencies, "no question was answered while the ingest ran"
        ordered = sorted(latencies)
        print(
            f"\n8 askers during the ingest: {len(ordered)} answers, 0 errors, p50 {ordered[len(ordered) // 2]:.2f} s, "
            f"p95 {ordered[int(len(ordered) * 0.95)]:.2f} s"
        )
        # Written by another process, answerable without a restart.
        assert "Tessa Quinlan" in Client(chat.url, verbose=False).predict(
            "Who is the new captain of the Marigold ferry?", api_name="/ask"
        )
    finally:
        chat.stop()


class Beacon(http.server.BaseHTTPRequestHandler):
    """A server elsewhere (another port) that notes every path asked of it: a tracking beacon."""

    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the handler's name is http.server's)
        self.asked.append(self.path)
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


def test_article_markup_in_a_cited_answer_is_shown_as_text(server: ChatServer, page):
    """An article holding a beacon (an HTML and a Markdown image), an overlay over the whole page and a
    fake login: cited, its sentence shows them as text, before and after a reload, and nothing is
    fetched from the beacon's server."""
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Beacon) as beacon:
        threading.Thread(target=beacon.serve_forever, daemon=True).start()
        elsewhere = f"http://127.0.0.1:{beacon.server_port}"
        pieces = [
            f'<img src="{elsewhere}/html.png">',
            f"![x]({elsewhere}/markdown.png)",
            '<div style="position:fixed;inset:0;z-index:99999">covered</div>',
            f'<form action="{elsewhere}/login"><input type="password" name="pw"></form>',
        ]
        text = f"Keeper Mara Quill lit the Skerry lamp {' '.join(pieces)} at dusk on Sunday.\nThe lamp burns oil."
        report = Client(server.url, verbose=False).predict("Skerry lamp lit again", text, api_name="/add_text")
        assert report.startswith("1 added"), report
        hosts = set()
        page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
        page.goto(server.url)
        page.get_by_text("articles indexed").wait_for()
        ask(page, "When did keeper Mara Quill light the Skerry lamp?")
        for shown in ("answered", "reloaded"):
            answer = page.locator("#chat [data-testid=bot]").last
            written = answer.inner_text()
            assert all(piece in written for piece in pieces), (shown, written)  # cited, and shown as written
            found = page.evaluate(
                """() => ({
                    tags: [...document.querySelectorAll('#chat img, #chat form, #chat input')].map(e => e.outerHTML),
                    styled: [...document.querySelectorAll('#chat [data-testid=bot] [style]')].map(e => e.outerHTML),
                    fixed: [...document.querySelectorAll('body *')].filter(
                        e => getComputedStyle(e).position === 'fixed' && e.textContent.includes('covered')).length,
                })"""
            )
            assert found == {"tags": [], "styled": [], "fixed": 0}, shown
            if shown == "answered":
                page.reload()
                page.get_by_text("articles indexed").wait_for()
                page.locator("#chat [data-testid=bot]").last.wait_for()
        page.locator("#sources-1").wait_for(state="attached")
        assert Beacon.asked == [] and hosts == {f"127.0.0.1:{server.port}"}
        # The beacon does note what a page fetches from it: the assertion above could fail.
        page.evaluate(
            f"new Promise(done => {{ const image = new Image(); image.onload = image.onerror = done; "
            f"image.src = '{elsewhere}/control.png'; }})"
        )
        assert Beacon.asked == ["/control.png"]


def test_an_answer_shows_money_and_addresses_as_written_and_copies_without_backslashes(server: ChatServer, page):
    """Dollar amounts are not LaTeX (nor $$...$$, Gradio's default), a bare address is no link, and
    the copy button gives the answer's sentence as the article wrote it, but for the addresses'
    escapes."""
    sentence = (
        "Warden Ilse Brannock said U.S. ferry tickets cost $5 and $10, 3.5% (up from 2.1%) - Jan. 10, "
        "with the fare sign reading $$x^2$$ and details at www.ferries.example/fares or https://ferries.example."
    )
    report = Client(server.url, verbose=False).predict("Ferry fares", sentence, api_name="/add_text")
    assert report.startswith("1 added"), report
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(server.url)
    page.get_by_text("articles indexed").wait_for()
    ask(page, "What did warden Ilse Brannock say ferry tickets cost?")
    answer = page.locator("#chat [data-testid=bot]").last
    assert sentence in answer.inner_text()
    found = answer.evaluate(
        """(message) => ({
            latex: message.querySelectorAll('.katex, .latex-block, math').length,
            links: [...message.querySelectorAll('a')].filter(a => !a.closest('.nq-inline-sources'))
                .map(a => a.getAttribute('href')).filter(href => !href.startsWith('#source-')),
        })"""
    )
    assert found == {"latex": 0, "links": []}
    answer.hover()
    page.locator("#chat button[aria-label='Copy message']").last.click()
    copied = page.evaluate("navigator.clipboard.readText()")  # the message's Markdown
    quoted = copied.split(" [[1]]")[0].replace("**", "")  # less the answer's marker and bold phrase
    assert quoted == sentence.replace("www.", "www\\.").replace("://", ":/\\/"), copied  # unlinked, no more
