"""Hostile files among good ones, through `newsqa ingest` as a user runs it: every bad file or record
fails alone with its reason, every good article is indexed, and memory stays bounded.

tests/fixtures/bad_inputs/ holds the small hostile files; the large ones are written at test time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine import Engine
from app.settings import Settings
from eval.bench.scale import MEASURED_NEWSQA
from ingest.chunking import CHARS_PER_TOKEN
from ingest.formats import MAX_TITLE_CHARS
from ingest.pipeline import MAX_ARTICLE_CHARS
from ingest.sources import Failure, expand
from tests.conftest import FIXTURES, ROOT, make_settings

ARTICLES = FIXTURES / "articles"
BAD_INPUTS = FIXTURES / "bad_inputs"
PEAK_LIMIT_MB = 1500


def write_large_inputs(folder: Path) -> dict[str, Path]:
    """The hostile files too large to keep in the repository."""
    folder.mkdir()
    files = {
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "huge_front_matter.md": b"---\ntitle: Big\nnotes: " + b"x" * 70_000 + b"\n---\nBody text.\n",
        # One record, 400,000 characters without a space: the tokenizer reads it as unknown pieces.
        "no_spaces.jsonl": json.dumps({"title": "Unbroken", "text": "Zwischenergebnis" * 25_000}).encode(),
        # A megabyte of text: more than an article (MAX_ARTICLE_CHARS), refused before it is embedded.
        "book.txt": b"A very long book\n" + b"Chapter after chapter of words. " * 32_000,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


def ingest(tmp_path: Path, *sources: Path) -> tuple[subprocess.CompletedProcess, dict, float]:
    """`newsqa ingest --json SOURCES` on a fresh index: the process, its report and its peak MB."""
    script, peak = tmp_path / "measured_main.py", tmp_path / "peak_kb"
    script.write_text(MEASURED_NEWSQA)  # newsqa ARGS, then its peak memory and its workers' into `peak`
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSQA_", "HF_", "TRANSFORMERS_"))}
    env.update(NEWSQA_INDEX=str(tmp_path / "index"), NEWSQA_CONFIG=str(tmp_path / "absent.toml"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(script), str(peak), "ingest", "--json", *map(str, sources)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, report, int(peak.read_text()) / 1024 if peak.exists() else float("nan")


@pytest.mark.slow
def test_bad_inputs_fail_alone_and_good_ones_are_indexed(tmp_path):
    large = write_large_inputs(tmp_path / "large")
    result, report, peak_mb = ingest(tmp_path, ARTICLES, BAD_INPUTS, tmp_path / "large")
    assert result.returncode == 1, result.stderr  # something failed, and the rest was indexed
    assert "Traceback" not in result.stderr

    failed = {o["source"]: o["reason"] for o in report["articles"] if o["status"] == "failed"}
    bad = {path.name: str(path.resolve()) for path in [*BAD_INPUTS.iterdir(), *large.values()]}
    assert failed == {
        bad["alias_bomb.md"]: "YAML front matter uses aliases (*name), which are not allowed",
        bad["nested_front_matter.md"]: "nested more than 20 levels deep",
        f"{bad['mixed_records.jsonl']} line 2": "nested more than 20 levels deep",
        f"{bad['mixed_records.jsonl']} line 3": "nested more than 20 levels deep",
        bad["bad_date.md"]: "malformed YAML front matter: month must be in 1..12",
        bad["long_number.json"]: "malformed JSON: a number too long to read",
        bad["deep.json"]: "nested more than 20 levels deep",
        bad["huge_front_matter.md"]: "YAML front matter over 64 KB",
        bad["book.txt"]: f"its text is over {MAX_ARTICLE_CHARS:,} characters: split it into articles",
    }

    added = [o for o in report["articles"] if o["status"] == "added"]
    # The 11 good fixture articles, the good line beside the bad ones, the long fields cut down, the
    # halves of surrogate pairs replaced, and the text without spaces.
    assert len(added) == 11 + 4 and report["counts"]["added"] == 15
    titles = {o["title"] for o in added}
    assert {"Library extends opening hours", "Ferry fares rise \ufffd in spring", "Unbroken"} <= titles
    [long_title] = [t for t in titles if t.startswith("Headline Headline")]
    assert len(long_title) <= MAX_TITLE_CHARS

    # The text without spaces is in chunks of at most the character cap, not one of a megabyte.
    unbroken = [
        c.text
        for c in Engine(make_settings(tmp_path / "index")).index.all_chunks()
        if c.metadata["title"] == "Unbroken"
    ]
    chunk_tokens = Settings.model_fields["chunk_tokens"].default  # as the child ran, without NEWSQA_ settings
    assert len(unbroken) > 100 and max(map(len, unbroken)) <= chunk_tokens * CHARS_PER_TOKEN

    assert peak_mb < PEAK_LIMIT_MB, f"peak resident memory {peak_mb:.0f} MB"


def special_paths(folder: Path) -> dict[str, Path]:
    """A symlink loop, a FIFO (opening it would block until something wrote to it), a broken symlink."""
    folder.mkdir()
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    os.mkfifo(folder / "pipe.txt")
    (folder / "gone.txt").symlink_to(folder / "nowhere.txt")
    return {name: folder / name for name in ("loop.txt", "pipe.txt", "gone.txt")}


def test_special_paths_given_directly_get_their_true_reason(tmp_path):
    paths = special_paths(tmp_path / "special")
    assert expand([str(p) for p in paths.values()]) == [
        Failure(str(paths["loop.txt"]), "a symlink loop"),
        Failure(str(paths["pipe.txt"]), "not a regular file: a FIFO"),
        Failure(str(paths["gone.txt"]), "a broken symlink"),
    ]


@pytest.mark.slow
def test_special_paths_fail_alone_on_the_command_line(tmp_path):
    paths = special_paths(tmp_path / "special")
    good = ARTICLES / "harbor_plain.txt"
    result, report, _ = ingest(tmp_path, paths["loop.txt"], paths["pipe.txt"], good)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert report["counts"]["added"] == 1
    assert {o["source"]: o["reason"] for o in report["articles"] if o["status"] == "failed"} == {
        str(paths["loop.txt"]): "a symlink loop",
        str(paths["pipe.txt"]): "not a regular file: a FIFO",
    }
