"""The `newsqa` command."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from pydantic import ValidationError

from app import feed_commands
from app.settings import Settings

EPILOG = """Settings come from NEWSQA_* environment variables (NEWSQA_INDEX, NEWSQA_EMBEDDING_MODEL,
NEWSQA_LLM, ...) and an optional TOML config file (NEWSQA_CONFIG, else ~/.config/newsqa/config.toml);
the options above override both."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "index": args.index,
        "embedding_model": args.embedding_model,
        "chroma_url": args.chroma_url,
        "collection": args.collection,
        "llm": getattr(args, "llm", None),
    }
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _engine(args: argparse.Namespace):
    from app.engine import Engine  # heavy imports wait until a command needs them

    return Engine(_settings(args))


# sysexits' EX_TEMPFAIL: `--no-wait` found another process writing to the index; try again later.
BUSY = 75


def cmd_ingest(args: argparse.Namespace) -> int:
    from app.index import IndexBusy

    engine = _engine(args)
    try:
        report = engine.add(args.sources, progress=False if args.json else None, wait=not args.no_wait)
    except KeyboardInterrupt:
        print("interrupted: what was written is whole; run the same command again to finish", file=sys.stderr)
        return 130
    except IndexBusy as error:
        print(f"newsqa: {error}", file=sys.stderr)
        return BUSY
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.summary())
    return 0 if report.ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    articles = _engine(args).articles()
    if args.json:
        print(json.dumps([a.as_dict() for a in articles], indent=2))
        return 0
    if not articles:
        print("no articles indexed; add some with: newsqa ingest PATH_OR_URL")
        return 0
    # Columns under a header; an undated article's date is left blank; the title, last, runs on.
    rows = [("ID", "DATE", "CHUNKS", "SOURCE", "TITLE")]
    rows += [
        (a.id, a.published.isoformat() if a.published else "", str(a.chunks), a.source or a.file, a.title)
        for a in articles
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].ljust(widths[3]),
            row[4],
        ]
        print("  ".join(cells).rstrip())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from app.index import IndexBusy

    engine = _engine(args)
    missing = 0
    for key in args.keys:
        try:
            removed = engine.remove(key, wait=not args.no_wait)
        except IndexBusy as error:
            print(f"newsqa: {error}", file=sys.stderr)
            return BUSY
        if not removed:
            print(f"not found: {key} (see `newsqa list` for ids and files)", file=sys.stderr)
            missing += 1
        for article in removed:
            print(f"removed {article.id}  {article.title}")
    return 1 if missing else 0


def cmd_check(args: argparse.Namespace) -> int:
    """Count the chunks stored without their vector: invisible to `list` and BM25, never found by the
    embedding search, and (their article incomplete) written again by the next ingest of their source."""
    index = _engine(args).index
    vectorless = index.chunks_without_vector()
    articles = {c.metadata["article_id"]: c.metadata for c in vectorless}
    print(f"{index.count()} chunks, {len(vectorless)} without a vector, in {len(articles)} articles")
    for article_id, metadata in articles.items():
        print(f"  {article_id}  {metadata['title']}  [{metadata.get('origin') or metadata.get('file')}]")
    if articles:
        print("ingest these articles' sources again to repair them")
    return 1 if articles else 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


# ANSI bold, for the asked-for phrase when stdout is a terminal.
BOLD = ("\033[1m", "\033[0m")


def _describe(title: str, source: str, published: str | None, where: str) -> str:
    about = ", ".join(part for part in (source, published) if part)
    return f"{title}{f' ({about})' if about else ''}  {where}".rstrip()


def _print_sources(answer, bold: bool) -> None:
    from app.sentences import closing_quote
    from app.ui.render import mark_phrases

    for c in answer.citations:
        published = c.published.isoformat() if c.published else None
        print(f"  [{c.number}] {_describe(c.title, c.source, published, c.url or c.file)}")
        phrase = [c.highlight] if bold and c.highlight else []
        sentence = mark_phrases(c.sentence, phrase, *BOLD).strip()
        print(f'      "{sentence}{closing_quote(c.sentence)}"')  # a quotation it opens, closed


