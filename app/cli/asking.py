"""The asking commands: `newsqa ask` on the terminal and `newsqa chat`, the chat page; each parser
beside its handler, then how an answer is printed."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.common import add_json, add_llm, day, engine_from
from app.documents import printable


def add_ask(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ask",
        help="answer a question from the indexed articles, with citations",
        description="Answer QUESTION from the indexed articles, citing them as [1], [2]; a question they do not "
        'answer is refused. Without QUESTION: a conversation, where follow-ups ("what does he '
        'think?") carry the earlier questions; Ctrl-D or Ctrl-C ends it. The answer is streamed, '
        "then its sources.",
    )
    parser.add_argument("question", nargs="?", help="the question; none: ask interactively")
    parser.add_argument(
        "--as-of",
        type=day,
        metavar="DATE",
        help="answer as on this day (YYYY-MM-DD): later "
        'articles are left out and "last week" counts from it (default: today)',
    )
    parser.add_argument(
        "--source", metavar="S", help="only articles from source S (its name, or a part of it; case ignored)"
    )
    parser.add_argument("--since", type=day, metavar="DATE", help="only articles published on or after DATE")
    parser.add_argument("--until", type=day, metavar="DATE", help="only articles published on or before DATE")
    add_llm(parser)
    add_json(
        parser,
        "print the answer as one JSON document (question, "
        "answer, refused, citations, backend, timings, warnings, sentences with whether the articles "
        "say each; for a refusal, the closest passages)",
    )
    parser.set_defaults(run=cmd_ask)


def cmd_ask(args: argparse.Namespace) -> int:
    from app.documents import Filters

    if args.since and args.until and args.since > args.until:
        print(f"newsqa: --since {args.since} is after --until {args.until}", file=sys.stderr)
        return 2
    engine = engine_from(args)
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
        print(f"newsqa: {printable(str(error))}", file=sys.stderr)
        return 2


def add_chat(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
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
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 for the network, which needs a login)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    login = parser.add_mutually_exclusive_group()
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
    add_llm(parser)
    parser.set_defaults(run=cmd_chat)


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
    engine = engine_from(args)
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


# ANSI bold, for the asked-for phrase when stdout is a terminal.
BOLD = ("\033[1m", "\033[0m")


def _answer_text(text: str) -> str:
    """An answer's text for the terminal: its line breaks kept, any other control character escaped."""
    return printable(text, "\n")


def _describe(title: str, source: str, published: str | None, where: str) -> str:
    about = ", ".join(part for part in (source, published) if part)
    return printable(f"{title}{f' ({about})' if about else ''}  {where}".rstrip())


def _print_sources(answer, bold: bool) -> None:
    from app.sentences import closing_quote
    from app.ui.render import mark_phrases

    for c in answer.citations:
        published = c.published.isoformat() if c.published else None
        print(f"  [{c.number}] {_describe(c.title, c.source, published, c.url or c.file)}")
        phrase = [c.highlight] if bold and c.highlight else []
        sentence = mark_phrases(c.sentence, phrase, *BOLD, _answer_text).strip()
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
    with `bold`, its asked-for phrases bold, and each sentence no passage says followed by "(not found
    in the articles)". When the LLM fails mid-answer the text starts again with the fallback answer,
    on a new line."""
    from app.ui.render import NOT_FOUND_NOTE, mark_phrases, phrase_spans, unsupported_notes

    shown = latest = ""
    for part in parts:
        if isinstance(part, str):
            shown = _continued(shown, latest)
            print(_answer_text(latest[len(shown) :]), end="", flush=True)
            shown, latest = latest, part
            continue
        shown = _continued(shown, latest)
        notes = unsupported_notes(part, NOT_FOUND_NOTE)
        # Resolving the markers cleaned what was shown, or a sentence shown is not in the articles:
        # the answer again, whole.
        if not part.answer.startswith(shown) or any(at < len(shown) for at, _ in notes):
            print()
            shown = ""
        spans = phrase_spans(part) if bold else []
        print(mark_phrases(part.answer, spans, *BOLD, _answer_text, since=len(shown), notes=notes))
        for warning in part.warnings:
            print(f"warning: {printable(warning)}")
        if part.citations:
            print("Sources:")
            _print_sources(part, bold)
        _print_closest(part)
        read_as = f"; read as: {part.standalone_question}" if part.standalone_question != part.question else ""
        print(printable(f"({part.backend}, {part.timings.get('total', 0) / 1000:.1f} s{read_as})"))
        return part


def _ask_one(engine, args: argparse.Namespace, filters, question: str, history) -> str:
    """Answer one question on stdout; the answer text, for the conversation's history."""
    if args.json:
        answer = engine.ask(question, history=history, as_of=args.as_of, filters=filters)
        print(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return answer.answer
    parts = engine.stream(question, history=history, as_of=args.as_of, filters=filters)
    return _print_streamed(parts, bold=sys.stdout.isatty()).answer
