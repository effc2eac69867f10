"""One writer at a time per index, and chunks stored without their vector found and repaired: concurrent
`newsqa ingest` processes, `--no-wait`, `newsqa check`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from app.engine import Engine
from app.index import Index, IndexBusy
from tests.conftest import ROOT, make_settings
from tests.test_ingest import assert_consistent, write_article

WAITING = "waiting for another ingest to finish"
BUSY = 75


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")}
    env.update(NEWSQA_CONFIG=str(tmp_path / "absent.toml"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


def newsqa(index: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--index", str(index), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def make_folder(folder: Path, name: str, count: int) -> Path:
    folder.mkdir(parents=True)
    for n in range(count):
        body = " ".join(
            f"The {name} desk's story {n} says district {n % 13} debated item {k} in week {n}." for k in range(10)
        )
        write_article(folder / f"{name}_{n:02d}.txt", f"{name.title()} report {n}", body)
    return folder


def vectorless(index: Index) -> list[str]:
    return index._without_vector([c.id for c in index.all_chunks()])


def drop_vectors(index_folder: Path, chunk_ids: list[str]) -> None:
    """Lose these chunks' vectors as a concurrent writer does: their records stay in Chroma's metadata
    tables, and their entries leave its write-ahead log (embeddings_queue) before the vector index was
    built from them (below its sync threshold, 1,000 records, it is rebuilt from the log when opened)."""
    with sqlite3.connect(index_folder / "chroma" / "chroma.sqlite3") as connection:
        deleted = connection.executemany("DELETE FROM embeddings_queue WHERE id = ?", [(i,) for i in chunk_ids])
        assert deleted.rowcount == len(chunk_ids)


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2, 3])
def test_concurrent_ingests_take_turns_and_keep_every_vector(tmp_path, processes):
    """Each process ingests its own 30 articles and 10 shared ones, all started while the lock is held
    so that all of them wait, then run as the lock allows."""
    index, env = tmp_path / "index", cli_env(tmp_path)
    shared = make_folder(tmp_path / "shared", "shared", 10)
    folders = [make_folder(tmp_path / f"desk{p}", f"desk{p}", 30) for p in range(processes)]
    index.mkdir()
    logs = [tmp_path / f"stderr{p}.txt" for p in range(processes)]
    with FileLock(index / "write.lock"):
        running = []
        for folder, log in zip(folders, logs):
            with log.open("w") as stderr:
                running.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "app.cli",
                            "--index",
                            str(index),
                            "ingest",
                            "--json",
                            str(folder),
                            str(shared),
                        ],
                        cwd=ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=stderr,
                        text=True,
                    )
                )
        deadline = time.monotonic() + 120
        while not all(WAITING in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            assert all(p.poll() is None for p in running), [log.read_text() for log in logs]
            time.sleep(0.1)
    reports = []
    for process, log in zip(running, logs):
        stdout, _ = process.communicate(timeout=600)
        assert process.returncode == 0, log.read_text()
        assert log.read_text().count(WAITING) == 1
        reports.append(json.loads(stdout)["counts"])
    # The shared articles were written once, by whichever ran first; the others found them unchanged.
    assert sum(r["added"] for r in reports) == 30 * processes + 10
    assert sorted(r["unchanged"] for r in reports) == [0] + [10] * (processes - 1)
    assert all(r["failed"] == r["duplicate"] == r["updated"] == 0 for r in reports)

    check = newsqa(index, "check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    engine = Engine(make_settings(index))
    chunks = engine.index.count()
    assert check.stdout.splitlines() == [f"{chunks} chunks, 0 without a vector, in 0 articles"]
    assert vectorless(engine.index) == []
    assert len(assert_consistent(engine.index)) == 30 * processes + 10  # Chroma and BM25 hold the same chunks


@pytest.mark.slow
def test_no_wait_fails_at_once_while_another_process_writes(tmp_path):
    index, env = tmp_path / "index", cli_env(tmp_path)
    folder = make_folder(tmp_path / "articles", "harbor", 2)
    assert newsqa(index, "ingest", str(folder), env=env).returncode == 0
    with FileLock(index / "write.lock"):
        for args in (["ingest", "--no-wait", str(folder)], ["remove", "--no-wait", "harbor_00.txt"]):
            started = time.monotonic()
            busy = newsqa(index, *args, env=env)
            assert busy.returncode == BUSY, busy.stderr
            assert busy.stdout == ""
            assert busy.stderr.splitlines() == [
                f"newsqa: another ingest or remove is writing to this index "
                f"(lock {index / 'write.lock'}); try again when it has finished"
            ]
            assert time.monotonic() - started < 60  # it did not wait for the lock
        # Readers never take the lock.
        listed = newsqa(index, "list", "--json", env=env)
        assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 2
        assert newsqa(index, "check", env=env).returncode == 0
    removed = newsqa(index, "remove", "--no-wait", "harbor_00.txt", env=env)
    assert removed.returncode == 0 and removed.stdout.startswith("removed ")


def test_threads_of_one_process_take_turns(tmp_path):
    """The chat page's uploads and deletes run on threads of one process: they take turns too."""
    index = Index(make_settings(tmp_path / "index"), "test-model")
    other_thread_busy = []

    def write_elsewhere():
        try:
            with index.writing(wait=False):
                pass
        except IndexBusy:
            other_thread_busy.append(True)

    with index.writing(wait=False):
        thread = threading.Thread(target=write_elsewhere)
        thread.start()
        thread.join()
    assert other_thread_busy == [True]
    with index.writing(wait=False):  # released: free again
        pass


