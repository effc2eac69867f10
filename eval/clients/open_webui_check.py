"""Open WebUI as a client of newsqa's OpenAI-compatible API, checked in a real browser.

It builds a throw-away index from seeds/, serves it with `newsqa chat` behind a login (extractive
answers, so no LLM is needed), and starts Open WebUI offline with one OpenAI connection: newsqa's /v1
with the login as its key. In Chromium it picks the model `newsqa` in Open WebUI, asks a question
and checks that the answer mentions what the article says (Geneva) and that newsqa's sources list is
shown under it; it saves a screenshot and prints a transcript: what was asked, what Open WebUI showed,
and every request newsqa received. `newsqa chat` logs no requests, so Open WebUI's connection goes
through a small relay here that notes each one (path, User-Agent, whether it streams, and the first
line of its last user message, which tells Open WebUI's background tasks from the question) and
passes it on unchanged. Everything it starts is stopped at the end, whatever happened.

    .venv/bin/python -m eval.clients.open_webui_check --open-webui /tmp/owui/bin/open-webui

Exit status 0 when both checks pass, 1 otherwise. Needs Open WebUI installed on its own (in its own
virtual environment), Chromium (/usr/bin/chromium) and Playwright; nothing goes to the network.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEWSQA = ROOT / ".venv" / "bin" / "newsqa"
QUESTION = "Where will the talks with the U.S. take place?"
LOGIN = "ann:s3cret"
VIEWPORT = {"width": 1440, "height": 900}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Relay:
    """An HTTP relay on a free port to `upstream_port` that notes each request it passes on."""

    def __init__(self, upstream_port: int):
        self.requests: list[dict] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.relay()

            def do_POST(self):
                self.relay()

            def relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                relay.note(self.command, self.path, dict(self.headers), body)
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)
                skip = {"host", "connection", "content-length"}
                upstream.request(
                    self.command,
                    self.path,
                    body or None,
                    {k: v for k, v in self.headers.items() if k.lower() not in skip},
                )
                response = upstream.getresponse()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(name, value)
                self.send_header("Connection", "close")  # the body's end is the connection's end
                self.end_headers()
                while part := response.read1(65536):  # a stream is passed on as it comes
                    self.wfile.write(part)
                    self.wfile.flush()
                self.close_connection = True
                upstream.close()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def note(self, method: str, path: str, headers: dict, body: bytes) -> None:
        request = {"method": method, "path": path, "headers": headers, "at": time.monotonic()}
        with contextlib.suppress(ValueError):
            payload = json.loads(body) if body else {}
            users = [m for m in payload.get("messages", []) if m.get("role") == "user"]
            text = users[-1].get("content", "") if users else ""
            text = text if isinstance(text, str) else " ".join(p.get("text", "") for p in text)
            lines = [line for line in text.splitlines() if line.strip()]
            # A task's prompt starts "### Task:" and says what it is on the next line.
            request["asks"] = " ".join(lines[:2]) if lines[:1] == ["### Task:"] else (lines or [""])[0]
            request["stream"] = bool(payload.get("stream"))
            request["fields"] = sorted(set(payload) - {"model", "messages", "stream"})
        self.requests.append(request)

    def quiet_for(self, seconds: float) -> bool:
        return not self.requests or time.monotonic() - self.requests[-1]["at"] > seconds

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(command: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """`command` in a process group of its own (so that stopping it stops its children), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float, key: str = "") -> None:
    """Until `url` answers 200; fails when `process` ends first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args[0]} ended ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        time.sleep(1)
    sys.exit(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def open_webui_env(data: Path, port: int, api: str) -> dict:
    """Open WebUI offline, without accounts, with one OpenAI connection: `api` with newsqa's login;
    otherwise its defaults (its built-in tools offered with every request, its background tasks)."""
    return {
        "DATA_DIR": str(data),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEBUI_AUTH": "False",  # a single user, signed in as admin; no signup needed
        "WEBUI_SECRET_KEY": secrets.token_hex(16),
        "OFFLINE_MODE": "true",  # also HF_HUB_OFFLINE=1 and no version check
        "HF_HUB_OFFLINE": "1",
        "RAG_EMBEDDING_ENGINE": "openai",  # no local embedding model to load (none is cached offline)
        "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "False",
        "ENABLE_OLLAMA_API": "False",
        "OPENAI_API_BASE_URLS": api,
        "OPENAI_API_KEYS": LOGIN,
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
    }


# The chat as Open WebUI keeps it: what its background tasks made of newsqa's replies.
WHAT_TASKS_MADE = """async (id) => {
    const chat = (await (await fetch(`/api/v1/chats/${id}`,
        {headers: {Authorization: `Bearer ${localStorage.token}`}})).json()).chat;
    const last = chat.history.messages[chat.history.currentId];
    return {title: chat.title, tags: chat.tags ?? chat.meta?.tags ?? [], follow_ups: last.followUps ?? [],
            sources: (last.sources ?? []).length};
}"""


def ask_in_browser(url: str, screenshot: Path, relay: Relay, timeout: float) -> tuple[str, dict]:
    """Pick `newsqa`, ask QUESTION, wait for the answer and the background tasks, save `screenshot`;
    the answer's text as shown, and what the tasks made (title, tags, follow-ups)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport=VIEWPORT)
        try:
            page.goto(url, timeout=timeout * 1000)
            with contextlib.suppress(Exception):  # "What's New", on a first visit only
                page.get_by_text("Okay, Let's Go!").click(timeout=5000)
            page.locator("#model-selector-model-button").click()
            page.locator('button[aria-label="Select newsqa model"]').click()
            page.locator("#model-selector-model-button[aria-label='Selected model: newsqa']").wait_for()
            page.locator("#chat-input").click()
            page.keyboard.type(QUESTION)
            page.keyboard.press("Enter")
            message = page.locator(".chat-assistant").last
            # Regenerate is offered once the answer is finished, or has failed.
            page.locator("button[aria-label='Regenerate']").last.wait_for(timeout=timeout * 1000)
            deadline = time.monotonic() + 60
            while not relay.quiet_for(5) and time.monotonic() < deadline:  # title, tags, follow-ups
                page.wait_for_timeout(500)
            page.wait_for_timeout(1000)
            answer = message.locator("#response-content-container")
            shown = answer.inner_text() if answer.count() else message.inner_text()
            return shown, page.evaluate(WHAT_TASKS_MADE, page.url.rsplit("/c/", 1)[-1])
        finally:
            page.screenshot(path=str(screenshot))
            browser.close()


