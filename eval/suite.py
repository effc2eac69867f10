"""`newsqa eval`: which datasets, over which index, then the table, the files and the baseline verdict."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.engine import Engine
from app.settings import Settings
from eval import baseline, dataset, output, runner
from eval.indexes import engine_for
from eval.judge import judge_for

OK, REGRESSED = 0, 1


@dataclass(frozen=True)
class Options:
    datasets: Sequence[Path] = ()  # none: the project's own sets, each over its own articles
    articles: Path | None = None  # index this folder for the run; None: the current index
    k: int | None = None  # passages the answerer is given; None: Settings.top_k
    json: bool = False  # the results as JSON: into `out`, or on stdout (the table then on stderr)
    out: Path | None = None
    report: Path | None = None
    baseline: Path = baseline.DEFAULT_FILE
    update_baseline: bool = False
    progress: bool | None = None  # None: a bar on a terminal only


def load_datasets(options: Options) -> list[dataset.Dataset]:
    if not options.datasets:
        if options.articles:
            raise RuntimeError("--articles needs a dataset: the project's own sets bring their own articles")
        sets = dataset.own_sets()
        if not sets:
            raise RuntimeError(f"no eval sets found in {dataset.OWN_SETS}")
        return sets
    missing = [str(p) for p in options.datasets if not p.is_file()]
    if missing:
        raise RuntimeError(f"dataset not found: {', '.join(missing)}")
    loaded = [dataset.load(path, options.articles) for path in options.datasets]
    names = [d.name for d in loaded]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RuntimeError(f"two datasets are named {', '.join(repeated)}: the results would overwrite each other")
    return loaded


def run(settings: Settings, options: Options) -> int:
    """Run the eval; 0, or 1 when a metric fell below its baseline (RuntimeError for bad input)."""
    sets = load_datasets(options)
    saved = baseline.read(options.baseline)  # a bad file is reported now, not after the run
    judge = judge_for(settings)
    engines: dict[Path | None, Engine] = {}
    results = []
    for data in sets:
        for problem in data.problems:
            print(f"{data.path}: {problem} (skipped)", file=sys.stderr)
        if not data.items:
            print(f"{data.path}: no valid questions, skipped", file=sys.stderr)
            continue
        if data.articles not in engines:
            engines[data.articles] = _engine(settings, data.articles, options.progress)
        results.append(runner.run(engines[data.articles], data, options.k, judge, options.progress))
    if not results:
        raise RuntimeError("no dataset had a valid question")

    regressions = (
        []
        if options.update_baseline
        else [r for result in results for r in baseline.compare(saved, result.name, result.metrics)]
    )
    human = sys.stderr if options.json and options.out is None else sys.stdout  # stdout is then the JSON's
    print(output.table(results, {(r.dataset, r.metric) for r in regressions}), file=human)
    _notes(saved, results, options)
    if options.json and options.out is not None:
        output.write(options.out, output.json_text(results))
    elif options.json:
        print(output.json_text(results), end="")
    if options.report:
        output.write(options.report, output.report(results, [str(r) for r in regressions]))
    if options.update_baseline:
        for result in results:
            saved = baseline.updated(saved, result.name, result.metrics, result.backend)
        baseline.write(options.baseline, saved)
        print(f"baseline written: {options.baseline} ({', '.join(r.name for r in results)})", file=human)
        return OK
    for regression in regressions:
        print(f"regression: {regression}", file=sys.stderr)
    return REGRESSED if regressions else OK


def _engine(settings: Settings, articles: Path | None, progress: bool | None) -> Engine:
    if articles is not None:
        return engine_for(articles, settings, progress)
    engine = Engine(settings)
    if engine.index.count() == 0:
        raise RuntimeError(
            f"the index at {settings.index} is empty: ingest articles first, "
            "or pass --articles DIR to index a dataset's own articles for the run"
        )
    return engine


def _notes(saved: dict, results: Sequence[runner.DatasetResult], options: Options) -> None:
    """Say which questions ended in an error, and when the baseline has nothing to compare with or
    was measured with another backend."""
    for result in results:
        errors = [q for q in result.questions if q.error]
        if errors:
            print(
                f"{result.name}: {len(errors)} questions ended in an error, e.g. {errors[0].question.id}: "
                f"{errors[0].error}",
                file=sys.stderr,
            )
        entry = saved["datasets"].get(result.name)
        if options.update_baseline:
            continue
        if entry is None:
            print(
                f"{result.name}: no baseline in {options.baseline} (write one with --update-baseline)", file=sys.stderr
            )
        elif entry.get("backend") and result.backend and entry["backend"] != result.backend:
            print(
                f"{result.name}: the baseline was measured with the {entry['backend']} backend, "
                f"this run used {result.backend}",
                file=sys.stderr,
            )
