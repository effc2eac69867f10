"""The measuring commands: `newsqa eval` (the eval suite, eval/suite.py) and `newsqa bench` (the
benchmarks, eval/bench/), each parser beside its handler. Both take `--json`, a flag: the figures as
JSON on stdout, or in FILE with `--out FILE`; `--report` names the Markdown report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.common import add_json_out, add_llm, out_has_json, positive, settings_from


def add_eval(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval",
        help="score retrieval, answers and refusals on eval datasets; fails on regression",
        description="Ask every question of each dataset (JSONL: id, question, answers, evidence, answerable, "
        "question_date; or id and turns for a conversation) and score retrieval (hit@1, hit@5, "
        "recall@5, mrr@10), answers (answer_contains, token_f1, citation_precision), refusals and "
        "latency. With no dataset, the project's own sets (eval/datasets/NAME/questions.jsonl, each "
        "over the articles in eval/datasets/NAME/articles/). Exits 1 when a metric falls below the "
        "baseline by more than its tolerance.",
    )
    parser.add_argument("datasets", nargs="*", metavar="DATASET.jsonl", help="eval sets; none: the project's own")
    parser.add_argument(
        "--articles",
        metavar="DIR",
        help="index this folder for the run (cached by its content "
        "in NEWSQA_EVAL_CACHE) instead of using the current index",
    )
    parser.add_argument(
        "--k",
        type=positive,
        metavar="N",
        help="passages the answer is written from (default NEWSQA_TOP_K); the retrieval metrics rank at least 10",
    )
    add_llm(
        parser,
        "; an LLM backend also judges the answers (judge_correct; NEWSQA_EVAL_JUDGE_VOTES=0 turns that off)",
    )
    add_json_out(
        parser,
        "the metrics and every question's result as JSON: printed on stdout (the table then goes to "
        "stderr), or written to FILE with --out FILE",
    )
    parser.add_argument("--report", metavar="OUT.md", help="write a Markdown report of the failed questions")
    parser.add_argument("--baseline", metavar="FILE", help="baseline to compare with (default: eval/baseline.json)")
    parser.add_argument("--update-baseline", action="store_true", help="write this run's figures as the baseline")
    parser.set_defaults(run=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from eval import suite

    if not out_has_json(args, "eval"):
        return 2
    options = suite.Options(
        datasets=[Path(p) for p in args.datasets],
        articles=Path(args.articles) if args.articles else None,
        k=args.k,
        json=args.json,
        out=args.out,
        report=Path(args.report) if args.report else None,
        baseline=Path(args.baseline) if args.baseline else suite.baseline.DEFAULT_FILE,
        update_baseline=args.update_baseline,
    )
    try:
        return suite.run(settings_from(args), options)
    except KeyboardInterrupt:
        print("interrupted: no report, JSON or baseline was written", file=sys.stderr)
        return 130


def add_bench(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        help="measure ingestion, retrieval quality, latency against index size; write BENCHMARKS.md",
        description="Benchmarks in one run, written to BENCHMARKS.md (--report) with a latency plot: ingestion of the "
        "dataset's articles and of generated ones against the raw embedding model and the LangChain "
        "tutorial pipeline (with both indexes' hit@5 and MRR@10 on the questions), `newsqa ingest` "
        "against the tutorial's program end to end (process start to exit; on the GPU too where torch "
        "sees one), the speed levers, retrieve/ask latency, peak RSS and disk at growing index sizes "
        "(synthetic chunks), and the time from `newsqa chat` start to its first answer. Each part "
        "replaces its own section of the report; hand-written text around them is kept. Needs the "
        "bench extra (pip install 'newsqa[bench]'). Works in a throw-away folder; the user's index is "
        "not touched.",
    )
    parser.add_argument("dataset", metavar="DATASET_DIR", help="folder with articles/ and questions.jsonl")
    parser.add_argument(
        "--report", default="BENCHMARKS.md", metavar="OUT.md", help="Markdown report (default BENCHMARKS.md)"
    )
    parser.add_argument("--plot", default="eval/results/benchmarks-latency.png", help="latency plot (PNG)")
    add_json_out(
        parser,
        "also every figure as JSON: printed on stdout at the end (the progress is on stderr), or written "
        "to FILE with --out FILE",
    )
    parser.add_argument("--work", metavar="DIR", help="keep the indexes here (default: a temporary folder)")
    parser.add_argument(
        "--synthetic-articles",
        type=positive,
        default=500,
        metavar="N",
        help="generated articles for the larger ingestion corpus (default 500)",
    )
    parser.add_argument(
        "--lever-articles",
        type=positive,
        default=200,
        metavar="N",
        help="of those, how many the speed levers are measured on (default 200)",
    )
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000,1000000",
        help="index sizes in chunks, comma-separated (default 1000,10000,100000,1000000)",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=30.0,
        metavar="MIN",
        help="skip a size whose build would take longer than this at the rate seen (default 30)",
    )
    parser.add_argument(
        "--scale-questions",
        type=positive,
        default=40,
        metavar="N",
        help="questions timed at each index size (default 40)",
    )
    parser.add_argument(
        "--e2e-articles",
        default="150,all",
        metavar="COUNTS",
        help="end to end: ingest the first N articles of DATASET_DIR/articles (by file name) "
        "with `newsqa ingest` and with the tutorial's program, for each N; 'all' for every "
        "article (default 150,all)",
    )
    parser.add_argument(
        "--only",
        metavar="PARTS",
        help="comma-separated parts to run: ingest, e2e, levers, scale, chat; the report keeps "
        "the sections of the parts not run",
    )
    parser.set_defaults(run=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from eval.bench import end_to_end
    from eval.bench import runner as bench

    if not out_has_json(args, "bench"):
        return 2
    try:
        sizes = bench.parse_sizes(args.sizes)
        e2e_articles = end_to_end.parse_counts(args.e2e_articles)
    except ValueError as error:
        print(f"newsqa: bench: {error}", file=sys.stderr)
        return 2
    options = bench.Options(
        dataset=Path(args.dataset),
        report=Path(args.report),
        plot=Path(args.plot),
        json=args.json,
        out=args.out,
        work=Path(args.work) if args.work else None,
        synthetic_articles=args.synthetic_articles,
        lever_articles=args.lever_articles,
        sizes=sizes,
        budget_minutes=args.budget_minutes,
        scale_questions=args.scale_questions,
        e2e_articles=e2e_articles,
        parts=tuple(args.only.split(",")) if args.only else bench.PARTS,
        command=f"newsqa bench {args.dataset} --synthetic-articles {args.synthetic_articles} --lever-articles "
        f"{args.lever_articles} --sizes {args.sizes} --budget-minutes {args.budget_minutes:g} "
        f"--scale-questions {args.scale_questions} --e2e-articles {args.e2e_articles}"
        + (f" --only {args.only}" if args.only else ""),
    )
    return bench.run(settings_from(args), options)
