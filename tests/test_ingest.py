"""Ingestion into a real index (Chroma + BM25 + the embedding model): identity, updates, removal,
bad input in a batch, and interrupted ingests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from app.engine import Engine
from app.index import REVISION_TTL_SECONDS, Index
from tests.conftest import FIXTURES, ROOT, make_settings
from tests.test_chroma_server import chroma_url  # noqa: F401 (a fixture: a `chroma run` on loopback)

pytestmark = pytest.mark.slow

ARTICLES = FIXTURES / "articles"
BAD = FIXTURES / "bad"
FIXTURE_ARTICLES = 11  # 1 a file for .txt, .md, .html, .atom and the cp1252 text; 2 each in .json, .jsonl, .rss


def assert_consistent(index: Index) -> dict[str, list[dict]]:
    """Every article stored whole and once, and the BM25 index holding exactly the collection's chunks.
    Returns the chunk metadata by article id."""
    chunks = list(index.all_chunks())
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids)) == index.count()
    by_article: dict[str, list[dict]] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.metadata["article_id"], []).append(chunk.metadata)
        assert chunk.text == chunk.text.strip() and chunk.text
    for article_id, metas in by_article.items():
        [content_hash] = {m["content_hash"] for m in metas}
        count = metas[0]["chunk_count"]
        assert sorted(m["chunk_index"] for m in metas) == list(range(count))
        assert {c.id for c in chunks if c.metadata["article_id"] == article_id} == {
            f"{article_id}-{content_hash[:8]}-{i}" for i in range(count)
        }
    lexical = index.lexical()
    assert sorted(lexical.ids) == sorted(ids)
    assert {a.id for a in index.articles()} == set(by_article)
    return by_article


def bm25_articles(engine: Engine, query: str) -> set[str]:
    hits = engine.index.lexical().search(query, k=50)
    return {c.metadata["article_id"] for c in engine.index.chunks([chunk_id for chunk_id, _ in hits])}


def write_article(path: Path, title: str, body: str) -> Path:
    path.write_text(f"{title}\n{body}\n", encoding="utf-8")
    return path


def test_fixture_folder_indexed_and_reingest_is_a_no_op(engine):
    report = engine.add([str(ARTICLES)], progress=False)
    assert report.counts() == {"added": FIXTURE_ARTICLES, "updated": 0, "unchanged": 0, "duplicate": 0, "failed": 0}
    stored = assert_consistent(engine.index)
    assert len(stored) == FIXTURE_ARTICLES
    listed = {a.title: a for a in engine.articles()}
    assert listed["Late frost cuts apple harvest in the valley"].as_dict() == {
        "id": listed["Late frost cuts apple harvest in the valley"].id,
        "title": "Late frost cuts apple harvest in the valley",
        "published": "2024-05-14",
        "source": "Valley Courier",
        "url": "https://courier.example/2024/05/late-frost-apples",
        "file": "orchard_frontmatter.md",
        "authors": ["Maria Chen", "Tom Baptiste"],
        "chunks": len(stored[listed["Late frost cuts apple harvest in the valley"].id]),
    }
    revision, count = engine.index.revision(), engine.index.count()

    again = engine.add([str(ARTICLES)], progress=False)
    assert again.counts()["unchanged"] == FIXTURE_ARTICLES and again.ok
    assert engine.index.revision() == revision and engine.index.count() == count  # nothing written


def test_cp1252_article_is_stored_and_found_with_its_accents(engine):
    engine.add([str(ARTICLES / "terraces_cp1252.txt")], progress=False)
    [article] = engine.articles()
    assert article.title == "Café owners fear “new” rules on terraces"
    [chunk] = engine.index.chunks([f"{article.id}-{article.content_hash[:8]}-0"])
    assert "€5 a day" in chunk.text and "Hélène Dubois" in chunk.text
    assert bm25_articles(engine, "Hélène crêperie") == {article.id}


def test_changed_file_replaces_its_old_chunks(engine, tmp_path):
    tmp_path = tmp_path / "articles"  # beside the engine's index folder, not around it
    tmp_path.mkdir()
    path = write_article(
        tmp_path / "bridge.txt",
        "Bridge reopens",
        "The Old Mill bridge reopened on Monday after repairs to its pillars. " * 30,
    )
    other = write_article(tmp_path / "other.txt", "Market hall sold", "The old market hall was sold to a bakery chain.")
    engine.add([str(tmp_path)], progress=False)
    [before] = [a for a in engine.articles() if a.file == "bridge.txt"]
    assert before.chunks > 1

    write_article(
        path, "Bridge stays shut", "Inspectors found cracks, and the Old Mill bridge stays closed until spring."
    )
    report = engine.add([str(tmp_path)], progress=False)
    assert report.counts() == {"added": 0, "updated": 1, "unchanged": 1, "duplicate": 0, "failed": 0}
    [after] = [a for a in engine.articles() if a.file == "bridge.txt"]
    assert after.id == before.id and after.title == "Bridge stays shut" and after.chunks == 1
    stored = assert_consistent(engine.index)
    assert {m["content_hash"] for m in stored[after.id]} == {after.content_hash}
    assert bm25_articles(engine, "pillars repairs") == set()  # the old text is gone from BM25 as well
    assert bm25_articles(engine, "inspectors cracks") == {after.id}
    assert other.exists() and len(engine.articles()) == 2


def test_same_content_under_another_name_is_a_duplicate(engine, tmp_path):
    original = write_article(tmp_path / "a.txt", "Zoo welcomes twin pandas", "Two panda cubs were born at the zoo.")
    engine.add([str(original)], progress=False)
    count = engine.index.count()
    copy = tmp_path / "b.txt"
    shutil.copy(original, copy)
    report = engine.add([str(copy)], progress=False)
    [outcome] = report.outcomes
    assert outcome.status == "duplicate"
    assert outcome.reason == f"same text as {engine.articles()[0].id}"
    assert engine.index.count() == count and len(engine.articles()) == 1

    # Within one run too: the first one seen is indexed, the other reported against it.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("c.txt", "d.txt"):
        write_article(fresh / name, "Ferry fares rise", "Ferry fares rise by ten percent in May.")
    report = engine.add([str(fresh)], progress=False)
    assert [o.status for o in report.outcomes] == ["added", "duplicate"]
    assert report.outcomes[1].reason == f"same text as {fresh / 'c.txt'}"
    assert_consistent(engine.index)


def test_remove_by_id_by_file_name_and_by_path(engine):
    engine.add([str(ARTICLES)], progress=False)
    listed = {a.file: a for a in engine.articles()}
    harbor, orchard, library = listed["harbor_plain.txt"], listed["orchard_frontmatter.md"], listed["library_page.html"]

    assert [a.id for a in engine.remove(harbor.id)] == [harbor.id]
    assert [a.id for a in engine.remove("orchard_frontmatter.md")] == [orchard.id]
    assert [a.id for a in engine.remove(str((ARTICLES / "library_page.html").resolve()))] == [library.id]
    assert engine.remove("no-such-article") == []
    wire = sorted(a.id for a in engine.articles() if a.file == "wire_records.json")
    assert len(wire) == 2 and sorted(a.id for a in engine.remove("wire_records.json")) == wire

    remaining = {a.id for a in engine.articles()}
    assert not remaining & {harbor.id, orchard.id, library.id}
    assert len(remaining) == FIXTURE_ARTICLES - 5  # two records went with wire_records.json
    assert set(assert_consistent(engine.index)) == remaining
    assert bm25_articles(engine, "Okafor pier") == set()

    report = engine.add([str(ARTICLES / "harbor_plain.txt")], progress=False)  # and it can come back
    assert report.counts()["added"] == 1


def test_bad_input_does_not_stop_the_batch(engine, tmp_path):
    big = tmp_path / "big.txt"
    write_article(big, "Huge", "word " * 5000)
    engine.settings.max_file_mb = 0.01
    report = engine.add(
        [str(BAD), str(ARTICLES / "harbor_plain.txt"), str(big), str(tmp_path / "missing.md")], progress=False
    )
    failed = {Path(o.source).name: o.reason for o in report.of("failed")}
    assert set(failed) == {
        "blank.md",
        "empty.txt",
        "malformed.json",
        "malformed.jsonl line 2",
        "malformed.rss",
        "no_text.html",
        "photo.txt",
        "big.txt",
        "missing.md",
    }
    assert failed["big.txt"] == "file is 0.0 MB, over the 0.01 MB limit (NEWSQA_MAX_FILE_MB)"
    assert not report.ok
    # What could be read is indexed: the harbor story, the recoverable HTML, jsonl's good first line.
    assert sorted(a.title for a in engine.articles()) == [
        "Ferry service resumes after repairs",
        "Good line",
        "Harbor town votes to rebuild storm-damaged pier",
    ]
    assert_consistent(engine.index)


# -- interrupted ingests


class Crash(Exception):
    pass


class CrashingCollection:
    """The Chroma collection, failing on its n-th write call, as a process killed there would stop."""

    def __init__(self, collection, fail_at: int):
        self._collection, self._fail_at, self.writes = collection, fail_at, 0

    def __getattr__(self, name):
        attribute = getattr(self._collection, name)
        if name not in ("upsert", "delete", "modify"):
            return attribute

        def write(*args, **kwargs):
            self.writes += 1
            if self.writes == self._fail_at:
                raise Crash(name)
            return attribute(*args, **kwargs)

        return write


VERSION_1 = {
    "a.txt": ("Canal works", "Work on the canal locks began in March and will last a year. " * 20),
    "b.txt": ("Choir tour", "The town choir leaves for a tour of five cities in June."),
}
VERSION_2 = {
    "a.txt": ("Canal works delayed", "The canal lock works are delayed by a month. " * 25),
    "b.txt": VERSION_1["b.txt"],
    "c.txt": ("Bakery prize", "A local bakery won the national bread prize."),
}


def put(folder: Path, version: dict[str, tuple[str, str]]) -> None:
    for stale in set(p.name for p in folder.iterdir()) - set(version):
        (folder / stale).unlink()
    for name, (title, body) in version.items():
        write_article(folder / name, title, body)


def test_ingest_cut_at_every_write_call_converges(tmp_path):
    """An update and an addition, cut short at each of the index's write calls in turn, then run again."""
    folder = tmp_path / "articles"
    folder.mkdir()
    for fail_at in range(1, 20):
        settings = make_settings(tmp_path / f"index{fail_at}")
        put(folder, VERSION_1)
        Engine(settings).add([str(folder)], progress=False)
        put(folder, VERSION_2)
        cut = Engine(settings)
        cut.index._collection = CrashingCollection(cut.index._collection, fail_at)
        try:
            cut.add([str(folder)], progress=False)
        except Crash:
            pass
        else:
            break  # every write call has been cut once

        rerun = Engine(settings)  # a new process would open the index afresh
        report = rerun.add([str(folder)], progress=False)
        assert report.ok and report.counts()["duplicate"] == 0
        stored = assert_consistent(rerun.index)
        assert sorted(a.title for a in rerun.articles()) == ["Bakery prize", "Canal works delayed", "Choir tour"]
        assert len(stored) == 3
        assert bm25_articles(rerun, "March began year") == set()
    assert fail_at > 4  # cut at least at: revision, upsert, delete of the stale chunks, revision


