"""Shared fixtures: engines over throw-away indexes, built once per test session where read-only."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.documents import Passage
from app.engine import Engine
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = SEEDS / "000_416442306511e572.txt"


def _quail_news() -> Path:
    """The shared quail_news dataset: NEWSQA_QUAIL_DIR, else the shared folder beside the checkout or at
    /work/shared (a clean clone elsewhere, as CI makes, still finds it)."""
    if os.environ.get("NEWSQA_QUAIL_DIR"):
        return Path(os.environ["NEWSQA_QUAIL_DIR"])
    candidates = [ROOT.parent / "shared", Path("/work/shared")]
    found = [c / "datasets" / "quail_news" for c in candidates if (c / "datasets" / "quail_news").is_dir()]
    return found[0] if found else candidates[0] / "datasets" / "quail_news"


QUAIL = _quail_news()
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(command: list[str], env: dict[str, str], ready: str) -> Iterator[str]:
    """`command` started (a server), once it has printed a line holding `ready`: what it printed until
    then. Stopped on leaving."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if ready in line or len(lines) > 200:
                break
        yield "".join(lines)
    finally:
        process.terminate()
        process.wait(timeout=30)


def send_body(handler, data: bytes, content_type: str = "application/json") -> None:
    """A 200 reply carrying `data`, from the request handler of a test's stand-in server."""
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def make_passage(text: str = "text", rank: int = 1, **fields) -> Passage:
    """A passage of `text` whole, ranked `rank`, with the ids, title and score its rank gives; `fields`
    override any of them."""
    values = {
        "chunk_ids": (f"c{rank}",),
        "article_id": f"a{rank}",
        "title": f"Title {rank}",
        "published": None,
        "source": "",
        "url": "",
        "file": "",
        "text": text,
        "start": 0,
        "end": len(text),
        "score": 1.0 / rank,
        "rank": rank,
    }
    return Passage(**{**values, **fields})


def make_settings(index: Path, **overrides) -> Settings:
    return Settings(index=index, **overrides)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """An engine over an empty index of its own; the embedding model is shared (cached per process)."""
    return Engine(make_settings(tmp_path / "index"))


@pytest.fixture(scope="session")
def seed_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine over the seed article; read-only: tests must not add or remove articles."""
    engine = Engine(make_settings(tmp_path_factory.mktemp("seed") / "index"))
    report = engine.add([str(SEEDS)], progress=False)
    assert report.counts()["added"] == 1
    return engine


@pytest.fixture(scope="session")
def quail_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine over the 30 quail_news articles; read-only."""
    if not QUAIL.exists():
        pytest.skip(f"quail_news dataset not found at {QUAIL}")
    engine = Engine(make_settings(tmp_path_factory.mktemp("quail") / "index"))
    engine.add([str(QUAIL / "articles")], progress=False)
    return engine


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF (tests/tiny_gguf.py): real for llama.cpp, gibberish out.
    Tests that run it skip when llama_cpp is not importable."""
    from tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("llm") / "tiny.gguf")
