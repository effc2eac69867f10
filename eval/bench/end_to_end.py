"""Ingestion end to end: `newsqa ingest DIR` against the LangChain tutorial's program
(eval/bench/tutorial_ingest.py), each timed from process start to exit into a fresh index, as a user waits
for them: imports, model loading, reading, chunking, embedding, writing.

For each article count (the first N files of the folder, sorted by name): wall and CPU time of both
processes (CPU time of the process and of every child it waited for: newsqa's embedding children,
the tutorial's torch threads), chunks a second against the raw embedding model on what newsqa
embeds for them, in one process, and retrieval quality of both indexes on the questions whose evidence lies in
those articles. Where torch sees a CUDA device, the whole folder once more on the GPU, against the
raw model on the GPU and the reference figure of MiniLM-L6 on an H200.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from app.embedders import cuda_available, make_embedder
from app.engine import Engine
from app.settings import Settings
from app.timing import Timing, timed
from eval.bench import corpus, ingestion
from eval.bench.ingestion import children_cpu
from eval.dataset import Question

ROOT = Path(__file__).resolve().parent.parent
# sentence-transformers' MiniLM-L6, fp16, batch 1024, on one NVIDIA H200: chunks of ~150 words a second.
H200_RAW_CHUNKS_PER_S = 2460


def first_articles(folder: Path, count: int | None, work: Path) -> Path:
    """A folder of links to the first `count` article files of `folder` by name (None: all of them)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())[:count]
    subset = work / f"articles-{len(files)}"
    subset.mkdir(parents=True, exist_ok=True)
    for path in files:
        link = subset / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return subset


def run_process(command: list[str], env: dict[str, str] | None = None) -> Timing:
    """Wall and CPU time of a program from its start to its exit (its waited-for children included)."""
    cpu_before = children_cpu()
    with timed() as spent:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    spent.cpu = children_cpu() - cpu_before  # this process's own CPU time is not the program's
    return spent


def newsqa_ingest(articles: Path, index: Path, env: dict[str, str] | None = None) -> tuple[Timing, int]:
    timing = run_process([sys.executable, "-m", "app.cli", "--index", str(index), "ingest", str(articles)], env)
    return timing, Engine(Settings(index=index)).index.count()


def tutorial_ingest(articles: Path, persist: Path) -> tuple[Timing, object]:
    from langchain_chroma import Chroma

    timing = run_process([sys.executable, "-m", "eval.bench.tutorial_ingest", str(articles), str(persist)])
    return timing, Chroma(persist_directory=str(persist), embedding_function=ingestion.tutorial_embeddings())


def _row(name: str, articles: int, chunks: int, timing: Timing) -> dict:
    return {
        "name": name,
        "articles": articles,
        "chunks": chunks,
        "wall_s": timing.wall,
        "cpu_s": timing.cpu,
        "chunks_per_s": chunks / timing.wall,
    }


def _quality(ranked: Callable[[Question], list[str]], questions: list[Question]) -> dict:
    return {**ingestion.retrieval_quality(ranked, questions), "questions": len(questions)}


def run(
    settings: Settings,
    articles: Path,
    questions: list[Question],
    counts: list[int | None],
    work: Path,
    log: Callable[[str], None],
) -> dict:
    embedder = make_embedder(settings.model_copy(update={"embedding_device": "cpu"}))
    embedder.encode(["warm up"])
    out: dict = {"runs": [], "gpu": None}
    for count in counts:
        subset = first_articles(articles, count, work)
        parsed = corpus.read_articles(subset)
        label = f"first {len(parsed)}"
        plan = ingestion.embedding_plan(parsed, settings, embedder)
        log(f"end to end, {label}: the raw embedding model on {len(plan.texts)} texts of {len(plan)} chunks")
        raw = ingestion.encode_raw(plan.texts, embedder)
        log(f"end to end, {label}: newsqa ingest")
        ours, chunks = newsqa_ingest(subset, work / f"e2e-newsqa-{len(parsed)}", {"NEWSQA_EMBEDDING_DEVICE": "cpu"})
        log(f"end to end, {label}: the tutorial")
        tutorial, store = tutorial_ingest(subset, work / f"e2e-tutorial-{len(parsed)}")
        files = {p.name for p in subset.iterdir()}
        asked = [q for q in questions if q.evidence and set(q.evidence) <= files]
        engine = Engine(settings.model_copy(update={"index": work / f"e2e-newsqa-{len(parsed)}"}))
        out["runs"].append(
            {
                "label": label,
                "articles": len(parsed),
                "raw": _row("raw embedding model, one process (what newsqa embeds)", len(parsed), len(plan), raw),
                "newsqa": _row("`newsqa ingest`", len(parsed), chunks, ours),
                "tutorial": _row("LangChain tutorial", len(parsed), store._collection.count(), tutorial),
                "quality": {
                    "newsqa": _quality(ingestion.ours_ranked(engine), asked),
                    "LangChain tutorial": _quality(ingestion.tutorial_ranked(store), asked),
                },
            }
        )
    if cuda_available():
        out["gpu"] = gpu_run(settings, articles, work, log)
    return out


def gpu_run(settings: Settings, articles: Path, work: Path, log: Callable[[str], None]) -> dict:
    """The whole folder ingested on the GPU, and the raw model on the GPU on what newsqa embeds."""
    gpu = make_embedder(settings.model_copy(update={"embedding_device": "cuda"}))
    gpu.encode(["warm up"])
    parsed = corpus.read_articles(articles)
    plan = ingestion.embedding_plan(parsed, settings, gpu)
    log(f"GPU: the raw embedding model on {len(plan.texts)} texts of {len(plan)} chunks")
    raw = ingestion.encode_raw(plan.texts, gpu)
    log("GPU: newsqa ingest")
    ours, chunks = newsqa_ingest(articles, work / "e2e-newsqa-gpu", {"NEWSQA_EMBEDDING_DEVICE": "cuda"})
    import torch

    return {
        "device": torch.cuda.get_device_name(0),
        "raw": _row("raw embedding model on the GPU (what newsqa embeds)", len(parsed), len(plan), raw),
        "newsqa": _row("`newsqa ingest` on the GPU", len(parsed), chunks, ours),
        "reference_chunks_per_s": H200_RAW_CHUNKS_PER_S,
    }


def parse_counts(text: str) -> list[int | None]:
    """ "150,all" -> [150, None]."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part == "all" or (part.isdigit() and int(part) > 0) for part in parts):
        raise ValueError(f"--e2e-articles {text!r}: give positive numbers or 'all', comma-separated")
    return [None if part == "all" else int(part) for part in parts]
