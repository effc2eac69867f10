"""`newsqa bench`: ingestion against its two anchors (the raw embedding model, the LangChain tutorial
pipeline), in process and end to end, the speed levers, query latency / memory / disk against index
size, and chat start-up.

All figures of one run come from one process on one machine, so they compare as ratios; the results
go to BENCHMARKS.md (tables and a plot) and, when asked, to JSON.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.embedders import make_embedder
from app.embedding import Embedder
from app.onnx_model import OnnxEmbedder
from app.settings import Settings
from app.timing import Timing, timed
from eval.bench import backends, corpus, end_to_end, ingestion, report, scale
from eval.bench.ingestion import IngestRun
from eval.dataset import load

PARTS = ("ingest", "e2e", "levers", "scale", "chat")


@dataclass
class Options:
    dataset: Path  # a folder with articles/ and questions.jsonl (the eval format)
    report: Path = Path("BENCHMARKS.md")
    plot: Path = Path("eval/results/benchmarks-latency.png")
    json: bool = False  # every figure as JSON: into `out`, or on stdout
    out: Path | None = None
    work: Path | None = None  # None: a temporary folder, removed at the end
    synthetic_articles: int = 500
    lever_articles: int = 200
    sizes: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000, 1_000_000])
    budget_minutes: float = 30.0
    scale_questions: int = 40  # timed at each size, spread over the question set
    e2e_articles: list[int | None] = field(default_factory=lambda: [150, None])  # None: every article
    parts: tuple[str, ...] = PARTS
    command: str = ""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(settings: Settings, options: Options) -> int:
    articles_folder, questions_file = options.dataset / "articles", options.dataset / "questions.jsonl"
    if not articles_folder.is_dir() or not questions_file.is_file():
        raise RuntimeError(f"{options.dataset} must hold articles/ and questions.jsonl")
    unknown = set(options.parts) - set(PARTS)
    if unknown:
        raise RuntimeError(f"unknown bench part(s): {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    if options.work:
        options.work.mkdir(parents=True, exist_ok=True)
        return _run(settings, options, options.work, articles_folder, questions_file)
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-") as work:
        return _run(settings, options, Path(work), articles_folder, questions_file)


def _run(settings: Settings, options: Options, work: Path, articles_folder: Path, questions_file: Path) -> int:
    with timed() as spent:
        results = _measure(settings, options, work, articles_folder, questions_file)
    results["seconds"] = spent.wall
    if options.json and options.out is not None:
        options.out.write_text(json.dumps(results, indent=2, default=str))
    report.write(results, options.report, options.plot)
    log(f"wrote {options.report}" + (f" and {options.plot}" if "scale" in results else ""))
    if options.json and options.out is None:
        print(json.dumps(results, indent=2, default=str))
    return 0


def _measure(settings: Settings, options: Options, work: Path, articles_folder: Path, questions_file: Path) -> dict:
    """Every part asked for, measured: the figures of the report."""
    settings = settings.model_copy(update={"chroma_url": None, "llm": "extractive"})
    results: dict = {"command": options.command, "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    questions = load(questions_file).questions
    real = corpus.read_articles(articles_folder)
    sentences = corpus.sentences_of(real)

    log("loading the embedding model")
    with timed() as model_load:
        embedder = make_embedder(settings)
        embedder.encode(["warm up"])
    results["model_load_s"] = model_load.wall
    results["machine"] = machine(settings)

    synthetic = work / "synthetic"
    if "ingest" in options.parts or "levers" in options.parts:
        log(f"writing {options.synthetic_articles} synthetic articles")
        corpus.write_articles(synthetic, options.synthetic_articles, sentences)
    if "ingest" in options.parts:
        results["ingest"] = ingest_part(
            settings,
            embedder,
            work,
            {articles_folder.parent.name: articles_folder, f"synthetic ({options.synthetic_articles})": synthetic},
            questions,
            results,
        )
    if "e2e" in options.parts:
        results["e2e"] = end_to_end.run(settings, articles_folder, questions, options.e2e_articles, work, log)
    if "levers" in options.parts:
        results["levers"] = levers(
            settings, embedder, work, articles_folder, synthetic, options.lever_articles, questions
        )
    if "scale" in options.parts:
        log("scale: encoding the real chunks the synthetic vectors are mixed from")
        vectors = embedder.encode(ingestion.embedding_plan(real, settings, embedder).texts)
        questions_json = work / "questions.json"
        step = max(1, len(questions) // options.scale_questions)
        questions_json.write_text(json.dumps([q.question for q in questions[::step][: options.scale_questions]]))
        points, stopped = scale.sweep(
            settings.model_copy(update={"index": work / "scale", "collection": "bench-scale"}),
            options.sizes,
            corpus.SyntheticChunks(sentences, vectors),
            questions_json,
            min(p for p in articles_folder.iterdir() if p.is_file()),  # the article each size's update adds
            options.budget_minutes * 60,
            log,
        )
        results["scale"] = {"points": [asdict(p) for p in points], "stopped": stopped}
    if "chat" in options.parts:
        results["chat"] = chat_start(settings, work, articles_folder, questions[0].question, embedder)
    return results


def machine(settings: Settings) -> dict:
    # The CPU's backend, which the end-to-end runs use on any machine: auto's choice, read from its record.
    cpu = make_embedder(settings.model_copy(update={"embedding_device": "cpu"}))
    return {
        "cpus": os.cpu_count(),
        "embedding_backend": cpu.backend,
        "embedding_choice": cpu.choice if isinstance(cpu, OnnxEmbedder) else None,
        "embedding_threads": settings.embedding_threads or os.cpu_count(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }


def _run_dict(run: IngestRun, raw: Timing | None = None) -> dict:
    row = {
        "name": run.name,
        "articles": run.articles,
        "chunks": run.chunks,
        "wall_s": run.time.wall,
        "cpu_s": run.time.cpu,
        **run.rates(),
        "cpu_parts": run.cpu_parts,
    }
    if raw:
        row["vs_raw_wall"], row["vs_raw_cpu"] = run.time.wall / raw.wall, run.time.cpu / raw.cpu
    return row


def ingest_part(
    settings: Settings, embedder: Embedder, work: Path, corpora: dict[str, Path], questions, results: dict
) -> dict:
    """Per corpus: raw embedding, newsqa (as configured, and embedding in process), the tutorial; then
    both indexes of the real corpus scored."""
    import torch

    # The tutorial's torch gets the threads newsqa's model gets: the same share of the machine.
    torch.set_num_threads(settings.embedding_threads or os.cpu_count())
    log("loading the tutorial's HuggingFaceEmbeddings")
    with timed() as tutorial_load:
        embeddings = ingestion.tutorial_embeddings()
        embeddings.embed_query("warm up")
    results["tutorial_model_load_s"] = tutorial_load.wall
    out: dict = {}
    quality: dict = {}
    for number, (name, folder) in enumerate(corpora.items()):
        articles = corpus.read_articles(folder)
        plan = ingestion.embedding_plan(articles, settings, embedder)
        log(f"ingest {name}: raw embedding of {len(plan.texts)} texts of {len(plan)} chunks")
        raw = ingestion.encode_raw(plan.texts, embedder)
        raw_run = IngestRun("raw embedding (what newsqa embeds, one encode loop)", len(articles), len(plan), raw)
        log(f"ingest {name}: newsqa")
        ours, engine = ingestion.ingest_ours(
            folder, settings.model_copy(update={"index": work / f"ours-{number}"}), embedder
        )
        log(f"ingest {name}: newsqa, embedding in this process")
        in_process, _ = ingestion.ingest_ours(
            folder,
            settings.model_copy(update={"index": work / f"ours-here-{number}", "ingest_processes": 0}),
            embedder,
            "newsqa, embedding in this process (NEWSQA_INGEST_PROCESSES=0)",
        )
        log(f"ingest {name}: LangChain tutorial")
        tutorial, store = ingestion.ingest_tutorial(articles, embeddings, work / f"tutorial-{number}")
        out[name] = {
            "raw": _run_dict(raw_run),
            "newsqa": _run_dict(ours, raw),
            "newsqa in process": _run_dict(in_process, raw),
            "tutorial": _run_dict(tutorial, raw),
        }
        if number == 0:  # the real corpus has the questions
            log("quality: scoring both indexes on the questions")
            quality = {
                "newsqa": ingestion.retrieval_quality(ingestion.ours_ranked(engine), questions),
                "LangChain tutorial": ingestion.retrieval_quality(ingestion.tutorial_ranked(store), questions),
            }
    return {"corpora": out, "quality": quality}


def levers(
    settings: Settings, embedder: Embedder, work: Path, real_folder: Path, synthetic: Path, count: int, questions
) -> list[dict]:
    """Each lever's before and after: speed on `count` synthetic articles, quality on the real ones."""
    sample = corpus.read_articles(synthetic)[:count]
    texts = ingestion.embedding_plan(sample, settings, embedder).texts
    rows = []

    def variant(**changes) -> tuple[Settings, Embedder]:
        changed = settings.model_copy(update=changes)
        other = make_embedder(changed)
        other.encode(["warm up"])
        return changed, other

    def scored(label: str, variant_settings: Settings, variant_embedder: Embedder) -> dict:
        run, engine = ingestion.ingest_ours(
            real_folder, variant_settings.model_copy(update={"index": work / f"lever-{label}"}), variant_embedder
        )
        return {
            "cpu_s": run.time.cpu,
            "chunks": run.chunks,
            **ingestion.retrieval_quality(ingestion.ours_ranked(engine), questions),
        }

    log("levers: the torch backend's batching")
    torch_settings, torch_embedder = variant(embedding_backend="torch")
    in_order = ingestion.encode_raw(texts, torch_embedder, sort_by_length=False)
    by_length = ingestion.encode_raw(texts, torch_embedder)
    rows.append(
        {
            "lever": "torch: batching by length (raw encode)",
            "before": in_order.cpu,
            "after": by_length.cpu,
            "unit": "CPU s",
        }
    )
    _, large = variant(embedding_backend="torch", embedding_batch_size=64)
    rows.append(
        {
            "lever": f"torch: batches of {torch_embedder.batch_size} instead of 64 (raw encode)",
            "before": ingestion.encode_raw(texts, large).cpu,
            "after": by_length.cpu,
            "unit": "CPU s",
        }
    )

    rows += thread_rows(settings, texts, [q.question for q in questions[:40]])

    log("levers: no overlap between chunks")
    no_overlap = settings.model_copy(update={"chunk_overlap_tokens": 0})
    fewer = ingestion.embedding_plan(sample, no_overlap, embedder).texts
    rows.append(
        {
            "lever": "no overlap (chunk_overlap_tokens 40 -> 0)",
            "before": len(texts),
            "after": len(fewer),
            "unit": "chunks",
            "quality": {
                "overlap": scored("overlap", settings, embedder),
                "no overlap": scored("no-overlap", no_overlap, embedder),
            },
        }
    )

    log("levers: the ONNX export in fp32 against int8")
    onnx = backends.compare(settings, texts, ("onnx-int8", "onnx-fp32"), rounds=1)
    rows.append(
        {
            "lever": "onnx-fp32 instead of onnx-int8 (raw encode)",
            "before": onnx["onnx-int8"].cpu,
            "after": onnx["onnx-fp32"].cpu,
            "unit": "CPU s",
        }
    )

    log(f"levers: the {embedder.backend} backend against torch")
    with timed() as export:
        variant(model_cache=work / "models")  # into a fresh cache: the one-off export and timing, timed
    rows.append(
        {
            "lever": f"{embedder.backend} backend instead of torch (raw encode)",
            "before": by_length.cpu,
            "after": ingestion.encode_raw(texts, embedder).cpu,
            "unit": "CPU s",
            "export_s": export.wall,
            "cosine_to_torch": ingestion.embedding_agreement(
                torch_embedder.encode(texts[:256]), embedder.encode(texts[:256])
            ),
            "quality": {
                "torch": scored("torch", torch_settings, torch_embedder),
                embedder.backend: scored("default", settings, embedder),
            },
        }
    )
    return rows