def _print_closest(answer) -> None:
    """The passages nearest a refused question, for the reader to judge the refusal."""
    closest = answer.as_dict()["closest"]
    if closest:
        print("Closest articles:")
    for p in closest:
        print(f"  - {_describe(p['title'], p['source'], p['published'], p['url'] or p['file'])}")


def _continued(shown: str, text: str) -> str:
    """What of `text` is already on screen: `shown`, or nothing when `text` does not continue it (the
    LLM failed mid-answer), which is said on a new line."""
    if text.startswith(shown):
        return shown
    print("\n[the LLM failed; the extractive answer follows]")
    return ""


def _print_streamed(parts, bold: bool = False):
    """Print the answer as it is written, then where it comes from; the Answer. Each text is printed
    when the next part comes, so the last one is printed from the Answer: its markers resolved and,
    with `bold`, its asked-for phrases bold. When the LLM fails mid-answer the text starts again with
    the fallback answer, on a new line."""
    from app.ui.render import mark_phrases, phrase_spans

    shown = latest = ""
    for part in parts:
        if isinstance(part, str):
            shown = _continued(shown, latest)
            print(latest[len(shown) :], end="", flush=True)
            shown, latest = latest, part
            continue
        shown = _continued(shown, latest)
        if not part.answer.startswith(shown):  # resolving the markers cleaned what was shown
            print()
            shown = ""
        print(mark_phrases(part.answer, phrase_spans(part) if bold else [], *BOLD, since=len(shown)))
        for warning in part.warnings:
            print(f"warning: {warning}")
        if part.citations:
            print("Sources:")
            _print_sources(part, bold)
        _print_closest(part)
        read_as = f"; read as: {part.standalone_question}" if part.standalone_question != part.question else ""
        print(f"({part.backend}, {part.timings.get('total', 0) / 1000:.1f} s{read_as})")
        return part


