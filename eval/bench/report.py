"""BENCHMARKS.md and its plot, from the results of one `newsqa bench` run."""

from __future__ import annotations

from pathlib import Path

TARGETS_NOTE = "Targets are measured here, not asserted by tests: the machine is shared and timings are noisy."


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _f(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def write(results: dict, out: Path, plot: Path) -> None:
    """Each part run replaces its own section of `out`, between markers; the sections of parts not
    run and any hand-written text outside the markers stay as they are."""
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    for part, render in (
        ("ingest", lambda t: _ingest(results, t)),
        ("e2e", lambda t: _e2e(results["e2e"], t)),
        ("levers", lambda t: _levers(results["levers"])),
        ("scale", lambda t: _scale(results["scale"], plot, out, t)),
        ("chat", lambda t: _chat(results)),
    ):
        if part in results:
            targets: list[list] = []
            lines = render(targets)
            lines[1:1] = ["", _run_line(results), ""]  # under the section's heading
            if targets:
                lines += ["Targets: " + TARGETS_NOTE, ""] + _table(["target", "measured", "met"], targets)
            lines += [f"Reproduce: `{results['command']}`"]
            text = _replace_section(text, part, "\n".join(lines))
    out.write_text(text)


def _run_line(results: dict) -> str:
    machine = results["machine"]
    return (
        f"From one run of `{results['command']}`, started {results['started']}, {results['seconds'] / 60:.0f} "
        f"min; {machine['cpus']} CPUs; embedding backend {machine['embedding_backend']}"
        f"{backend_choice(machine.get('embedding_choice'))} on "
        f"{machine['embedding_threads']} thread(s) a process; load average at the start "
        f"{', '.join(f'{x:.1f}' for x in machine['load_average'])}. Figures of one run compare as ratios. Wall "
        "time counts what a user waits; CPU time (every thread of the process and of its child processes) "
        "is the steadier figure on a shared machine."
    )


def backend_choice(choice: dict | None) -> str:
    """How the CPU's ONNX variant was chosen, with auto's recorded timings; empty for torch."""
    if choice is None:
        return ""
    if choice["source"] == "asked":
        return " (NEWSQA_EMBEDDING_BACKEND)"
    if choice["source"] == "fallback":
        return f" (auto, not timed: {choice['reason']})"
    cpu = choice["cpu"]
    return (
        f" (auto's choice for this CPU, {cpu['name']} [{' '.join(cpu['flags']) or 'none of the int8 flags'}]: "
        f"int8 {choice['int8_ms']:.1f} ms a chunk-sized text, fp32 {choice['fp32_ms']:.1f} ms, fastest of "
        f"{choice['rounds']} rounds on {choice['threads']} thread(s), timed {choice['measured']})"
    )


def _replace_section(text: str, part: str, section: str) -> str:
    begin, end = f"<!-- newsqa bench: {part} -->", f"<!-- newsqa bench: end of {part} -->"
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        return text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def _chat(results: dict) -> list[str]:
    chat = results["chat"]
    return [
        "## Chat start-up",
        f"`newsqa chat` over the real corpus (extractive answers): the port accepted connections after "
        f"{chat['port_open_s']:.1f} s and the first answer came through `/ask` (gradio_client) "
        f"{chat['first_answer_s']:.1f} s after the process started (imports, embedding model, BM25 index, "
        "page). Loading the embedding model alone took "
        f"{results['model_load_s']:.1f} s in this run.",
        "",
    ]


def _e2e(e2e: dict, targets: list[list]) -> list[str]:
    lines = [
        "## Ingestion end to end, real articles",
        "`newsqa ingest DIR` and the LangChain tutorial's program (`python -m eval.bench.tutorial_ingest DIR "
        "STORE`: `RecursiveCharacterTextSplitter(1000, 200)`, `HuggingFaceEmbeddings` over the same local "
        "all-MiniLM-L6-v2, `Chroma.from_documents`), each from process start to exit into a fresh index, on "
        "the first N articles of the folder by file name. CPU time includes each program's children "
        "(newsqa's embedding processes) and threads (the tutorial's torch); CPU / wall above 1 means more "
        "than one core worked. The raw model row is newsqa's embedding model alone in one process on "
        "what newsqa embeds for those chunks (each article's title header once, each chunk's new "
        "sentences), models loaded.",
        "",
    ]
    rows, quality_rows = [], []
    for run in e2e["runs"]:
        raw, ours, tutorial = run["raw"], run["newsqa"], run["tutorial"]
        for row in (raw, ours, tutorial):
            rows.append(
                [
                    run["label"],
                    row["name"],
                    f"{row['chunks']:,}",
                    _f(row["wall_s"]),
                    _f(row["cpu_s"]),
                    _f(row["cpu_s"] / row["wall_s"], 2),
                    _f(row["chunks_per_s"]),
                    _f(row["chunks_per_s"] / raw["chunks_per_s"], 2),
                ]
            )
        for name, q in run["quality"].items():
            quality_rows.append([run["label"], name, q["questions"], _f(q["hit@5"], 3), _f(q["mrr@10"], 3)])
        speedup = tutorial["wall_s"] / ours["wall_s"]
        targets.append(
            [
                f"{run['label']}: `newsqa ingest` >= 3x faster than the tutorial end to end (wall)",
                f"{speedup:.2f}x (CPU time {tutorial['cpu_s'] / ours['cpu_s']:.2f}x)",
                _met(speedup >= 3),
            ]
        )
        ours_q, tutorial_q = run["quality"]["newsqa"], run["quality"]["LangChain tutorial"]
        if not ours_q["questions"]:
            continue  # no question's evidence lies in these articles
        targets.append(
            [
                f"{run['label']}: hit@5 and MRR@10 equal or better than the tutorial",
                f"{ours_q['hit@5']:.3f} vs {tutorial_q['hit@5']:.3f}; {ours_q['mrr@10']:.3f} vs "
                f"{tutorial_q['mrr@10']:.3f}",
                _met(ours_q["hit@5"] >= tutorial_q["hit@5"] and ours_q["mrr@10"] >= tutorial_q["mrr@10"]),
            ]
        )
    lines += _table(
        ["articles", "pipeline", "chunks", "wall s", "CPU s", "CPU / wall", "chunks/s", "chunks/s / raw"], rows
    )
    lines += [
        "Retrieval quality of the two indexes, on the questions whose evidence lies in those articles "
        "(newsqa hybrid as of each question's date; the tutorial's `similarity_search(k=10)`):",
        "",
    ]
    lines += _table(["articles", "pipeline", "questions", "hit@5", "MRR@10"], quality_rows)
    gpu = e2e["gpu"]
    if gpu is None:
        lines += ["GPU: not measured: torch sees no CUDA device on this machine.", ""]
    else:
        raw, ours = gpu["raw"], gpu["newsqa"]
        lines += [f"GPU ({gpu['device']}), every article:", ""]
        lines += _table(
            ["pipeline", "chunks", "wall s", "CPU s", "chunks/s"],
            [
                [r["name"], f"{r['chunks']:,}", _f(r["wall_s"]), _f(r["cpu_s"]), _f(r["chunks_per_s"])]
                for r in (raw, ours)
            ],
        )
        lines += [
            f"The raw model's {raw['chunks_per_s']:,.0f} chunks/s against the {gpu['reference_chunks_per_s']:,} "
            "a second of sentence-transformers on one H200 (fp16, batch 1024).",
            "",
        ]
    return lines


def _ingest(results: dict, targets: list[list]) -> list[str]:
    ingest = results["ingest"]
    lines = [
        "## Ingestion",
        "Each corpus four ways, models loaded beforehand (newsqa's model took "
        f"{results['model_load_s']:.1f} s to load, the tutorial's HuggingFaceEmbeddings "
        f"{results.get('tutorial_model_load_s', 0):.1f} s): the raw embedding model encoding newsqa's chunk "
        "texts in one encode loop; `newsqa ingest` into a fresh index (read, chunk, embed, write to Chroma, "
        "build BM25), where an ingest of more than one batch embeds in a child process while the "
        "ingesting process reads, chunks and writes; the same with the embedding in the ingesting "
        "process; the LangChain tutorial pipeline, `RecursiveCharacterTextSplitter(chunk_size=1000, "
        "chunk_overlap=200)` + `HuggingFaceEmbeddings` (the same local all-MiniLM-L6-v2) + "
        "`Chroma.from_documents`, on the same parsed articles.",
        "",
    ]
    for corpus, rows in ingest["corpora"].items():
        ours, tutorial = rows["newsqa"], rows["tutorial"]
        lines += [f"### {corpus}", ""]
        lines += _table(
            ["pipeline", "articles", "chunks", "wall s", "CPU s", "articles/s", "chunks/s", "wall / raw", "CPU / raw"],
            [
                [
                    r["name"],
                    r["articles"],
                    r["chunks"],
                    _f(r["wall_s"]),
                    _f(r["cpu_s"]),
                    _f(r["articles_per_s"], 2),
                    _f(r["chunks_per_s"], 1),
                    _f(r.get("vs_raw_wall", 1.0), 2),
                    _f(r.get("vs_raw_cpu", 1.0), 2),
                ]
                for r in rows.values()
            ],
        )
        for row in (ours, rows["newsqa in process"]):
            lines += [
                f"- {row['name']}, CPU time: "
                + ", ".join(f"{part} {cpu / row['cpu_s']:.0%}" for part, cpu in row["cpu_parts"].items())
                + "."
            ]
        lines += [
            "",
            f"The tutorial took {tutorial['wall_s'] / ours['wall_s']:.2f}x newsqa's wall time "
            f"({tutorial['cpu_s'] / ours['cpu_s']:.2f}x its CPU time) for "
            f"{tutorial['chunks'] / ours['chunks']:.2f}x its chunks.",
            "",
        ]
        for measure, key in (("CPU", "cpu"), ("wall", "wall")):
            overhead, speedup = ours[f"vs_raw_{key}"] - 1, tutorial[f"{key}_s"] / ours[f"{key}_s"]
            targets.append(
                [
                    f"{corpus}: ingestion overhead <= 10% over raw embedding, {measure} time",
                    f"{overhead:+.0%}",
                    _met(overhead <= 0.10),
                ]
            )
            targets.append(
                [f"{corpus}: >= 3x faster than the tutorial, {measure} time", f"{speedup:.2f}x", _met(speedup >= 3)]
            )
    quality = ingest["quality"]
    if quality:
        lines += [
            "### Retrieval quality on the real corpus's questions",
            "",
            "Questions with evidence; the ranked articles' file names against it (the eval suite's "
            "definitions); newsqa through `Engine.retrieve` (hybrid), the tutorial through "
            "`similarity_search(k=10)`.",
            "",
        ]
        lines += _table(
            ["pipeline", "hit@5", "MRR@10"],
            [[name, _f(q["hit@5"], 3), _f(q["mrr@10"], 3)] for name, q in quality.items()],
        )
        ours, tutorial = quality["newsqa"], quality["LangChain tutorial"]
        targets.append(
            [
                "hit@5 and MRR@10 equal or better than the tutorial",
                f"{ours['hit@5']:.3f} vs {tutorial['hit@5']:.3f}; {ours['mrr@10']:.3f} vs {tutorial['mrr@10']:.3f}",
                _met(ours["hit@5"] >= tutorial["hit@5"] and ours["mrr@10"] >= tutorial["mrr@10"]),
            ]
        )
    return lines


def _levers(rows: list[dict]) -> list[str]:
    lines = ["## Levers", "Speed on the synthetic sample, quality (hit@5 / MRR@10) on the real corpus's questions.", ""]
    table = []
    for row in rows:
        change = row["after"] / row["before"] if row["before"] else None
        quality = ""
        if "quality" in row:
            quality = "; ".join(
                f"{name}: {q['hit@5']:.3f} / {q['mrr@10']:.3f} ({q['chunks']} chunks)"
                for name, q in row["quality"].items()
            )
        if "cosine_to_torch" in row:
            quality += (
                f"; mean cosine to the torch vectors {row['cosine_to_torch']:.3f}; first use (export, and "
                f"auto's timing) {row['export_s']:.0f} s"
            )
        table.append(
            [
                row["lever"],
                f"{_f(row['before'], 1)} {row['unit']}",
                f"{_f(row['after'], 1)} {row['unit']}",
                f"{change:.2f}x" if change else "n/a",
                quality,
            ]
        )
    return lines + _table(["lever", "before", "after", "after / before", "quality"], table)


def _scale(scale: dict, plot: Path, out: Path, targets: list[list]) -> list[str]:
    points = scale["points"]
    lines = [
        "## Index size",
        "One collection grown through the sizes with synthetic chunks (recombined real sentences; vectors "
        "mixed from two real chunk vectors plus noise), written through `Index.write` in batches of 5,000 "
        "chunks; at each size a fresh process opens the index and asks every question once untimed "
        "(model and BM25 load), then times `Engine.retrieve`, `Engine.retrieve` with a `since` date filter "
        "that admits about half of the articles, and an extractive `Engine.ask` on each. "
        "Peak RSS is that process's; disk is the index folder (Chroma and BM25). Last at each size, on a "
        "copy of the index (the sweep's own index stays synthetic for the next size), a fresh `newsqa ingest` "
        "process adds one real article of the dataset: update s is that process from start to exit "
        "(imports, model, the article embedded and written, BM25 brought up to date), update peak RSS its "
        "peak resident memory (its own VmHWM), and found says whether `Engine.retrieve` in another "
        "fresh process then ranked the article among its passages for the article's title.",
        "",
    ]
    rows = []
    for p in points:
        q = p["query"]
        rows.append(
            [
                f"{p['chunks']:,}",
                _f(p["build_seconds"]),
                _f(p["lexical_seconds"]),
                _f(p["disk_mb"]),
                f"{q['retrieve_ms']['p50']:.0f} / {q['retrieve_ms']['p95']:.0f}",
                f"{q['filtered_retrieve_ms']['p50']:.0f} / {q['filtered_retrieve_ms']['p95']:.0f}",
                f"{q['ask_ms']['p50']:.0f} / {q['ask_ms']['p95']:.0f}",
                _f(q["peak_rss_mb"], 0),
                _f(q["open_and_first_answer_s"]),
                _f(p["update_s"]),
                _f(p["update_peak_rss_mb"], 0),
                _met(p["update_found"]),
            ]
        )
    lines += _table(
        [
            "chunks",
            "build s (added)",
            "BM25 rebuild s",
            "disk MB",
            "retrieve ms p50 / p95",
            "retrieve with a date filter ms p50 / p95",
            "ask ms p50 / p95",
            "peak RSS MB",
            "open + first answer s",
            "update s (one article)",
            "update peak RSS MB",
            "found",
        ],
        rows,
    )
    if scale["stopped"]:
        lines += [f"Sweep {scale['stopped']}.", ""]
    if points:
        _plot(points, plot)
        lines += [f"![latency against index size]({Path(_relative(plot, out.parent))})", ""]
    if len(points) >= 2:
        first, last = points[0], points[-1]
        growth = last["query"]["retrieve_ms"]["p50"] / first["query"]["retrieve_ms"]["p50"]
        size = last["chunks"] / first["chunks"]
        lines += [
            f"From {first['chunks']:,} to {last['chunks']:,} chunks ({size:,.0f}x), retrieve p50 grew {growth:.2f}x.",
            "",
        ]
        targets.append(
            [
                f"latency grows sub-linearly ({first['chunks']:,} -> {last['chunks']:,} chunks)",
                f"{growth:.2f}x for {size:,.0f}x",
                _met(growth < size),
            ]
        )
    at_100k = next((p for p in points if p["chunks"] == 100_000), None)
    if at_100k:
        targets.append(
            [
                "retrieve p50 <= 30 ms at 100k chunks",
                f"{at_100k['query']['retrieve_ms']['p50']:.0f} ms",
                _met(at_100k["query"]["retrieve_ms"]["p50"] <= 30),
            ]
        )
        targets.append(
            [
                "peak RSS < 2 GB at 100k chunks",
                f"{at_100k['query']['peak_rss_mb']:,.0f} MB",
                _met(at_100k["query"]["peak_rss_mb"] < 2048),
            ]
        )
    return lines


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


def _plot(points: list[dict], plot: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    sizes = [p["chunks"] for p in points]
    figure, axes = plt.subplots(figsize=(9, 4.2), dpi=100)
    for name, key, colour in (
        ("retrieve", "retrieve_ms", "tab:blue"),
        ("retrieve, date filter", "filtered_retrieve_ms", "tab:green"),
        ("extractive ask", "ask_ms", "tab:orange"),
    ):
        axes.plot(sizes, [p["query"][key]["p50"] for p in points], "o-", color=colour, label=f"{name} p50")
        axes.plot(sizes, [p["query"][key]["p95"] for p in points], "o--", color=colour, alpha=0.6, label=f"{name} p95")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("chunks in the index")
    axes.set_ylabel("latency, ms")
    axes.set_title("newsqa query latency against index size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.tight_layout()
    plot.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(plot)
    plt.close(figure)
