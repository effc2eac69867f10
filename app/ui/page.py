"""The chat page: its layout and what each control does. The work itself is the engine's; this
module turns clicks into engine calls and engine records into what the page shows.

Chat tab: answers stream in; Stop (in place of Ask while an answer is written) ends one, and
Regenerate writes the last one again with the model chosen now. The [n] markers link to the Sources
panel beside the chat (newest answer first: title, date, source, the passage with its supporting
sentence highlighted); below NARROW the panel gives way to a Sources fold under each answer. A
title opens the article's URL, else its stored text (app/ui/article_route.py). Follow-ups get the
conversation; it is kept in the browser, encrypted with a key kept in the index folder, so a reload
or a restart keeps it. The backend and model pickers list what answers now (app/models_available.py)
and hold for the conversation, with no restart; the filters are source, dates, as-of day and the
number of passages. "Try asking" offers questions about the newest articles. The extractive
answer stands in for a failing LLM, its reason under it; any other failure is one line, never a
traceback.

Library tab: the articles, searchable, with Delete; adding by upload, by URL or feed (http(s) only:
the page never reads paths on the server's disk) or by pasted text, kept under the index folder by
app/ui/library.py; the followed feeds, with Refresh now. What depends on the index or the reachable
models (counts, examples, menus) is read at every page load, so a reload shows what a command-line
ingest added.

Blocks rather than ChatInterface: the sources panel, the filters and the Library need inputs and
outputs of their own, and the conversation is kept as (question, answer text) pairs apart from what
the chat shows (linked markers, warnings), so follow-ups get the engine's own text."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date

import gradio as gr

from app import models_available
from app.documents import Answer, Filters
from app.engine import Engine
from app.settings import Settings
from app.ui import library, render

log = logging.getLogger(__name__)

ALL_SOURCES = "All sources"
# Where the conversation is kept in the browser (localStorage), so that a reload keeps it. Answers kept
# under the first key, "newsqa-conversation", may show article markup as markup: they are not read.
CONVERSATION_KEY = "newsqa-conversation-2"
# Below this width the sources panel moves from beside the chat to under each answer.
NARROW = "768px"
CSS = """
#status { font-size: 0.9em; }
#status p { margin: 0; }
.nq-sources { max-height: 70vh; overflow-y: auto; }
.nq-answer-sources h4 { margin: 0.8em 0 0.3em; }
.nq-source { border-left: 3px solid var(--color-accent); padding: 0.2em 0 0.2em 0.6em; margin-bottom: 0.8em; }
.nq-source-title { font-weight: 600; }
.nq-number { font-weight: 700; }  /* the accent orange reads at under 3:1 */
/* The theme's subdued grey and link blue read at under 3:1 on the highlight (and the grey on white):
   the body text colour instead, links told by their underline. */
.nq-meta { font-size: 0.85em; }
.nq-source-title a { color: inherit; text-decoration: underline; }
.nq-passage { margin: 0.3em 0 0; font-size: 0.9em; white-space: pre-line; }
/* Highlights carry their own text colour: the theme's text colour is light in dark mode and would
   not read on a light highlight. Both pairs are over 4.5:1 (WCAG AA); the browser test measures it. */