def transcript(answer: str, made: dict, relay: Relay) -> str:
    lines = [f"asked: {QUESTION}", "Open WebUI showed (model newsqa):"]
    lines += [f"    {line}" for line in answer.splitlines() if line.strip()]
    lines.append(f"Open WebUI's own sources for it: {made['sources']} (what its citation chips open)")
    lines.append(f"its tasks made: title {made['title']!r}, tags {made['tags']}, follow-ups {made['follow_ups']}")
    lines.append(f"newsqa received {len(relay.requests)} requests:")
    for (method, path), count in collections.Counter((r["method"], r["path"]) for r in relay.requests).items():
        lines.append(f"    {count} x {method} {path}")
    for agent in sorted({r["headers"].get("User-Agent", "") for r in relay.requests}):
        lines.append(f"    User-Agent: {agent}")
    for request in relay.requests:
        if "asks" in request:
            extra = f" (also {', '.join(request['fields'])})" if request["fields"] else ""
            stream = "stream" if request["stream"] else "plain "
            lines.append(f"    {request['path']} {stream} {request['asks'][:90]!r}{extra}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="open_webui_check")
    parser.add_argument("--open-webui", default="open-webui", help="Open WebUI's command (default: on PATH)")
    parser.add_argument("--screenshot", type=Path, default=Path("/tmp/open_webui_answer.png"), help="where to save it")
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for each server and the answer")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="open-webui-check-") as folder, contextlib.ExitStack() as stack:
        folder = Path(folder)
        index = folder / "index"
        subprocess.run([NEWSQA, "--index", index, "ingest", ROOT / "seeds"], check=True, capture_output=True)

        newsqa_port, webui_port = free_port(), free_port()
        newsqa_log, webui_log = folder / "newsqa.log", folder / "open-webui.log"
        newsqa_env = {"NEWSQA_LLM": "extractive", "NEWSQA_AUTH": LOGIN, "NEWSQA_OPEN_BROWSER": "0"}
        newsqa = start([NEWSQA, "--index", index, "chat", "--port", str(newsqa_port)], newsqa_log, newsqa_env)
        stack.callback(stop, newsqa)
        relay = Relay(newsqa_port)
        stack.callback(relay.close)
        api = f"http://127.0.0.1:{relay.port}/v1"
        env = open_webui_env(folder / "open-webui", webui_port, api)
        webui = start([args.open_webui, "serve", "--host", "127.0.0.1", "--port", str(webui_port)], webui_log, env)
        stack.callback(stop, webui)

        wait_until_up(f"http://127.0.0.1:{newsqa_port}/v1/models", newsqa, newsqa_log, args.timeout, LOGIN)
        wait_until_up(f"http://127.0.0.1:{webui_port}/health", webui, webui_log, args.timeout)
        answer, made = ask_in_browser(f"http://127.0.0.1:{webui_port}/", args.screenshot, relay, args.timeout)

        checks = {
            "the answer mentions Geneva": "Geneva" in answer,
            "its sources list is shown": "Sources" in answer and re.search(r"^\[?1\]? ?\S", answer, re.M) is not None,
            "Open WebUI holds its sources (citation chips)": made["sources"] >= 1,
        }
        print(transcript(answer, made, relay))
        for check, ok in checks.items():
            print(f"{'ok  ' if ok else 'FAIL'} {check}")
        print(f"screenshot: {args.screenshot}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
