"""Query latency, memory and disk against the size of the index.

One collection grows through the sizes (synthetic chunks written through Index.write, as ingestion
writes them); at each size a fresh process opens the index and asks the questions, so its peak
RSS is what a process serving an index of that size needs, lexical index and model included. Last,
a fresh `newsqa ingest` process adds one real article to a copy of the index: what staying current
costs at that size, and that process's peak RSS.
Run as `python -m eval.bench.scale QUESTIONS_JSON` that query process prints its figures as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from pydantic import SecretStr

from app.documents import Filters
from app.embedders import embedding_label
from app.index import Index
from app.settings import Settings
from app.timing import timed
from eval.bench.corpus import DAYS, FIRST_DAY, SyntheticChunks

ARTICLES_PER_WRITE = 1000
ROOT = Path(__file__).resolve().parents[2]

# `newsqa` as the user runs it, reporting its own peak RSS on exit into the file argv[1]: read from its
# /proc, since getrusage's ru_maxrss of a child carries over the resident size of the (large) bench
# process it was forked from. Its own embedding workers' peaks come through RUSAGE_CHILDREN.
MEASURED_NEWSQA = """
import resource, sys
from app.cli import main

code = main(sys.argv[2:])
with open("/proc/self/status") as status:
    own_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
open(sys.argv[1], "w").write(str(max(own_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)))
sys.exit(code)
"""
# The article ids `Engine.retrieve` ranks for the question argv[1], as a question would get them.
RETRIEVED_IDS = """
import json, sys
from app.engine import Engine
from app.settings import Settings