.nq-passage mark, .nq-source mark { background: #fde68a; color: #1f2937; padding: 0 0.1em; }
.nq-answer-phrase { font-weight: 700; color: inherit; }
/* After an answer sentence no passage says (app/support.py): its own colours, over 4.5:1 in both themes. */
.nq-unsupported { background: #fee2e2; color: #450a0a; border-radius: 0.3em; padding: 0 0.3em; font-size: 0.85em; }
/* The source a marker leads to: the theme's own soft accent, light in the light theme and dark in
   the dark one, so the theme's text colours keep reading on it. */
.nq-source:target { background: var(--color-accent-soft); }
.nq-closest-heading { font-weight: 600; margin: 0.3em 0 0.5em; }
.nq-closest { border-left-style: dashed; }  /* not a source of the answer */
.nq-none { opacity: 0.7; }
.nq-inline-sources summary { cursor: pointer; font-weight: 600; }
@media (min-width: NARROW) { .nq-inline-sources { display: none; } }
@media (max-width: NARROW) {
  #sources-column { display: none; }
  #header-row { flex-direction: column; gap: 0; }  /* the status on one line of its own */
}
""".replace("NARROW", NARROW)
# The system's own fonts: the bundled web font's bold set capitals in another face.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)


@dataclass(frozen=True)
class Turn:
    """One question and its finished answer, as the conversation keeps them (in the browser, as a dict)."""

    question: str
    answer: str  # the answer text, what follow-ups are given as history
    shown: str  # the answer as the chat shows it (linked markers, notes, sources folded under it)
    sources: str  # its sources block for the panel


def _turns(saved: list[dict] | None) -> list[Turn]:
    """The conversation kept in the browser; what does not read as one (an older page's) is dropped."""
    try:
        return [Turn(**entry) for entry in saved or []]
    except TypeError:
        return []


def _saved(turns: list[Turn]) -> list[dict]:
    return [asdict(turn) for turn in turns]


def _messages(turns: list[Turn]) -> list[dict]:
    messages = []
    for turn in turns:
        messages += [
            {"role": "user", "content": render.unlinked_markdown(turn.question)},
            {"role": "assistant", "content": turn.shown},
        ]
    return messages


def _day(value: str | float | None, name: str) -> date | None:
    """A date control's value (YYYY-MM-DD, perhaps with a time) as a date; empty is None."""
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise gr.Error(f"{name}: expected a date as YYYY-MM-DD, got {value!r}") from None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def browser_secret(settings: Settings) -> str:
    """The key the conversation is encrypted with in the browser, kept in the index folder (owner
    only) so that a restarted page still reads the conversations it kept."""
    path = settings.index / "page-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(secrets.token_urlsafe(32))
        except FileExistsError:  # another page process wrote it first: use theirs
            pass
    return path.read_text(encoding="utf-8").strip()


class Page:
    """The handlers of the page, bound to one engine."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.settings = engine.settings

    # -- loading: every load reads the index and the reachable models afresh

    def load(self, saved: list[dict] | None, chosen: str | None = None) -> tuple:
        """Outputs: chat, sources panel, status, examples, source filter, backend menu, model menu, models.
        The model is the one the kept conversation was using (`chosen`) while it is still offered,
        else the configured one."""
        turns = _turns(saved)
        articles = self.engine.articles()
        configured = models_available.configured_spec(self.engine)
        offered = models_available.available(self.settings, configured)
        if chosen and any(chosen == value for _, value in offered.models.get(models_available.kind_of(chosen), [])):
            configured = chosen
        kind = models_available.kind_of(configured)
        return (
            _messages(turns),
            render.sources_panel([t.sources for t in turns]),
            render.status_line(configured, len(articles)),
            gr.Dataset(samples=[[q] for q in library.example_questions(articles)]),
            gr.Dropdown(choices=[ALL_SOURCES, *library.source_names(articles)]),
            gr.Dropdown(choices=offered.kinds(), value=kind),
            gr.Dropdown(choices=offered.models[kind], value=configured),
            offered.models,
        )

    @staticmethod
    def models_of(kind: str, models: dict[str, list]) -> dict:
        """The model menu for a backend kind: its models, the first chosen."""
        choices = [tuple(choice) for choice in models.get(kind, [])]
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    # -- chat

    def respond(
        self,
        question: str,
        saved: list[dict] | None,
        source: str,
        since: str | None,
        until: str | None,
        as_of: str | None,
        passages: float,
        llm: str | None,
        offered: dict[str, list],
    ) -> Iterator[tuple]:
        """Stream the answer into the chat; outputs: chat, kept conversation, sources panel, status, question box.
        `llm` is the model chosen, one of those `offered` at load (kept on the server, so a browser cannot
        name another, such as a file elsewhere on disk); none: the configured one."""
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if llm and not any(llm == value for choices in offered.values() for _, value in choices):
            raise gr.Error(f"The model {llm!r} is not on offer: reload the page for the current list.")
        turns = _turns(saved)
        filters = Filters(
            source=None if source in (None, "", ALL_SOURCES) else source,
            since=_day(since, "From"),
            until=_day(until, "To"),
        )
        as_of_day = _day(as_of, "As of")
        number = len(turns) + 1
        history = [(t.question, t.answer) for t in turns]
        shown = _messages(turns) + [{"role": "user", "content": render.unlinked_markdown(question)}]
        yield shown + [{"role": "assistant", "content": "…"}], gr.skip(), gr.skip(), gr.skip(), ""
        answer: Answer | None = None
        try:
            for part in self.engine.stream(
                question, history=history, as_of=as_of_day, filters=filters, k=int(passages), llm=llm or None
            ):
                if isinstance(part, Answer):
                    answer = part
                else:
                    partial = render.answer_markdown(part, number)
                    yield shown + [{"role": "assistant", "content": partial}], gr.skip(), gr.skip(), gr.skip(), ""
        except Exception as error:  # the page stays usable; the log keeps the details
            log.exception("answering %r failed", question)
            message = f"Could not answer: {render.unlinked_markdown(_one_line(error))}"
            yield shown + [{"role": "assistant", "content": message}], gr.skip(), gr.skip(), gr.skip(), ""
            return
        if answer is None:
            return
        turn = Turn(
            question,
            answer.answer,
            render.chat_markdown(answer, number) + render.inline_sources(answer),
            render.sources_block(answer, number),
        )
        turns = [*turns, turn]
        yield (
            _messages(turns),
            _saved(turns),
            render.sources_panel([t.sources for t in turns]),
            render.status_line(answer.backend, len(self.engine.articles())),
            "",
        )

    def regenerate(
        self,
        saved: list[dict] | None,
        source: str,
        since: str | None,
        until: str | None,
        as_of: str | None,
        passages: float,
        llm: str | None,
        offered: dict[str, list],
    ) -> Iterator[tuple]:
        """Answer the last question again (with the model and filters chosen now), in place of its answer."""
        turns = _turns(saved)
        if not turns:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from self.respond(
            turns[-1].question, _saved(turns[:-1]), source, since, until, as_of, passages, llm, offered
        )

    @staticmethod
    def stopped(chat: list[dict] | None) -> list[dict]:
        """The chat after Stop: the answer as far as it got, said to be stopped. It is not kept in the
        conversation (as a failed answer is not): the next question's history leaves it out."""
        chat = list(chat or [])
        if chat and chat[-1].get("role") == "assistant":
            content = chat[-1].get("content") or ""
            if isinstance(content, list):  # Gradio 6 hands a message back as its parts
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            chat[-1] = {"role": "assistant", "content": f"{content}\n\n*Stopped.*"}
        return chat

    def new_conversation(self) -> tuple:
        return [], [], render.sources_panel([]), ""

    def ask(self, question: str) -> str:
        """Answer one question (no history, no filters) as Markdown followed by its sources."""
        question = (question or "").strip()
        if not question:
            return "Ask a question."
        try:
            return render.api_markdown(self.engine.ask(question))
        except Exception as error:  # a one-line reason for the script; the log keeps the details
            log.exception("answering %r failed", question)
            return f"Could not answer: {_one_line(error)}"

    def status(self) -> str:
        """The status line with the configured backend."""
        return render.status_line(models_available.configured_spec(self.engine), len(self.engine.articles()))

    # -- library

    def library_view(self, search: str = "") -> tuple:
        """Outputs: article table, delete menu, source filter, examples, status."""
        articles = self.engine.articles()
        return (
            gr.Dataframe(value=library.article_rows(articles, search), headers=library.COLUMNS),
            gr.Dropdown(choices=[library.article_choice(a) for a in articles], value=None),
            gr.Dropdown(choices=[ALL_SOURCES, *library.source_names(articles)]),
            gr.Dataset(samples=[[q] for q in library.example_questions(articles)]),
            self.status(),
        )

    def _ingest(self, sources: list[str], progress: gr.Progress) -> str:
        progress(0, desc="Reading and indexing")
        try:
            with library.url_guard(self.settings):
                return self.engine.add(sources, progress=True).summary()
        except Exception as error:  # what was written is whole (the index converges on a rerun)
            log.exception("adding %s failed", sources)
            return f"Failed: {_one_line(error)}"

    # The library actions give their report alone: the page refreshes its view after them, and a
    # script calling their endpoints gets just the report.

    def add_files(self, files: list[str] | None, progress=gr.Progress(track_tqdm=True)) -> str:
        if not files:
            return "Choose one or more files first."
        return self._ingest(library.store_uploads(files, self.settings), progress)

    def add_urls(self, text: str, progress=gr.Progress(track_tqdm=True)) -> str:
        urls, others = library.split_urls(text or "")
        problems = [f"  not a http(s) URL: {entry}" for entry in others]
        if not urls:
            return "\n".join(["Enter one or more http(s) URLs, one a line.", *problems])
        return "\n".join([self._ingest(urls, progress), *problems])

    def add_pasted(self, title: str, text: str, progress=gr.Progress(track_tqdm=True)) -> str:
        try:
            path = library.store_pasted(title or "", text or "", self.settings)
        except ValueError as error:
            return f"Not added: {error}."
        return self._ingest([path], progress)

    def delete(self, article_id: str | None) -> str:
        """Delete by id (or file name, path or URL: whatever `newsqa remove` takes)."""
        if not article_id:
            return "Choose an article to delete (click its row or pick it from the list)."
        removed = self.engine.remove(article_id)
        library.forget_uploads(removed, self.engine.articles(), self.settings)
        return "\n".join(f"Deleted: {a.title}" for a in removed) or f"Not found: {article_id}"

    def select_row(self, event: gr.SelectData) -> str | None:
        """A click on a table row chooses that article in the delete menu."""
        row = event.row_value or []
        return row[library.COLUMNS.index("Id")] if len(row) == len(library.COLUMNS) else None


def _day_picker(label: str, elem_id: str, info: str) -> gr.DateTime:
    """A date without a time, as the ISO text the filters parse."""
    return gr.DateTime(label=label, include_time=False, type="string", elem_id=elem_id, info=info)


def build_page(engine: Engine) -> gr.Blocks:
    """The page. What depends on the index or on the models reachable (counts, examples, menus) is
    filled in by `Page.load` on every load, so a reload shows what another process changed."""
    page = Page(engine)
    with gr.Blocks(title="newsqa", analytics_enabled=False) as blocks:
        with gr.Row(equal_height=True, elem_id="header-row"):
            gr.Markdown("### newsqa: ask the news")
            status = gr.Markdown(elem_id="status")
        secret = browser_secret(engine.settings)
        saved = gr.BrowserState([], storage_key=CONVERSATION_KEY, secret=secret)
        chosen = gr.BrowserState("", storage_key=f"{CONVERSATION_KEY}-model", secret=secret)  # its model
        offered = gr.State({})  # the models found at load, by backend kind
        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(
                        label="Conversation",
                        elem_id="chat",
                        height=520,
                        feedback_options=None,
                        buttons=["copy", "copy_all"],
                        latex_delimiters=[],  # "$5 and $10" in an article is money, not LaTeX
                        placeholder="Ask about the indexed articles; answers cite their sources.",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            show_label=False,
                            placeholder="Your question",
                            elem_id="question",
                            scale=5,
                            submit_btn=False,
                            autofocus=True,
                        )
                        ask_button = gr.Button("Ask", variant="primary", elem_id="ask", scale=1, min_width=80)
                        stop_button = gr.Button(
                            "Stop", variant="stop", elem_id="stop", scale=1, min_width=80, visible=False
                        )
                    examples = gr.Dataset(components=[question], label="Try asking", elem_id="examples", samples=[])
                    with gr.Row():
                        new_button = gr.Button("New conversation", elem_id="new-conversation", size="sm")
                        regenerate_button = gr.Button("Regenerate last answer", elem_id="regenerate", size="sm")
                    with gr.Accordion("Model, filters and options", open=False, elem_id="options"):
                        with gr.Row():
                            backend = gr.Dropdown(label="Backend", elem_id="backend", choices=[], scale=1)
                            model = gr.Dropdown(label="Model", elem_id="model", choices=[], scale=2)
                        gr.Markdown(render.MODELS_HINT, elem_id="models-hint")
                        source = gr.Dropdown([ALL_SOURCES], value=ALL_SOURCES, label="Source", elem_id="source-filter")
                        since = _day_picker("From", "since", "Only articles published on or after this day.")
                        until = _day_picker("To", "until", "Only articles published on or before this day.")
                        as_of = _day_picker("As of", "as-of", "Answer as if on this day: later articles are left out.")
                        passages = gr.Slider(
                            1,
                            20,
                            value=engine.settings.top_k,
                            step=1,
                            elem_id="passages",
                            label="Passages",
                            info="How many passages the answer may draw on.",
                        )
                with gr.Column(scale=2, elem_id="sources-column"):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(render.sources_panel([]), elem_id="sources")
        with gr.Tab("Library", elem_id="library-tab") as library_tab:
            search = gr.Textbox(label="Search", placeholder="words in title, source, file or id", elem_id="search")
            table = gr.Dataframe(
                headers=library.COLUMNS, interactive=False, elem_id="articles", wrap=True, max_height=400
            )
            with gr.Row():
                # Custom values let /delete take any id, not only those listed when the page was built.
                to_delete = gr.Dropdown(
                    [], value=None, scale=4, label="Article to delete", elem_id="delete-choice", allow_custom_value=True
                )
                delete_button = gr.Button("Delete", variant="stop", elem_id="delete", scale=1)
            gr.Markdown("### Add articles")
            with gr.Tab("Upload files"):
                files = gr.File(
                    file_count="multiple",
                    file_types=list(library.UPLOAD_SUFFIXES),
                    elem_id="upload",
                    label=f"Files: {', '.join(library.UPLOAD_SUFFIXES)} "
                    f"(up to {engine.settings.max_file_mb:g} MB each)",
                )
                add_files_button = gr.Button("Add files", elem_id="add-files")
            with gr.Tab("From URL or feed"):
                urls = gr.Textbox(
                    label="URLs",
                    lines=3,
                    placeholder="https://... (one a line; article pages or feeds)",
                    elem_id="urls",
                )
                add_urls_button = gr.Button("Add URLs", elem_id="add-urls")
            with gr.Tab("Paste text"):
                title = gr.Textbox(label="Title", elem_id="paste-title")
                body = gr.Textbox(label="Text", lines=8, elem_id="paste-text")
                add_pasted_button = gr.Button("Add text", elem_id="add-text")
            report = gr.Textbox(label="Result", lines=3, interactive=False, elem_id="report")
            gr.Markdown("### Followed feeds")
            feeds = gr.Dataframe(
                library.feed_rows(engine.settings),
                headers=library.FEED_COLUMNS,
                interactive=False,
                elem_id="feeds",
                wrap=True,
            )
            refresh_feeds_button = gr.Button("Refresh now", elem_id="refresh-feeds", size="sm")

        blocks.load(
            page.load,
            [saved, chosen],
            [chat, sources, status, examples, source, backend, model, offered],
            api_visibility="private",
        )
        # The model chosen is kept in the browser with the conversation.
        backend.input(page.models_of, [backend, offered], model, api_visibility="private").then(
            lambda value: value, model, chosen, api_visibility="private"
        )
        model.input(lambda value: value, model, chosen, api_visibility="private")

        # While an answer is written, Stop takes the place of Ask; Stop cancels the answering event.
        def busy():
            return gr.Button(visible=False), gr.Button(visible=True)

        def idle():
            return gr.Button(visible=True), gr.Button(visible=False)

        chat_outputs = [chat, saved, sources, status, question]
        choices = [source, since, until, as_of, passages, model, offered]
        answering = []
        for trigger in (question.submit, ask_button.click):
            answering.append(
                trigger(busy, None, [ask_button, stop_button], queue=False).then(
                    page.respond, [question, saved, *choices], chat_outputs, api_visibility="private"
                )
            )
        answering.append(
            examples.click(lambda sample: sample[0], examples, question, api_visibility="private")
            .then(busy, None, [ask_button, stop_button], queue=False)
            .then(page.respond, [question, saved, *choices], chat_outputs, api_visibility="private")
        )
        for trigger in (regenerate_button.click, chat.retry):
            answering.append(
                trigger(busy, None, [ask_button, stop_button], queue=False).then(
                    page.regenerate, [saved, *choices], chat_outputs, api_visibility="private"
                )
            )
        for event in answering:
            event.then(idle, None, [ask_button, stop_button], queue=False)
        stop_button.click(page.stopped, chat, chat, cancels=answering, queue=False, api_visibility="private").then(
            idle, None, [ask_button, stop_button], queue=False
        )
        for trigger in (new_button.click, chat.clear):
            trigger(page.new_conversation, None, [chat, saved, sources, question], api_visibility="private")

        view_outputs = [table, to_delete, source, examples, status]
        search.change(page.library_view, search, view_outputs, api_visibility="private")
        library_tab.select(page.library_view, search, view_outputs, api_visibility="private")
        table.select(page.select_row, None, to_delete, api_visibility="private")
        for button, action, inputs, name in (
            (add_files_button, page.add_files, files, "upload"),
            (add_urls_button, page.add_urls, urls, "add_urls"),
            (add_pasted_button, page.add_pasted, [title, body], "add_text"),
            (delete_button, page.delete, to_delete, "delete"),
        ):
            button.click(action, inputs, report, api_name=name).then(
                page.library_view, search, view_outputs, api_visibility="private"
            )
        library_tab.select(lambda: library.feed_rows(engine.settings), None, feeds, api_visibility="private")
        refresh_feeds_button.click(lambda: library.refresh_feeds(engine), None, report, api_name="refresh_feeds").then(
            lambda: library.feed_rows(engine.settings), None, feeds, api_visibility="private"
        ).then(page.library_view, search, view_outputs, api_visibility="private")
        gr.api(page.ask, api_name="ask")
    return blocks