def thread_rows(settings: Settings, texts: list[str], questions: list[str]) -> list[dict]:
    """One thread for the embedding model against one a core, in wall time: on a busy machine threads
    that wait on each other can cost more than they bring."""
    figures = {}
    for threads in (os.cpu_count(), 1):
        log(f"levers: {threads} embedding thread(s)")
        embedder = make_embedder(settings.model_copy(update={"embedding_threads": threads}))
        embedder.encode(["warm up"])
        single = []
        for question in questions:
            with timed() as spent:
                embedder.encode([question])
            single.append(spent.wall * 1000)
        figures[threads] = (ingestion.encode_raw(texts, embedder).wall, float(np.percentile(single, 50)))
    many = os.cpu_count()
    return [
        {
            "lever": f"1 embedding thread instead of {many} (raw encode, wall)",
            "before": figures[many][0],
            "after": figures[1][0],
            "unit": "s",
        },
        {
            "lever": f"1 embedding thread instead of {many} (one question, p50)",
            "before": figures[many][1],
            "after": figures[1][1],
            "unit": "ms",
        },
    ]


def chat_start(settings: Settings, work: Path, articles_folder: Path, question: str, embedder: Embedder) -> dict:
    from eval.bench import chat

    index = work / "chat-index"
    ingestion.ingest_ours(articles_folder, settings.model_copy(update={"index": index}), embedder)
    log("chat: starting newsqa chat and asking through /ask")
    answered, listening = chat.seconds_to_first_answer(index, question)
    return {"first_answer_s": answered, "port_open_s": listening}


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(float(s)) for s in text.split(",") if s.strip()})
    if not sizes or sizes[0] < 1:
        raise ValueError("sizes must be positive numbers of chunks, comma-separated")
    return sizes
