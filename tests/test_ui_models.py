"""The backends and models the page offers, found over real HTTP: a stand-in Ollama (/api/tags) and
OpenAI-compatible server (/v1/models) on 127.0.0.1, and GGUF files in a folder."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.models_available import available, gguf_files
from conftest import send_body

TAGS = {"models": [{"name": "llama3.2:latest"}, {"name": "qwen3:4b"}]}
MODELS = {"object": "list", "data": [{"id": "mistral-small", "object": "model"}, {"id": "gpt-x", "object": "model"}]}


@contextmanager
def model_server(expected_key: str = "") -> Iterator[tuple[str, list[str]]]:
    """Ollama's /api/tags and an OpenAI-compatible /v1/models on one loopback port; the paths asked
    and the Authorization headers seen are recorded."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server name)
            seen.append(f"{self.path} {self.headers.get('Authorization', '')}".strip())
            body = {"/api/tags": TAGS, "/v1/models": MODELS}.get(self.path)
            if body is None or (
                self.path == "/v1/models"
                and expected_key
                and self.headers.get("Authorization") != f"Bearer {expected_key}"
            ):
                self.send_error(404 if body is None else 401)
                return
            send_body(self, json.dumps(body).encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()


def closed_port_url() -> str:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_port
    server.server_close()
    return f"http://127.0.0.1:{port}"


def test_every_reachable_backend_lists_its_models(tmp_path: Path):
    from app.settings import Settings

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("b-tiny.gguf", "A-small.GGUF", "notes.txt"):
        (folder / name).write_bytes(b"GGUF")
    (folder / "sub").mkdir()
    (folder / "sub" / "hidden.gguf").write_bytes(b"GGUF")
    with model_server(expected_key="sk-local") as (url, seen):
        settings = Settings(
            index=tmp_path / "index",
            ollama_url=url,
            openai_base_url=f"{url}/v1",
            openai_api_key="sk-local",
            models_folder=folder,
        )
        found = available(settings, configured="openai:gpt-x")
    assert found.models["extractive"] == [("Extractive (quotes the articles)", "extractive")]
    assert found.models["ollama"] == [("llama3.2:latest", "ollama:llama3.2:latest"), ("qwen3:4b", "ollama:qwen3:4b")]
    assert found.models["openai"] == [("gpt-x", "openai:gpt-x"), ("mistral-small", "openai:mistral-small")]
    assert found.models["llamacpp"] == [
        ("A-small.GGUF", f"llamacpp:{folder / 'A-small.GGUF'}"),
        ("b-tiny.gguf", f"llamacpp:{folder / 'b-tiny.gguf'}"),
    ]
    assert [kind for _, kind in found.kinds()] == ["extractive", "ollama", "openai", "llamacpp"]
    assert sorted(seen) == ["/api/tags", "/v1/models Bearer sk-local"]


def test_unreachable_servers_offer_nothing_but_the_configured_backend_stays(tmp_path: Path):
    from app.settings import Settings

    settings = Settings(
        index=tmp_path / "index",
        ollama_url=closed_port_url(),
        openai_base_url=f"{closed_port_url()}/v1",
        models_folder=tmp_path / "absent",
    )
    found = available(settings, configured="ollama:llama3.2")
    assert found.models["ollama"] == [("llama3.2", "ollama:llama3.2")]  # chosen in NEWSQA_LLM: offered anyway
    assert found.models["openai"] == [] and found.models["llamacpp"] == []
    assert [kind for _, kind in found.kinds()] == ["extractive", "ollama"]
    assert gguf_files(tmp_path / "absent") == []


def test_no_openai_endpoint_is_asked_unless_newsqa_is_configured_for_one(tmp_path: Path, monkeypatch):
    from app.settings import Settings

    with model_server() as (url, seen):
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")  # someone else's setting: not a reason to send
        monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
        found = available(Settings(index=tmp_path / "index", ollama_url=closed_port_url(), models_folder=tmp_path))
    assert found.models["openai"] == [] and seen == []
