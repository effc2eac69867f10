"""Query latency, memory and disk against the size of the index.

One collection grows through the sizes (synthetic chunks written through Index.write, as ingestion
writes them); at each size a fresh process opens the index and asks the questions, so its peak
RSS is what a process serving an index of that size needs, lexical index and model included.
Run as `python -m eval.bench.scale INDEX_DIR QUESTIONS_JSON` that process prints its figures as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from app.documents import Filters
from app.embedders import embedding_label
from app.index import Index
from app.settings import Settings
from app.timing import timed
from eval.bench.corpus import DAYS, FIRST_DAY, SyntheticChunks

ARTICLES_PER_WRITE = 1000


@dataclass
class SizePoint:
    chunks: int
    build_seconds: float  # writing the chunks added since the previous size
    lexical_seconds: float  # rebuilding the BM25 index from the collection
    disk_mb: float
    query: dict  # from the query process: latency percentiles, peak RSS


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
    settings: Settings, sizes: list[int], source: SyntheticChunks, questions_file: Path, budget_seconds: float, log
) -> tuple[list[SizePoint], str]:
    """Grow one index through `sizes`, measuring at each; stops before a size whose build would take
    longer than `budget_seconds` at the rate seen so far. Returns the points and why it stopped early."""
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
        points.append(SizePoint(index.count(), build, lexical.wall, folder_mb(settings.index), query))
    return points, ""


def run_query_process(settings: Settings, questions_file: Path) -> dict:
    env = dict(
        os.environ, NEWSQA_INDEX=str(settings.index), NEWSQA_COLLECTION=settings.collection, NEWSQA_LLM="extractive"
    )
    env.pop("NEWSQA_CHROMA_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "eval.bench.scale", str(questions_file)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"query process failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
