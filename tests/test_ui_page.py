"""The chat page's handlers over a fake engine: what reaches the engine, and what the page shows."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import gradio as gr
import pytest

from app.documents import Answer, Citation, Filters
from app.index import StoredArticle
from app.settings import Settings
from app.ui.page import ALL_SOURCES, Page
from ingest.pipeline import IngestReport, Outcome


class FakeEngine:
    """Streams a fixed answer citing passage 1; records every call."""

    def __init__(self, index: Path, fail: Exception | None = None):
        self.settings = Settings(index=index, llm="extractive")
        self.backend = None
        self.fail = fail
        self.calls: list[tuple] = []
        self.stored = [StoredArticle("a1", "Talks in Geneva", date(2024, 1, 9), "Wire", "", "a.txt", (), "h", 1)]

    def stream(self, question, history=(), as_of=None, filters=None, k=None, llm=None):
        self.calls.append(("stream", question, list(history), as_of, filters, k, llm))
        yield "Talks"
        if self.fail:
            raise self.fail
        yield "Talks start in January [1]."
        passage = "Talks start in January."
        yield Answer(
            question,
            "Talks start in January [1].",
            False,
            (
                Citation(
                    1, "a1", "Talks in Geneva", date(2024, 1, 9), "Wire", "", "a.txt", passage, passage, 0, len(passage)
                ),
            ),
            "extractive",
            {},
        )

    def ask(self, question, history=(), as_of=None, filters=None, k=None, llm=None):
        *_, answer = self.stream(question, history, as_of, filters, k, llm)
        return answer

    def articles(self):
        return self.stored

    def add(self, sources, progress=None):
        self.calls.append(("add", list(sources)))
        return IngestReport([Outcome("added", s, "T") for s in sources])

    def remove(self, key):
        self.calls.append(("remove", key))
        return [a for a in self.stored if a.id == key]


def no_progress(*args, **kwargs):
    pass


OFFERED = {
    "extractive": [("Extractive", "extractive")],
    "ollama": [("qwen3", "ollama:qwen3")],
    "openai": [("gpt-x", "openai:gpt-x")],
}


def run(page: Page, question: str, turns=(), source=ALL_SOURCES, since=None, until=None, as_of=None, k=5, llm=None):
    return list(page.respond(question, list(turns), source, since, until, as_of, k, llm, OFFERED))


def test_empty_question_changes_nothing_and_asks_nothing(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    updates = run(Page(engine), "   ")
    assert updates == [(gr.skip(),) * 5]
    assert engine.calls == []


def test_answer_streams_then_shows_linked_markers_sources_and_status(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    updates = run(
        Page(engine), "When do talks start?", source="Wire", since="2024-01-01", as_of="2024-02-01 00:00:00", k=3
    )
    assert engine.calls == [
        (
            "stream",
            "When do talks start?",
            [],
            date(2024, 2, 1),
            Filters(source="Wire", since=date(2024, 1, 1), until=None),
            3,
            None,
        )
    ]
    chats = [u[0] for u in updates]
    assert chats[0][-1] == {"role": "assistant", "content": "…"}
    assert chats[1][-1]["content"] == "Talks"
    assert chats[-1][0] == {"role": "user", "content": "When do talks start?"}  # shown as written
    shown = chats[-1][1]["content"]
    assert shown.startswith('Talks start in January [[1]](#source-1-1).\n\n<details class="nq-inline-sources">')
    _, turns, sources, status, box = updates[-1]
    assert [t["answer"] for t in turns] == ["Talks start in January [1]."]  # kept in the browser as plain dicts
    assert 'id="source-1-1"' in sources and "<mark>Talks start in January.</mark>" in sources
    assert "extractive" in status and box == ""


def test_follow_up_gets_the_conversation_and_new_markers(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    page = Page(engine)
    turns = run(page, "When do talks start?")[-1][1]
    last = run(page, "Where?", turns)[-1]
    assert engine.calls[-1][2] == [("When do talks start?", "Talks start in January [1].")]
    assert last[0][-1]["content"].startswith("Talks start in January [[1]](#source-2-1).")
    assert 'id="source-1-1"' in last[2] and 'id="source-2-1"' in last[2]
    assert page.new_conversation()[:2] == ([], [])


def test_the_chosen_model_reaches_the_engine_and_regenerate_answers_the_last_question_again(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    page = Page(engine)
    turns = run(page, "When do talks start?", llm="ollama:qwen3")[-1][1]  # one of those offered
    turns = run(page, "Where?", turns)[-1][1]
    assert [c[-1] for c in engine.calls] == ["ollama:qwen3", None]
    again = list(page.regenerate(turns, ALL_SOURCES, None, None, None, 5, "openai:gpt-x", OFFERED))
    assert engine.calls[-1][1:3] == ("Where?", [("When do talks start?", "Talks start in January [1].")])
    assert engine.calls[-1][-1] == "openai:gpt-x"
    assert [t["question"] for t in again[-1][1]] == ["When do talks start?", "Where?"]  # replaced, not added
    assert list(page.regenerate([], ALL_SOURCES, None, None, None, 5, None, OFFERED)) == [(gr.skip(),) * 5]


def test_only_a_model_offered_at_load_can_answer(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    with pytest.raises(gr.Error, match="not on offer"):  # a browser naming a file elsewhere on the disk
        run(Page(engine), "When?", llm="llamacpp:/etc/hostname")
    assert engine.calls == []


def test_stop_leaves_the_answer_as_far_as_it_got_marked_stopped():
    chat = [{"role": "user", "content": "When?"}, {"role": "assistant", "content": "Talks"}]
    assert Page.stopped(chat)[-1] == {"role": "assistant", "content": "Talks\n\n*Stopped.*"}
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "Talks "}, {"type": "text", "text": "in"}]}]
    assert Page.stopped(parts)[-1] == {"role": "assistant", "content": "Talks in\n\n*Stopped.*"}  # as Gradio 6 sends it
    assert Page.stopped([]) == []


def test_a_load_reads_the_index_and_the_kept_conversation(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    engine.settings = Settings(
        index=tmp_path, llm="extractive", ollama_url="http://127.0.0.1:9", models_folder=tmp_path / "models"
    )
    page = Page(engine)
    saved = run(page, "When do talks start?")[-1][1]
    newest = StoredArticle("a2", "Storm hits Galway", date(2024, 2, 1), "Wire", "", "b.txt", (), "h2", 1)
    engine.stored = [newest, *engine.stored]  # an ingest since the page was built; newest first, as the index lists
    chat, sources, status, examples, source, backend, model, offered = page.load(saved)
    assert [m["role"] for m in chat] == ["user", "assistant"] and 'id="source-1-1"' in sources
    assert status == "extractive · 2 articles indexed"
    assert examples.raw_samples == [["What is the latest on Galway?"], ["What happened: Talks in Geneva?"]]
    assert backend.value == "extractive" and model.value == "extractive"
    assert list(offered) == ["extractive", "ollama", "openai", "llamacpp"] and offered["ollama"] == []
    assert page.load([{"not": "a turn"}])[0] == []  # what an older page kept is dropped, not an error
    # The conversation's own model while it is offered; else the configured one.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.gguf").write_bytes(b"GGUF")
    *_, backend, model, _ = page.load(saved, f"llamacpp:{tmp_path / 'models' / 'tiny.gguf'}")
    assert (backend.value, model.value) == ("llamacpp", f"llamacpp:{tmp_path / 'models' / 'tiny.gguf'}")
    *_, backend, model, _ = page.load(saved, "ollama:gone")
    assert (backend.value, model.value) == ("extractive", "extractive")


def test_failure_is_a_message_in_the_chat_not_a_traceback(tmp_path: Path):
    engine = FakeEngine(tmp_path, fail=RuntimeError("index unreachable\nTraceback (most recent call last)"))
    updates = run(Page(engine), "When?")
    assert updates[-1][0][-1]["content"] == "Could not answer: index unreachable"
    assert updates[-1][1] == gr.skip()  # the failed turn is not part of the conversation


def test_bad_date_is_a_one_line_error(tmp_path: Path):
    with pytest.raises(gr.Error, match="As of: expected a date as YYYY-MM-DD"):
        run(Page(FakeEngine(tmp_path)), "When?", as_of="last week")


def test_ask_endpoint_gives_markdown_with_sources(tmp_path: Path):
    page = Page(FakeEngine(tmp_path))
    assert page.ask("When do talks start?") == (
        "Talks start in January [1].\n\n**Sources**\n\n[1] Talks in Geneva (2024-01-09, Wire)"
    )
    assert page.ask(" ") == "Ask a question."


def test_pasted_text_is_written_then_indexed(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    report = Page(engine).add_pasted("Rain in Spain", "It rained.", progress=no_progress)
    path = tmp_path / "library" / "rain-in-spain.txt"
    assert engine.calls == [("add", [str(path)])]
    assert report.startswith("1 added") and path.read_text() == "Rain in Spain\nIt rained.\n"
    report = Page(engine).add_pasted("", "It rained.", progress=no_progress)
    assert report == "Not added: give the article a title."


def test_url_box_ingests_urls_and_refuses_server_paths(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    report = Page(engine).add_urls("https://a.example/x /etc/passwd", progress=no_progress)
    assert engine.calls == [("add", ["https://a.example/x"])]
    assert "not a http(s) URL: /etc/passwd" in report


def test_delete_removes_the_chosen_article(tmp_path: Path):
    engine = FakeEngine(tmp_path)
    assert Page(engine).delete("a1") == "Deleted: Talks in Geneva"
    assert engine.calls == [("remove", "a1")]
    assert Page(engine).delete(None).startswith("Choose an article")


@pytest.mark.slow
def test_deleting_an_uploaded_article_deletes_its_copy_once_no_article_needs_it(tmp_path: Path):
    from app.engine import Engine
    from app.settings import Settings

    engine = Engine(Settings(index=tmp_path / "index"))
    single, pair = tmp_path / "single.txt", tmp_path / "pair.jsonl"
    single.write_text("Ferry strike\nThe ferry crews walked out on Monday.\n")
    pair.write_text(
        '{"title": "Harbour opens", "text": "The new harbour opened."}\n'
        '{"title": "Harbour closes", "text": "The old harbour closed."}\n'
    )
    page = Page(engine)
    page.add_files([str(single), str(pair)], progress=no_progress)
    library = tmp_path / "index" / "library"
    by_title = {a.title: a.id for a in engine.articles()}
    pair_copy, single_copy = sorted(p.name for p in library.iterdir())
    assert pair_copy.startswith("pair-") and single_copy.startswith("single-")

    page.delete(by_title["Ferry strike"])
    page.delete(by_title["Harbour opens"])
    assert [p.name for p in library.iterdir()] == [pair_copy]  # "Harbour closes" still comes from it
    page.delete(by_title["Harbour closes"])
    assert list(library.iterdir()) == []
