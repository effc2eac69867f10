"""The LLM chains with LangChain's fake chat models (prompt building, fitting, condense,
streaming, unusable output), backend selection, and the HTTP backends against stand-in servers
on loopback (Ollama's chat protocol, a server that never answers, a dead port)."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from app.documents import Passage
from app.llm import REFUSAL, Limits, LLMBackend, LLMError, ollama_has_model, select_backend, unusable
from app.settings import Settings
from conftest import free_port, make_passage, send_body


def passage(text: str, rank: int) -> Passage:
    return make_passage(text, rank, published=date(2024, 10, rank), source="VOA")


def word_count(text: str) -> int:
    return len(text.split())


class Recorder(BaseCallbackHandler):
    """The message lists each chat model call was given."""

    def __init__(self):
        self.calls = []

    def on_chat_model_start(self, serialized, messages, **kwargs):
        self.calls.extend(messages)


def fake_backend(*replies: str, window: int = 4000, max_tokens: int = 100) -> tuple[LLMBackend, Recorder]:
    recorder = Recorder()
    model = GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]), callbacks=[recorder])
    return LLMBackend("fake", model, window=window, max_tokens=max_tokens, count_tokens=word_count), recorder


PASSAGES = [
    passage("The talks with the United States will take place in Geneva next week.", 1),
    passage("Officials said the delegations would meet for two days.", 2),
    passage("Markets rose on the news, traders said.", 3),
]


def test_stream_delivers_the_answer_in_pieces_from_a_prompt_of_numbered_passages():
    backend, recorder = fake_backend("The talks will take place in Geneva [1].")
    deltas = list(backend.stream("Where will the talks take place?", PASSAGES))
    assert len(deltas) > 1
    assert "".join(deltas) == "The talks will take place in Geneva [1]."
    ((system, user),) = recorder.calls
    assert REFUSAL in system.content and "not instructions" in system.content
    assert user.content.index("[1] Title 1 (2024-10-01, VOA)") < user.content.index("[3] Title 3 (2024-10-03, VOA)")
    assert user.content.endswith("Question: Where will the talks take place?")
    for p in PASSAGES:
        assert p.text in user.content


def test_the_prompt_gives_the_as_of_date_the_question_is_read_from():
    backend, recorder = fake_backend("Geneva [1].", "Geneva [1].")
    list(backend.stream("Where are the talks next week?", PASSAGES, as_of=date(2024, 10, 5)))
    list(backend.stream("Where are the talks next week?", PASSAGES))
    (asked_then, _), (asked_today, _) = recorder.calls
    assert "asked as of 2024-10-05" in asked_then.content
    assert f"asked as of {date.today().isoformat()}" in asked_today.content


def test_lowest_ranked_passages_are_dropped_whole_to_fit_the_window():
    probe, _ = fake_backend()
    sizes = [probe.prompt_tokens(probe.answer_messages("Where?", PASSAGES[:n])) for n in (1, 2, 3)]
    # A window that holds the prompt with two passages but not with three.
    backend, recorder = fake_backend("Geneva [1].", window=sizes[1] + 50, max_tokens=50)
    assert backend.fit_passages("Where?", PASSAGES) == PASSAGES[:2]
    assert "".join(backend.stream("Where?", PASSAGES)) == "Geneva [1]."
    sent = recorder.calls[0]
    assert backend.prompt_tokens(sent) <= backend.prompt_budget
    assert PASSAGES[1].text in sent[1].content and PASSAGES[2].text not in sent[1].content
    assert "[3]" not in sent[1].content


def test_no_passage_fitting_is_an_error_before_the_model_is_called():
    backend, recorder = fake_backend("never said", window=60, max_tokens=50)
    with pytest.raises(LLMError, match="not even one passage fits"):
        list(backend.stream("Where?", PASSAGES))
    assert recorder.calls == []


def test_without_passages_the_answer_is_the_refusal_and_no_model_runs():
    backend, recorder = fake_backend()
    assert "".join(backend.stream("Who won?", [])) == REFUSAL
    assert recorder.calls == []


@pytest.mark.parametrize(
    "reply, problem",
    [
        ("", "empty answer"),
        ("  \n ", "empty answer"),
        ("... [] !!", "no words"),
        ("\ufffd\ufffd\ufffd\ufffd ok", "unreadable characters"),
    ],
)
def test_unusable_answers_are_errors(reply, problem):
    backend, _ = fake_backend(reply)
    with pytest.raises(LLMError, match=problem):
        list(backend.stream("Where?", PASSAGES))


def test_unusable_spots_control_characters_but_accepts_plain_text():
    assert unusable("Geneva [1].\n\tNext week.") is None
    assert unusable("\x00\x01\x02\x03 a") == "the model returned unreadable characters"


def test_condense_without_history_returns_the_question_without_a_model_call():
    backend, recorder = fake_backend()
    assert backend.condense("Who is Andrew Rasiulis?", []) == "Who is Andrew Rasiulis?"
    assert recorder.calls == []


def test_condense_sends_the_conversation_and_cleans_the_reply():
    backend, recorder = fake_backend(
        'Standalone question: "What does Andrew Rasiulis think Russia\'s strategy is?"\n'
        "Explanation: he refers to Rasiulis."
    )
    history = [("Who is Andrew Rasiulis?", "A former Canadian defence official [1].")]
    standalone = backend.condense("What does he think Russia's strategy is?", history)
    assert standalone == "What does Andrew Rasiulis think Russia's strategy is?"
    ((system, user),) = recorder.calls
    assert "standalone question" in system.content
    assert "User: Who is Andrew Rasiulis?\nAssistant: A former Canadian defence official [1]." in user.content
    assert user.content.endswith("Follow-up question: What does he think Russia's strategy is?")


def test_condense_drops_the_oldest_turns_that_do_not_fit():
    old = ("What happened long ago?", "word " * 300)
    recent = ("Who is Andrew Rasiulis?", "A former official.")
    probe, _ = fake_backend()
    recent_only = probe.prompt_tokens(probe.condense_messages("And his view?", [recent]))
    backend, recorder = fake_backend("What is Andrew Rasiulis's view?", window=recent_only + 100, max_tokens=100)
    assert backend.condense("And his view?", [old, recent]) == "What is Andrew Rasiulis's view?"
    user = recorder.calls[0][1].content
    assert "Who is Andrew Rasiulis?" in user and "long ago" not in user


def test_condense_empty_reply_is_an_error():
    backend, _ = fake_backend("   ")
    with pytest.raises(LLMError, match="empty answer"):
        backend.condense("And his view?", [("Who is he?", "Rasiulis.")])


class BrokenChat(GenericFakeChatModel):
    """Streams its message, then fails with `error` (a server that drops mid-answer)."""

    error: Exception

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator:
        yield from super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
        raise self.error


@pytest.mark.parametrize(
    "error, message",
    [
        (httpx.ReadTimeout("read timed out"), "fake: no answer within 7 s (NEWSQA_LLM_TIMEOUT)"),
        (
            ConnectionError("Failed to connect to Ollama.\nPlease check"),
            "fake: cannot reach the server (Failed to connect",
        ),
        (RuntimeError("model 'x' not found\n(status 404)"), "fake: model 'x' not found (status 404)"),
    ],
)
def test_failures_mid_stream_become_one_line_errors(error, message):
    model = BrokenChat(messages=iter([AIMessage(content="Geneva and then")]), error=error)
    backend = LLMBackend("fake", model, window=4000, max_tokens=100, count_tokens=word_count, timeout=7)
    received = []
    with pytest.raises(LLMError) as raised:
        for delta in backend.stream("Where?", PASSAGES):
            received.append(delta)
    assert "".join(received) == "Geneva and then"
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


# ----- selecting a backend


def test_backend_names_are_parsed(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert select_backend(Settings(index=tmp_path, llm="extractive")) is None
    for bad in ("gpt", "ollama:", "openai", "llamacpp: "):
        with pytest.raises(ValueError, match="unknown LLM backend"):
            select_backend(Settings(index=tmp_path, llm=bad))
    with pytest.raises(LLMError, match="no API key"):
        select_backend(Settings(index=tmp_path, llm="openai:gpt-4o-mini"))


def test_ollama_backend_asks_for_its_context_size(tmp_path):
    settings = Settings(index=tmp_path, llm="ollama:llama3.2", ollama_num_ctx=16384, llm_max_tokens=300)
    backend = select_backend(settings)
    assert backend.name == "ollama:llama3.2"
    assert backend.model.num_ctx == 16384 and backend.model.num_predict == 300
    assert backend.window == 16384 and backend.prompt_budget == 16384 - 300


def test_openai_backend_takes_the_standard_variables_when_newsqa_sets_none(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    backend = select_backend(Settings(index=tmp_path, llm="openai:some-model", llm_context_tokens=4096))
    assert backend.name == "openai:some-model" and backend.window == 4096
    assert str(backend.model.openai_api_base) == "http://127.0.0.1:9/v1"
    assert backend.model.openai_api_key.get_secret_value() == "sk-test"


def test_llamacpp_backend_without_llama_cpp_says_how_to_install_it(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *rest: None if name == "llama_cpp" else real_find_spec(name, *rest)
    )
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(LLMError, match=r"llama-cpp-python is not installed: pip install 'newsqa\[llamacpp\]'"):
        select_backend(Settings(index=tmp_path, llm=f"llamacpp:{model}"))


def test_llamacpp_backend_needs_a_model_file(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is an optional extra (make install-llamacpp)")
    with pytest.raises(LLMError, match="no model file"):
        select_backend(Settings(index=tmp_path, llm=f"llamacpp:{tmp_path / 'missing.gguf'}"))


class FakeOllama(BaseHTTPRequestHandler):
    """Ollama's /api/tags and a streamed /api/chat (NDJSON), recording the chat requests."""

    requests: list[dict] = []

    def do_GET(self):
        if self.path != "/api/tags":
            self.send_error(404)
            return
        self._send(json.dumps({"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest"}]}))

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOllama.requests.append(body)
        parts = ["Geneva", " [1]."]
        lines = [{"model": body["model"], "message": {"role": "assistant", "content": p}, "done": False} for p in parts]
        lines.append(
            {
                "model": body["model"],
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
            }
        )
        self._send("\n".join(json.dumps(line) for line in lines) + "\n")

    def _send(self, text: str):
        send_body(self, text.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeOllama.requests.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_auto_takes_ollama_when_it_has_the_model_and_sends_num_ctx(tmp_path, fake_ollama):
    assert ollama_has_model(fake_ollama, "llama3.2") and ollama_has_model(fake_ollama, "llama3.2:latest")
    assert not ollama_has_model(fake_ollama, "mistral")
    backend = select_backend(Settings(index=tmp_path, ollama_url=fake_ollama, ollama_num_ctx=12288))
    assert backend.name == "ollama:llama3.2"
    assert "".join(backend.stream("Where?", PASSAGES)) == "Geneva [1]."
    (request,) = FakeOllama.requests
    assert request["options"]["num_ctx"] == 12288
    assert request["messages"][0]["role"] == "system" and PASSAGES[0].text in request["messages"][1]["content"]


def test_auto_without_ollama_model_uses_an_openai_server_only_when_newsqa_names_one(tmp_path, fake_ollama, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-newsqa")
    dead = f"http://127.0.0.1:{free_port()}"
    assert select_backend(Settings(index=tmp_path, ollama_url=dead)) is None
    assert select_backend(Settings(index=tmp_path, ollama_url=fake_ollama, ollama_model="mistral")) is None
    backend = select_backend(
        Settings(index=tmp_path, ollama_url=dead, openai_base_url="http://127.0.0.1:9/v1", openai_model="local")
    )
    assert backend.name == "openai:local"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def http_backends(tmp_path, url: str) -> list[LLMBackend]:
    common = dict(index=tmp_path, llm_timeout=1.0)
    return [
        select_backend(Settings(llm="ollama:llama3.2", ollama_url=url, **common)),
        select_backend(Settings(llm="openai:local", openai_base_url=f"{url}/v1", **common)),
    ]


def test_a_server_that_never_answers_times_out(tmp_path, silent_server):
    for backend in http_backends(tmp_path, silent_server):
        with pytest.raises(LLMError, match=r"no answer within 1 s"):
            list(backend.stream("Where?", PASSAGES))
        with pytest.raises(LLMError, match=r"no answer within 1 s"):
            backend.condense("And his view?", [("Who is Rasiulis?", "An official.")])


def test_a_dead_port_cannot_be_reached(tmp_path):
    for backend in http_backends(tmp_path, f"http://127.0.0.1:{free_port()}"):
        with pytest.raises(LLMError, match="cannot reach the server") as raised:
            list(backend.stream("Where?", PASSAGES))
        assert str(raised.value).startswith(backend.name) and "\n" not in str(raised.value)


# -- a request's limits: max_tokens and stop sequences


def test_a_request_s_max_tokens_ends_the_answer_there_and_says_so():
    backend, _ = fake_backend("The talks will take place in Geneva next week, officials said [1].", max_tokens=100)
    generation = backend.stream("Where?", PASSAGES, limits=Limits(max_tokens=5))
    assert "".join(generation).strip() == "The talks will take place"
    assert generation.finish_reason == "length"


def test_max_tokens_above_the_backend_s_own_limit_cuts_nothing_here():
    answer = "The talks will take place in Geneva [1]."
    backend, _ = fake_backend(answer, max_tokens=6)
    generation = backend.stream("Where?", PASSAGES, limits=Limits(max_tokens=50))
    assert "".join(generation) == answer  # the backend's own limit is the model's to keep
    assert generation.finish_reason == "stop"


def test_a_stop_sequence_ends_the_answer_before_it_even_across_pieces():
    backend, _ = fake_backend("Geneva [1]. END of the answer, more words here.")
    generation = backend.stream("Where?", PASSAGES, limits=Limits(stop=("END of",)))
    deltas = list(generation)
    assert "".join(deltas) == "Geneva [1]. "  # "END" came in one piece and "of" in the next: neither was sent
    assert generation.finish_reason == "stop"


class ReportingModel(GenericFakeChatModel):
    """Streams its reply, then a last empty piece with the tokens counted, as Ollama and OpenAI do."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        yield from super()._stream(messages, stop, run_manager, **kwargs)
        usage = {"input_tokens": 120, "output_tokens": 4, "total_tokens": 124}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))


def test_the_usage_the_model_reports_is_kept():
    model = ReportingModel(messages=iter([AIMessage(content="Geneva [1].")]))
    backend = LLMBackend("fake", model, window=4000, max_tokens=100, count_tokens=word_count)
    generation = backend.stream("Where?", PASSAGES)
    assert "".join(generation) == "Geneva [1]."
    assert generation.usage == {"prompt_tokens": 120, "completion_tokens": 4}
