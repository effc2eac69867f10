"""`newsqa ingest / list / remove` through subprocesses, as a user runs them; and no network on the way."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

ARTICLES = FIXTURES / "articles"
BAD = FIXTURES / "bad"
NEWSQA = Path(sys.executable).parent / "newsqa"

# Runs the CLI with an audit hook that logs every name lookup and connection off this machine.
GUARDED_MAIN = """
import sys

LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}


def watch(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host not in LOCAL:
        with open(sys.argv[1], "a") as log:
            log.write(f"{event} {host}\\n")


sys.addaudithook(watch)
from app.cli import main

sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def newsqa(tmp_path):
    """Run `newsqa ARGS` on a fresh index with a clean environment; the result has `.network` too."""
    script = tmp_path / "guarded_main.py"
    script.write_text(GUARDED_MAIN)
    network_log = tmp_path / "network.log"
    # Nothing of the offline switches comes from outside: newsqa must set them itself.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_", "NEWSQA_", "GRADIO_", "ANONYMIZED_"))
    }
    env.update(NEWSQA_INDEX=str(tmp_path / "index"), NEWSQA_CONFIG=str(tmp_path / "absent.toml"), PYTHONPATH=str(ROOT))

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, str(script), str(network_log), *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        result.network = network_log.read_text().splitlines() if network_log.exists() else []
        return result

    return run


