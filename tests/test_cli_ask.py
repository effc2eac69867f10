"""`newsqa ask` run as a user runs it, in a subprocess, over the seed index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine import Engine
from tests.conftest import SEED_FILE

_SCRIPT = shutil.which("newsqa", path=str(Path(sys.executable).parent))
NEWSQA = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "app.cli"]


def newsqa(tmp_path: Path, *args: str, index: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    # The user's own config file and backend settings stay out of the test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    index_args = ["--index", str(index or tmp_path / "index")]
    return subprocess.run([*NEWSQA, *index_args, "ask", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow
def test_ask_json_answers_geneva_citing_the_seed_article(seed_engine: Engine, tmp_path: Path):
    done = newsqa(tmp_path, "--llm", "extractive", "--json", "Where will the talks with the U.S. take place?",
                  index=seed_engine.settings.index)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert not answer["refused"]
    assert "Geneva" in answer["answer"]
    assert answer["backend"] == "extractive"
    assert [c["file"] for c in answer["citations"]] == [SEED_FILE.name]
    citation = answer["citations"][0]
    assert "Geneva" in citation["sentence"]
    assert citation["passage"][citation["sentence_start"]:citation["sentence_end"]] == citation["sentence"]
    assert set(answer["timings"]) >= {"retrieve", "generate", "total"}


@pytest.mark.slow
def test_ask_json_refuses_an_unrelated_question(seed_engine: Engine, tmp_path: Path):
    done = newsqa(tmp_path, "--llm", "extractive", "--json", "What is the capital of Peru?",
                  index=seed_engine.settings.index)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["refused"]
    assert answer["citations"] == []


@pytest.mark.slow
def test_interactive_ask_keeps_the_conversation_for_follow_ups(seed_engine: Engine, tmp_path: Path):
    done = newsqa(tmp_path, "--llm", "extractive", index=seed_engine.settings.index,
                  stdin="Who is Andrew Rasiulis?\nWhat does he think Russia's strategy is?\n")
    assert done.returncode == 0, done.stderr
    assert "Canadian Global Affairs Institute" in done.stdout
    assert "bleed concessions" in done.stdout
    assert done.stdout.count("Sources:") == 2
    assert "; read as: What does Andrew Rasiulis think Russia's strategy is?)" in done.stdout


def test_a_bad_date_is_a_one_line_error(tmp_path: Path):
    done = newsqa(tmp_path, "--as-of", "2021-02-30", "When?")
    assert done.returncode == 2
    assert "argument --as-of: not a date (YYYY-MM-DD): '2021-02-30'" in done.stderr
    assert "Traceback" not in done.stderr


def test_since_after_until_is_refused(tmp_path: Path):
    done = newsqa(tmp_path, "--since", "2021-12-31", "--until", "2021-01-01", "When?")
    assert done.returncode == 2
    assert done.stderr.strip() == "newsqa: --since 2021-12-31 is after --until 2021-01-01"


def test_an_unknown_backend_is_a_one_line_error(tmp_path: Path):
    done = newsqa(tmp_path, "--llm", "bogus", "When?")
    assert done.returncode == 2
    assert done.stderr.startswith("newsqa: unknown LLM backend 'bogus'")
    assert "Traceback" not in done.stderr