def make_articles(folder: Path, count: int) -> None:
    folder.mkdir()
    for n in range(count):
        sentences = [
            f"Report {n} from district {n % 17} covers item {k} of the council agenda for week {n}." for k in range(6)
        ]
        write_article(
            folder / f"story_{n:03d}.txt", f"District {n % 17} council report number {n}", " ".join(sentences)
        )


def chunk_rows(index_folder: Path) -> int:
    """Rows Chroma has logged so far, read from its SQLite file without opening the collection."""
    database = index_folder / "chroma" / "chroma.sqlite3"
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute("SELECT count(*) FROM embeddings_queue").fetchone()[0]
    except sqlite3.Error:
        return 0


ARTICLE_COUNT = 60  # about 20 batches: the signal lands mid-run even with every core embedding


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_ingest_killed_mid_run_then_run_again(tmp_path, sig, record_property):
    folder, index_folder = tmp_path / "articles", tmp_path / "index"
    make_articles(folder, ARTICLE_COUNT)
    env = {**os.environ, "NEWSQA_INGEST_BATCH_CHARS": "3000", "PYTHONUNBUFFERED": "1"}  # about 3 articles a batch
    command = [sys.executable, "-m", "app.cli", "--index", str(index_folder), "ingest", str(folder)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while chunk_rows(index_folder) == 0 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=300)
    if sig == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL, stderr
    else:
        assert process.returncode == 130, stderr
        assert "interrupted: what was written is whole; run the same command again to finish" in stderr

    index = Engine(make_settings(index_folder)).index
    complete = index.complete_articles([a.id for a in index.articles()])
    record_property("articles_whole_after_the_signal", len(complete))
    assert len(complete) < ARTICLE_COUNT, "the ingest ended before the signal: nothing was interrupted"

    rerun = subprocess.run(
        [*command, "--json"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    counts = json.loads(rerun.stdout)["counts"]
    record_property("rerun_counts", counts)
    assert counts["unchanged"] == len(complete)
    assert counts["added"] == ARTICLE_COUNT - len(complete)
    assert counts["failed"] == counts["duplicate"] == counts["updated"] == 0

    engine = Engine(make_settings(index_folder))
    stored = assert_consistent(engine.index)
    assert len(stored) == ARTICLE_COUNT
    files = Counter(a.file for a in engine.articles())
    assert set(files) == {p.name for p in folder.iterdir()} and set(files.values()) == {1}


def test_many_batches_are_embedded_in_child_processes_as_they_would_be_here(tmp_path):
    """One child, or two sharing each batch: the same chunks, the same vectors, in the same order."""
    folder = tmp_path / "articles"
    make_articles(folder, 12)
    stored = {}
    for processes in (0, 1, 2):
        settings = make_settings(tmp_path / f"index{processes}", ingest_batch_chars=1000, ingest_processes=processes)
        engine = Engine(settings)
        # The folder twice: the second pass meets articles still being embedded, or just written.
        report = engine.add([str(folder), str(folder)], progress=False)
        assert report.counts() == {"added": 12, "updated": 0, "unchanged": 12, "duplicate": 0, "failed": 0}
        assert_consistent(engine.index)
        # The model itself was loaded only where the embedding happened.
        assert ("_session" in engine.embedder.__dict__) == (processes == 0)
        stored[processes] = engine.index._collection.get(include=["embeddings", "documents"])
    for processes in (1, 2):
        assert stored[processes]["ids"] == stored[0]["ids"]
        assert stored[processes]["documents"] == stored[0]["documents"]
        assert np.array_equal(stored[processes]["embeddings"], stored[0]["embeddings"])


# -- a Chroma server instead of the embedded store


def test_ingest_into_a_chroma_server(tmp_path, chroma_url):
    settings = make_settings(tmp_path / "local", chroma_url=chroma_url)
    engine = Engine(settings)
    report = engine.add([str(ARTICLES)], progress=False)
    assert report.counts()["added"] == FIXTURE_ARTICLES
    assert len(assert_consistent(engine.index)) == FIXTURE_ARTICLES
    assert not (tmp_path / "local" / "chroma").exists()  # nothing stored locally but the BM25 cache

    # Another machine (another local folder) sees the same articles and builds its own BM25 cache.
    elsewhere = Engine(make_settings(tmp_path / "elsewhere", chroma_url=chroma_url))
    assert elsewhere.add([str(ARTICLES)], progress=False).counts()["unchanged"] == FIXTURE_ARTICLES
    [harbor] = [a for a in elsewhere.articles() if a.file == "harbor_plain.txt"]
    assert bm25_articles(elsewhere, "Okafor pier") == {harbor.id}
    elsewhere.remove(harbor.id)
    # The first machine's BM25 cache follows the server's revision, once its reading of it is due.
    time.sleep(REVISION_TTL_SECONDS)
    assert bm25_articles(engine, "Okafor pier") == set()
    assert len(assert_consistent(engine.index)) == FIXTURE_ARTICLES - 1