def test_version_and_chat_help_say_what_happens():
    version = subprocess.run([str(NEWSQA), "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert version.returncode == 0 and version.stdout.strip() == f"newsqa {project['version']}"
    chat = subprocess.run([str(NEWSQA), "chat", "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    text = " ".join(chat.stdout.split())
    assert "address is printed on the last line" in text and "NEWSQA_OPEN_BROWSER=0" in text


def test_help_explains_commands_and_settings():
    result = subprocess.run([str(NEWSQA), "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0
    for word in ("ingest", "list", "remove", "check", "NEWSQA_INDEX", "NEWSQA_EMBEDDING_MODEL", "config.toml"):
        assert word in result.stdout
    result = subprocess.run([str(NEWSQA), "ingest", "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0
    for word in ("SOURCE", ".txt", ".md", ".html", ".jsonl", ".rss", "--json", "--no-wait"):
        assert word in result.stdout


def test_no_command_or_no_source_is_a_usage_error():
    for args in ([], ["ingest"], ["remove"]):
        result = subprocess.run([str(NEWSQA), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert result.returncode == 2 and "usage: newsqa" in result.stderr


@pytest.mark.slow
def test_ingest_list_remove(newsqa):
    first = newsqa("ingest", str(ARTICLES), str(BAD / "photo.txt"), str(BAD / "malformed.json"))
    assert first.returncode == 1, first.stderr  # something failed; the rest is indexed all the same
    lines = first.stdout.splitlines()
    assert lines[0] == "11 added, 0 updated, 0 unchanged, 0 duplicate, 2 failed"
    assert sorted(lines[1:]) == sorted(
        [
            f"  failed: {BAD / 'photo.txt'}: binary file, not text",
            f"  failed: {BAD / 'malformed.json'}: malformed JSON: Unterminated "
            "string starting at: line 1 column 100 (char 99)",
        ]
    )
    assert "Loading weights" not in first.stderr and "Traceback" not in first.stderr
    assert first.network == []  # no hub, no telemetry

    second = newsqa("ingest", str(ARTICLES))
    assert second.returncode == 0
    assert second.stdout.splitlines() == ["0 added, 0 updated, 11 unchanged, 0 duplicate, 0 failed"]

    listed = newsqa("list", "--json")
    assert listed.returncode == 0
    articles = json.loads(listed.stdout)
    assert len(articles) == 11
    for article in articles:
        assert {"id", "title", "published", "source", "url", "file", "chunks"} <= set(article)
        assert article["chunks"] >= 1
    by_file = {a["file"]: a for a in articles}
    orchard = by_file["orchard_frontmatter.md"]
    assert (orchard["title"], orchard["published"], orchard["source"], orchard["url"]) == (
        "Late frost cuts apple harvest in the valley",
        "2024-05-14",
        "Valley Courier",
        "https://courier.example/2024/05/late-frost-apples",
    )
    assert by_file["harbor_plain.txt"]["published"] is None
    # Newest first, undated last.
    dates = [a["published"] for a in articles]
    assert dates == sorted((d for d in dates if d), reverse=True) + [None] * dates.count(None)

    text = newsqa("list")
    header, *lines = text.stdout.splitlines()
    assert text.returncode == 0 and header.split() == ["ID", "DATE", "CHUNKS", "SOURCE", "TITLE"] and len(lines) == 11
    assert f"{orchard['id']}  2024-05-14" in text.stdout
    harbor = next(line for line in lines if line.startswith(by_file["harbor_plain.txt"]["id"]))
    date_column = header.index("DATE")
    assert harbor[date_column : date_column + 10].strip() == "" and "---" not in text.stdout  # undated: blank

    removed = newsqa("remove", orchard["id"], "harbor_plain.txt", "no-such-thing")
    assert removed.returncode == 1
    assert removed.stdout.splitlines() == [
        f"removed {orchard['id']}  {orchard['title']}",
        f"removed {by_file['harbor_plain.txt']['id']}  Harbor town votes to rebuild storm-damaged pier",
    ]
    assert removed.stderr.strip() == "not found: no-such-thing (see `newsqa list` for ids and files)"
    after = json.loads(newsqa("list", "--json").stdout)
    assert {a["id"] for a in after} == {a["id"] for a in articles} - {orchard["id"], by_file["harbor_plain.txt"]["id"]}

    report = newsqa("ingest", "--json", str(ARTICLES))
    assert report.returncode == 0
    assert json.loads(report.stdout)["counts"] == {
        "added": 2,
        "updated": 0,
        "unchanged": 9,
        "duplicate": 0,
        "failed": 0,
    }
    assert report.network == []


@pytest.mark.slow
@pytest.mark.parametrize("model", ["/nowhere/model", "some-org/model-not-on-this-machine"])
def test_missing_embedding_model_is_one_clear_line_and_no_download(newsqa, model):
    result = newsqa("--embedding-model", model, "ingest", str(ARTICLES / "harbor_plain.txt"))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"newsqa: cannot load embedding model {model!r} (")
    assert line.endswith(
        "set NEWSQA_EMBEDDING_MODEL to a local sentence-transformers folder, or unset it for the bundled default"
    )
    assert result.network == []


@pytest.mark.slow
def test_bad_setting_is_one_clear_line(newsqa):
    result = newsqa("--collection", "ab", "list")
    assert result.returncode == 2
    assert result.stderr.startswith("newsqa: bad setting: collection: String should have at least 3 characters")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_ingest_of_nothing_that_exists_fails(newsqa, tmp_path):
    result = newsqa("ingest", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "0 added, 0 updated, 0 unchanged, 0 duplicate, 1 failed",
        f"  failed: {tmp_path / 'nowhere'}: no such file, folder or URL",
    ]


# Any control byte a terminal could act on: C0 but the line feed that ends each line, DEL, C1.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@pytest.mark.slow
def test_escape_codes_in_titles_and_file_names_never_reach_the_terminal(newsqa, tmp_path):
    """A title holding OSC 52 (write the clipboard) and a colour change, a file name holding a colour
    change, a bell and a line break: `ingest`, `list`, `ask` and `remove` print them all as text."""
    folder = tmp_path / "articles"
    folder.mkdir()
    name = "pier\x1b[31m\nvote\x07.txt"
    (folder / name).write_text(
        "Harbour\x1b]52;c;aGFja2Vk\x07 board \x1b[31mvotes on the pier\n"
        "The harbour board voted on Tuesday to rebuild the \x1b[31mstorm-damaged pier by next summer.\n"
        "Work starts in March, the board said.\n"
    )
    (folder / "one\x1b[2Jline.txt").write_text("Only a headline\x1b[0m")
    shown = r"pier\x1b[31m\nvote\x07.txt"  # how the file name is printed

    ingested = newsqa("ingest", str(folder))
    listed = newsqa("list")
    asked = newsqa("ask", "--llm", "extractive", "What did the harbour board vote to rebuild?")
    asked_json = newsqa("ask", "--json", "--llm", "extractive", "What did the harbour board vote to rebuild?")
    removed = newsqa("remove", name, "gone\x1b[31m\n")
    runs = {"ingest": ingested, "list": listed, "ask": asked, "ask --json": asked_json, "remove": removed}
    assert {command: CONTROL.findall(run.stdout + run.stderr) for command, run in runs.items()} == dict.fromkeys(
        runs, []
    )
    assert ingested.stdout.splitlines()[1] == rf"  failed: {folder}/one\x1b[2Jline.txt: only one line: " + (
        "expected a headline line, then the article text"
    )
    assert f"{shown}  Harbour]52;c;aGFja2Vk board [31mvotes on the pier" in listed.stdout
    assert "storm-damaged pier" in asked.stdout and shown in asked.stdout
    assert json.loads(asked_json.stdout)["citations"][0]["file"] == name  # JSON escapes it its own way
    assert removed.stdout.splitlines()[0].endswith("  Harbour]52;c;aGFja2Vk board [31mvotes on the pier")
    assert removed.stderr.splitlines() == [r"not found: gone\x1b[31m\n (see `newsqa list` for ids and files)"]