def _ask_one(engine, args: argparse.Namespace, filters, question: str, history) -> str:
    """Answer one question on stdout; the answer text, for the conversation's history."""
    if args.json:
        answer = engine.ask(question, history=history, as_of=args.as_of, filters=filters)
        print(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return answer.answer
    parts = engine.stream(question, history=history, as_of=args.as_of, filters=filters)
    return _print_streamed(parts, bold=sys.stdout.isatty()).answer


def cmd_ask(args: argparse.Namespace) -> int:
    from app.documents import Filters

    if args.since and args.until and args.since > args.until:
        print(f"newsqa: --since {args.since} is after --until {args.until}", file=sys.stderr)
        return 2
    engine = _engine(args)
    filters = Filters(source=args.source, since=args.since, until=args.until)
    try:
        if args.question:
            _ask_one(engine, args, filters, args.question, ())
            return 0
        history: list[tuple[str, str]] = []
        print("Ask about the indexed articles; follow-up questions keep the conversation. Ctrl-D to quit.")
        while True:
            question = input("\n> ").strip()
            if question:
                history.append((question, _ask_one(engine, args, filters, question, tuple(history))))
    except (EOFError, KeyboardInterrupt):
        print()
        return 0
    except ValueError as error:
        print(f"newsqa: {error}", file=sys.stderr)
        return 2


def cmd_chat(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.ui.auth import choose_login
    from app.ui.server import serve

    if args.auth:
        print(
            "newsqa: warning: --auth shows the password to anyone who can list processes; "
            "prefer --auth-file FILE or NEWSQA_AUTH",
            file=sys.stderr,
        )
    engine = _engine(args)
    configured = engine.settings.auth.get_secret_value() if engine.settings.auth else None
    try:
        credentials = choose_login(
            args.host, args.auth, Path(args.auth_file) if args.auth_file else None, configured, args.no_auth
        )
    except ValueError as error:
        print(f"newsqa: {error}", file=sys.stderr)
        return 2
    try:
        serve(engine, args.host, args.port, credentials)
    except OSError as error:  # the port is taken, or the host cannot be bound
        print(f"newsqa: cannot serve on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eval import suite

    options = suite.Options(
        datasets=[Path(p) for p in args.datasets],
        articles=Path(args.articles) if args.articles else None,
        k=args.k,
        json=Path(args.json) if args.json else None,
        report=Path(args.report) if args.report else None,
        baseline=Path(args.baseline) if args.baseline else suite.baseline.DEFAULT_FILE,
        update_baseline=args.update_baseline,
    )
    try:
        return suite.run(_settings(args), options)
    except KeyboardInterrupt:
        print("interrupted: no report, JSON or baseline was written", file=sys.stderr)
        return 130


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eval.bench import end_to_end
    from eval.bench import runner as bench

    try:
        sizes = bench.parse_sizes(args.sizes)
        e2e_articles = end_to_end.parse_counts(args.e2e_articles)
    except ValueError as error:
        print(f"newsqa: bench: {error}", file=sys.stderr)
        return 2
    options = bench.Options(
        dataset=Path(args.dataset),
        out=Path(args.out),
        plot=Path(args.plot),
        json=Path(args.json) if args.json else None,
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
    return bench.run(_settings(args), options)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _version() -> str:
    """The installed distribution's version (pyproject.toml's, once installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsqa")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsqa", description="Ask questions of a folder of news articles; cited answers, offline.", epilog=EPILOG
    )
    parser.add_argument("--version", action="version", version=f"newsqa {_version()}")
    parser.add_argument("--index", help="index folder (NEWSQA_INDEX)")
    parser.add_argument("--embedding-model", help="sentence-transformers model name or path (NEWSQA_EMBEDDING_MODEL)")
    parser.add_argument("--chroma-url", help="use a Chroma server at http://HOST:PORT (NEWSQA_CHROMA_URL)")
    parser.add_argument("--collection", help="Chroma collection name (NEWSQA_COLLECTION)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser(
        "ingest",
        help="add or update articles: files, folders, URLs, RSS/Atom feeds",
        description="Index articles. Files: .txt (headline line, then text), .md (YAML front matter), "
        ".html, .json, .jsonl, .xml/.rss/.atom feeds. Folders are read recursively. "
        "Unchanged articles are skipped; changed ones replace their old version.",
    )
    ingest.add_argument("sources", nargs="+", metavar="SOURCE", help="file, folder, http(s) URL or feed")
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    ingest.add_argument(
        "--no-wait",
        action="store_true",
        help="when another ingest or remove is writing to "
        f"the index, fail at once (exit code {BUSY}) instead of waiting for it",
    )
    ingest.set_defaults(run=cmd_ingest)

    listing = commands.add_parser("list", help="list the indexed articles")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(run=cmd_list)

    remove = commands.add_parser("remove", help="remove articles by id, file name, path or URL")
    remove.add_argument("keys", nargs="+", metavar="ID_OR_FILE")
    remove.add_argument(
        "--no-wait",
        action="store_true",
        help="when another ingest or remove is writing to "
        f"the index, fail at once (exit code {BUSY}) instead of waiting for it",
    )
    remove.set_defaults(run=cmd_remove)

    check = commands.add_parser(
        "check",
        help="find chunks stored without their vector; exit code 1 if any",
        description="Read every chunk's vector. A chunk without one is left out of "
        "the embedding search; the next ingest of its article's source "
        "writes the article again.",
    )
    check.set_defaults(run=cmd_check)

    feed_commands.register(commands, _engine)

    evaluate = commands.add_parser(
        "eval",
        help="score retrieval, answers and refusals on eval datasets; fails on regression",
        description="Ask every question of each dataset (JSONL: id, question, answers, evidence, answerable, "
        "question_date; or id and turns for a conversation) and score retrieval (hit@1, hit@5, "
        "recall@5, mrr@10), answers (answer_contains, token_f1, citation_precision), refusals and "
        "latency. With no dataset, the project's own sets (eval/datasets/NAME/questions.jsonl, each "
        "over the articles in eval/datasets/NAME/articles/). Exits 1 when a metric falls below the "
        "baseline by more than its tolerance.",
    )
    evaluate.add_argument("datasets", nargs="*", metavar="DATASET.jsonl", help="eval sets; none: the project's own")
    evaluate.add_argument(
        "--articles",
        metavar="DIR",
        help="index this folder for the run (cached by its content "
        "in NEWSQA_EVAL_CACHE) instead of using the current index",
    )
    evaluate.add_argument(
        "--k",
        type=_positive,
        metavar="N",
        help="passages the answer is written from (default NEWSQA_TOP_K); the retrieval metrics rank at least 10",
    )
    evaluate.add_argument(
        "--llm",
        metavar="BACKEND",
        help="answer backend for this run (NEWSQA_LLM): auto, "
        "extractive, ollama:MODEL, openai:MODEL, llamacpp:PATH.gguf; an LLM backend also "
        "judges the answers (judge_correct; NEWSQA_EVAL_JUDGE_VOTES=0 turns that off)",
    )
    evaluate.add_argument("--json", metavar="OUT", help="write metrics and every question's result as JSON")
    evaluate.add_argument("--report", metavar="OUT.md", help="write a Markdown report of the failed questions")
    evaluate.add_argument("--baseline", metavar="FILE", help="baseline to compare with (default: eval/baseline.json)")
    evaluate.add_argument("--update-baseline", action="store_true", help="write this run's figures as the baseline")
    evaluate.set_defaults(run=cmd_eval)

    ask = commands.add_parser(
        "ask",
        help="answer a question from the indexed articles, with citations",
        description="Answer QUESTION from the indexed articles, citing them as [1], [2]; a question they do not "
        'answer is refused. Without QUESTION: a conversation, where follow-ups ("what does he '
        'think?") carry the earlier questions; Ctrl-D or Ctrl-C ends it. The answer is streamed, '
        "then its sources.",
    )
    ask.add_argument("question", nargs="?", help="the question; none: ask interactively")
    ask.add_argument(
        "--as-of",
        type=_date,
        metavar="DATE",
        help="answer as on this day (YYYY-MM-DD): later "
        'articles are left out and "last week" counts from it (default: today)',
    )
    ask.add_argument(
        "--source", metavar="S", help="only articles from source S (its name, or a part of it; case ignored)"
    )
    ask.add_argument("--since", type=_date, metavar="DATE", help="only articles published on or after DATE")
    ask.add_argument("--until", type=_date, metavar="DATE", help="only articles published on or before DATE")
    ask.add_argument(
        "--llm",
        metavar="BACKEND",
        help="answer backend: auto, extractive, ollama:MODEL, openai:MODEL, llamacpp:PATH.gguf (NEWSQA_LLM)",
    )
    ask.add_argument(
        "--json",
        action="store_true",
        help="print the answer as one JSON document (question, "
        "answer, refused, citations, backend, timings, warnings; for a refusal, the closest "
        "passages)",
    )
    ask.set_defaults(run=cmd_ask)

    benchmark = commands.add_parser(
        "bench",
        help="measure ingestion, retrieval quality, latency against index size; write BENCHMARKS.md",
        description="Benchmarks in one run, written to BENCHMARKS.md with a latency plot: ingestion of the "
        "dataset's articles and of generated ones against the raw embedding model and the LangChain "
        "tutorial pipeline (with both indexes' hit@5 and MRR@10 on the questions), `newsqa ingest` "
        "against the tutorial's program end to end (process start to exit; on the GPU too where torch "
        "sees one), the speed levers, retrieve/ask latency, peak RSS and disk at growing index sizes "
        "(synthetic chunks), and the time from `newsqa chat` start to its first answer. Each part "
        "replaces its own section of the report; hand-written text around them is kept. Needs the "
        "bench extra (pip install 'newsqa[bench]'). Works in a throw-away folder; the user's index is "
        "not touched.",
    )
    benchmark.add_argument("dataset", metavar="DATASET_DIR", help="folder with articles/ and questions.jsonl")
    benchmark.add_argument("--out", default="BENCHMARKS.md", help="Markdown report (default BENCHMARKS.md)")
    benchmark.add_argument("--plot", default="eval/results/benchmarks-latency.png", help="latency plot (PNG)")
    benchmark.add_argument("--json", metavar="OUT", help="also write every figure as JSON")
    benchmark.add_argument("--work", metavar="DIR", help="keep the indexes here (default: a temporary folder)")
    benchmark.add_argument(
        "--synthetic-articles",
        type=_positive,
        default=500,
        metavar="N",
        help="generated articles for the larger ingestion corpus (default 500)",
    )
    benchmark.add_argument(
        "--lever-articles",
        type=_positive,
        default=200,
        metavar="N",
        help="of those, how many the speed levers are measured on (default 200)",
    )
    benchmark.add_argument(
        "--sizes",
        default="1000,10000,100000,1000000",
        help="index sizes in chunks, comma-separated (default 1000,10000,100000,1000000)",
    )
    benchmark.add_argument(
        "--budget-minutes",
        type=float,
        default=30.0,
        metavar="MIN",
        help="skip a size whose build would take longer than this at the rate seen (default 30)",
    )
    benchmark.add_argument(
        "--scale-questions",
        type=_positive,
        default=40,
        metavar="N",
        help="questions timed at each index size (default 40)",
    )
    benchmark.add_argument(
        "--e2e-articles",
        default="150,all",
        metavar="COUNTS",
        help="end to end: ingest the first N articles of DATASET_DIR/articles (by file name) "
        "with `newsqa ingest` and with the tutorial's program, for each N; 'all' for every "
        "article (default 150,all)",
    )
    benchmark.add_argument(
        "--only",
        metavar="PARTS",
        help="comma-separated parts to run: ingest, e2e, levers, scale, chat; the report keeps "
        "the sections of the parts not run",
    )
    benchmark.set_defaults(run=cmd_bench)

    chat = commands.add_parser(
        "chat",
        help="serve the chat page (Gradio) and print its address",
        description="Serve the chat page until Ctrl+C: cited answers streamed, sources beside them (under each "
        "answer on a phone), a choice of backend and model, and a Library tab to add and delete "
        "articles. When the page is ready its address is printed on the last line, and opened in "
        "the browser when there is a display (NEWSQA_OPEN_BROWSER=0: never). Scripts can call its "
        "endpoints with gradio_client: /ask, and the Library's /upload, /add_urls, /add_text, "
        "/delete and /refresh_feeds. The same server speaks the OpenAI chat API at /v1 (models "
        "newsqa and newsqa-extractive; the login as the API key, USER:PASS) and answers POST /api/ask "
        "with the JSON of `newsqa ask --json`. Followed feeds (`newsqa follow`) are refreshed in "
        "the background on their schedule.",
    )
    chat.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 for the network, which needs a login)",
    )
    chat.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    login = chat.add_mutually_exclusive_group()
    login.add_argument(
        "--auth",
        metavar="USER:PASS",
        help="require this login (visible in the process list: prefer --auth-file or NEWSQA_AUTH)",
    )
    login.add_argument(
        "--auth-file",
        metavar="FILE",
        help="require the login on the one USER:PASS line of FILE; "
        "refused unless only its owner may read it (chmod 600)",
    )
    login.add_argument(
        "--no-auth",
        action="store_true",
        help="no login, even on a network address (without it, a --host other than loopback needs a login)",
    )
    chat.add_argument(
        "--llm", help="answer backend: auto, extractive, ollama:MODEL, openai:MODEL, llamacpp:PATH.gguf (NEWSQA_LLM)"
    )
    chat.set_defaults(run=cmd_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        print(f"newsqa: bad setting: {problems}", file=sys.stderr)
    except RuntimeError as error:
        print(f"newsqa: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