print(json.dumps([p.article_id for p in Engine(Settings()).retrieve(sys.argv[1])]))
"""


@dataclass
class SizePoint:
    chunks: int
    build_seconds: float  # writing the chunks added since the previous size
    lexical_seconds: float  # rebuilding the BM25 index from the collection
    disk_mb: float
    query: dict  # from the query process: latency percentiles, peak RSS
    update_s: float  # a fresh `newsqa ingest` process adding one real article, from start to exit
    update_peak_rss_mb: float  # that process's peak resident memory
    update_found: bool  # the added article among the passages retrieved for its title


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def grow(index: Index, source: SyntheticChunks, target: int) -> float:
    """Write synthetic articles until the collection holds `target` chunks; the seconds it took."""
    with timed() as spent:
        while (have := index.count()) < target:
            articles = min(ARTICLES_PER_WRITE, -(-(target - have) // source.per_article))
            index.write(*source.batch(have // source.per_article, articles))
    return spent.wall


def sweep(
    settings: Settings,
    sizes: list[int],
    source: SyntheticChunks,
    questions_file: Path,
    article: Path,
    budget_seconds: float,
    log,
) -> tuple[list[SizePoint], str]:
    """Grow one index through `sizes`, measuring at each, the update of `article` (a real article file)
    last; stops before a size whose build would take longer than `budget_seconds` at the rate seen so
    far. Returns the points and why it stopped early."""
    index = Index(settings, embedding_label(settings))
    points: list[SizePoint] = []
    rate = None  # chunks a second, from the last build
    for size in sizes:
        todo = size - index.count()
        if rate and todo / rate > budget_seconds:
            return points, (
                f"stopped before {size:,} chunks: at {rate:,.0f} chunks/s its build would take "
                f"{todo / rate / 60:,.0f} min, over the {budget_seconds / 60:,.0f} min budget"
            )
        log(f"scale: building {size:,} chunks")
        build = grow(index, source, size)
        rate = todo / build if build else rate
        with timed() as lexical:
            index.lexical()
        log(f"scale: {size:,} chunks built in {build:.0f} s (BM25 {lexical.wall:.0f} s); querying")
        query = run_query_process(settings, questions_file)
        chunks, disk = index.count(), folder_mb(settings.index)
        log(f"scale: {chunks:,} chunks queried; adding {article.name} with newsqa ingest")
        points.append(SizePoint(chunks, build, lexical.wall, disk, query, *measure_update(settings, article)))
    return points, ""


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of a child process that must run on exactly `settings`: each one given as its
    NEWSQA_ variable, none inherited from this process, and no config file read (NEWSQA_CONFIG names
    a file that is not there). Unset settings (chroma_url: the embedded store) and secrets are left out."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("NEWSQA_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        if not isinstance(value, SecretStr):
            env[f"NEWSQA_{name.upper()}"] = str(value)
    env["NEWSQA_CONFIG"] = str(settings.index.with_name("no-config.toml"))
    return env


def run_child(command: list[str], settings: Settings, what: str) -> str:
    """Run `command` on `settings`; its stdout, or a RuntimeError with the end of its stderr."""
    done = subprocess.run(
        command, cwd=ROOT, env=child_env(settings), stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def run_query_process(settings: Settings, questions_file: Path) -> dict:
    extractive = settings.model_copy(update={"llm": "extractive"})  # answers timed without an LLM server
    out = run_child([sys.executable, "-m", "eval.bench.scale", str(questions_file)], extractive, "query process")
    return json.loads(out.strip().splitlines()[-1])


def measure_update(settings: Settings, article: Path) -> tuple[float, float, bool]:
    """A fresh `newsqa ingest --json ARTICLE` process on a copy of the index, timed from start to
    exit, and its peak RSS; then whether `Engine.retrieve`, in another fresh process, finds the
    article for its title. On a copy, so the sweep's index stays synthetic chunks alone for the next
    size, and the bench's open Chroma client never shares its folder with another writer."""
    copy = settings.index.with_name(settings.index.name + "-update")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(settings.index, copy)
    updated, peak_file = settings.model_copy(update={"index": copy}), copy.with_name("update-peak-kb")
    try:
        command = [sys.executable, "-c", MEASURED_NEWSQA, str(peak_file), "ingest", "--json", str(article)]
        with timed() as spent:
            report = json.loads(run_child(command, updated, "newsqa ingest"))
        added = [o for o in report["articles"] if o["status"] == "added"]
        if len(added) != 1:  # the figure is one new article's, nothing else
            raise RuntimeError(f"newsqa ingest {article} added {len(added)} articles: {report['counts']}")
        retrieved = json.loads(run_child([sys.executable, "-c", RETRIEVED_IDS, added[0]["title"]], updated, "retrieve"))
        return spent.wall, int(peak_file.read_text()) / 1024, added[0]["article_id"] in retrieved
    finally:
        shutil.rmtree(copy)
        peak_file.unlink(missing_ok=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory. Read from /proc (Linux): getrusage's ru_maxrss survives
    exec, so a process started by a large one would report its parent's peak instead of its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def measure_queries(questions: list[str]) -> dict:
    """In this process: open the index, answer one question untimed (loads the model and the BM25
    index), then time `retrieve` and an extractive `ask` on every question."""
    from app.engine import Engine

    with timed() as first_answer:
        engine = Engine(Settings())
        engine.ask(questions[0])
    # A date filter that admits about half of the synthetic articles.
    since_midway = Filters(since=FIRST_DAY + timedelta(days=DAYS // 2))
    timings: dict[str, list[float]] = {"retrieve_ms": [], "filtered_retrieve_ms": [], "ask_ms": []}
    for question in questions:
        for key, run in (
            ("retrieve_ms", lambda: engine.retrieve(question)),
            ("filtered_retrieve_ms", lambda: engine.retrieve(question, filters=since_midway)),
            ("ask_ms", lambda: engine.ask(question)),
        ):
            with timed() as spent:
                run()
            timings[key].append(spent.ms)
    return {
        "open_and_first_answer_s": first_answer.wall,
        **{k: percentiles(v) for k, v in timings.items()},
        "questions": len(questions),
        "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    print(json.dumps(measure_queries(json.loads(Path(sys.argv[1]).read_text()))))
