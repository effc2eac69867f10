"""Chroma server mode, for real: a `chroma run` on loopback, one newsqa process ingesting and
removing with the CLI, another already running and answering from the same collection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, SEED_FILE, free_port

pytestmark = pytest.mark.slow

CHROMA = Path(sys.executable).parent / "chroma"
NEWSQA = Path(sys.executable).parent / "newsqa"
SEEN_WITHIN_SECONDS = 10.0

NEW_ARTICLE = """Lighthouse keepers return to Skerry Point

The lighthouse on Skerry Point will again have resident keepers from next spring, the harbour trust said on Tuesday.
The trust hired two keepers, Ines Valdoro and Pavel Strand, after storms twice knocked out the automatic lamp last winter.
The keepers will live in the restored cottage beside the tower and log the weather every three hours.
"""
QUESTION = "Who are the new lighthouse keepers on Skerry Point?"

# The process that is already running when the other one writes: an Engine against the server,
# answering each question read on stdin with one JSON line (hybrid answer's cited files, and the
# files BM25 alone retrieves, so the lexical side is checked on its own).
READER = textwrap.dedent("""
    import json, sys
    from app.engine import Engine
    engine = Engine()
    print(json.dumps({"ready": engine.index.count()}), flush=True)
    for line in sys.stdin:
        answer = engine.ask(line.strip())
        lexical = engine.retriever.retrieve(line.strip(), mode="lexical")
        print(json.dumps({"cited": [c.file for c in answer.citations],
                          "lexical": [p.file for p in lexical]}), flush=True)
""")


@pytest.fixture
def chroma_url(tmp_path: Path):
    port = free_port()
    server = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "chroma run exited"
            assert time.monotonic() < deadline, "chroma run did not answer within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def environment(url: str, index: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        NEWSQA_CHROMA_URL=url,
        NEWSQA_INDEX=str(index),
        NEWSQA_LLM="extractive",
        NEWSQA_COLLECTION="server-test",
    )
    env["PYTHONPATH"] = str(ROOT)
    return env


def newsqa(url: str, index: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(NEWSQA), *args], env=environment(url, index), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done


class Reader:
    def __init__(self, url: str, index: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", READER],
            env=environment(url, index),
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ready = json.loads(self.process.stdout.readline())

    def ask(self, question: str) -> dict:
        self.process.stdin.write(question + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the reader process ended"
        return json.loads(line)

    def seconds_until(self, condition) -> float:
        """Ask until the reply meets `condition`; the seconds it took (fails past the limit)."""
        started = time.monotonic()
        while not condition(reply := self.ask(QUESTION)):
            assert time.monotonic() - started < SEEN_WITHIN_SECONDS, f"still {reply} after {SEEN_WITHIN_SECONDS} s"
            time.sleep(0.2)
        return time.monotonic() - started

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def test_two_processes_share_one_chroma_server(chroma_url: str, tmp_path: Path):
    writer_index, reader_index = tmp_path / "writer", tmp_path / "reader"  # each its own lexical cache
    newsqa(chroma_url, writer_index, "ingest", str(SEED_FILE))
    article = tmp_path / "articles" / "skerry-point.txt"
    article.parent.mkdir()
    article.write_text(NEW_ARTICLE, encoding="utf-8")

    reader = Reader(chroma_url, reader_index)
    try:
        assert reader.ready["ready"] > 0  # the seed article's chunks, read through the server
        before = reader.ask(QUESTION)
        assert article.name not in before["cited"] + before["lexical"]

        newsqa(chroma_url, writer_index, "ingest", str(article))
        added = reader.seconds_until(lambda r: article.name in r["cited"] and article.name in r["lexical"])

        listed = json.loads(newsqa(chroma_url, reader_index, "list", "--json").stdout)
        assert article.name in {a["file"] for a in listed}

        newsqa(chroma_url, writer_index, "remove", article.name)
        removed = reader.seconds_until(lambda r: article.name not in r["cited"] + r["lexical"])
    finally:
        reader.close()
    print(f"reader saw the new article after {added:.1f} s and its removal after {removed:.1f} s")
    # The embedded store is never created when a server is used.
    assert not (reader_index / "chroma").exists() and not (writer_index / "chroma").exists()