def test_engine_writes_wait_or_fail_on_a_held_lock(tmp_path):
    engine = Engine(make_settings(tmp_path / "index"))
    with FileLock(tmp_path / "index" / "write.lock"):
        with pytest.raises(IndexBusy):
            engine.add([str(tmp_path / "nowhere")], wait=False)
        with pytest.raises(IndexBusy):
            engine.remove("anything", wait=False)
    assert "embedder" not in engine.__dict__  # refused before the model was loaded


@pytest.mark.slow
def test_check_finds_chunks_without_vectors_and_ingest_repairs_them(tmp_path):
    index, env = tmp_path / "index", cli_env(tmp_path)
    folder = make_folder(tmp_path / "articles", "canal", 6)
    assert newsqa(index, "ingest", str(folder), env=env).returncode == 0
    with sqlite3.connect(index / "chroma" / "chroma.sqlite3") as connection:
        chunk_ids = sorted(row[0] for row in connection.execute("SELECT id FROM embeddings_queue"))
    lost = [chunk_ids[0], chunk_ids[-1]]
    articles = sorted({i.split("-")[0] for i in lost})
    assert len(articles) == 2
    drop_vectors(index, lost)

    # What the loss looked like: listed and found by BM25 all the same, and unchanged to an ingest.
    listed = json.loads(newsqa(index, "list", "--json", env=env).stdout)
    assert len(listed) == 6
    by_id = {a["id"]: a for a in listed}
    check = newsqa(index, "check", env=env)
    assert check.returncode == 1
    lines = check.stdout.splitlines()
    assert lines[0] == f"{len(chunk_ids)} chunks, 2 without a vector, in 2 articles"
    assert sorted(lines[1:3]) == [f"  {a}  {by_id[a]['title']}  [{folder / by_id[a]['file']}]" for a in articles]
    assert lines[3] == "ingest these articles' sources again to repair them"

    rerun = newsqa(index, "ingest", "--json", str(folder), env=env)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["counts"] == {"added": 2, "updated": 0, "unchanged": 4, "duplicate": 0, "failed": 0}
    assert sorted(a["article_id"] for a in report["articles"] if a["status"] == "added") == articles
    assert newsqa(index, "check", env=env).returncode == 0
    engine = Engine(make_settings(index))
    assert vectorless(engine.index) == []
    assert len(assert_consistent(engine.index)) == 6


@pytest.mark.slow
def test_ingest_reports_articles_it_wrote_without_their_vectors(engine, tmp_path, monkeypatch):
    """The check at the end of an ingest reads back what it wrote: an article Chroma stored without a
    vector fails, so the exit code says so, and stays incomplete for the next run to write again."""
    folder = make_folder(tmp_path / "articles", "choir", 3)
    first_chunks = []
    read_vectors = Index._without_vector

    def lose_first_chunk(index, ids):
        first_chunks.extend(i for i in ids if i.endswith("-0"))
        return read_vectors(index, ids) + [i for i in ids if i == first_chunks[0]]

    monkeypatch.setattr(Index, "_without_vector", lose_first_chunk)
    report = engine.add([str(folder)], progress=False)
    assert not report.ok
    [failed] = report.of("failed")
    assert first_chunks[0].startswith(failed.article_id)
    assert failed.reason == "not stored whole (a chunk or its vector is missing); ingest it again to repair it"
    assert report.counts()["added"] == 2


@pytest.fixture
def read_only_index(tmp_path: Path):
    """An index of the seed article that this user cannot write: for root (whom file modes do not
    stop), the index seen through a read-only bind mount; for anyone else, its files made read-only."""
    index = tmp_path / "index"
    assert newsqa(index, "ingest", str(ROOT / "seeds"), env=cli_env(tmp_path)).returncode == 0
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(index)], check=True)
        yield index
        subprocess.run(["chmod", "-R", "u+w", str(index)], check=True)
        return
    seen = tmp_path / "read-only"
    seen.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(index), str(seen)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"root, and no read-only mount can be made here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(seen)], check=True)
        yield seen
    finally:
        subprocess.run(["umount", str(seen)], check=True)


@pytest.mark.slow
def test_a_read_only_index_is_read_and_refuses_writes_in_one_line(read_only_index: Path, tmp_path: Path):
    env = cli_env(tmp_path)
    listed = newsqa(read_only_index, "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "Russia urges West to move quickly" in listed.stdout
    asked = newsqa(read_only_index, "ask", "What does Russia want from the West?", env=env)
    assert asked.returncode == 0 and "Russia" in asked.stdout, asked.stderr
    refusal = f"newsqa: the index at {read_only_index} is read-only: it can be read, not changed\n"
    for command in (["ingest", str(ROOT / "tests" / "fixtures" / "articles")], ["remove", "anything"]):
        changed = newsqa(read_only_index, *command, env=env)
        assert (changed.returncode, changed.stderr.splitlines()[-1] + "\n") == (2, refusal)
        assert "Traceback" not in changed.stderr
