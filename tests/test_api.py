"""The HTTP API beside the chat page, on a real server on 127.0.0.1 behind a login: the `openai`
client, plain and streamed, answers the seed question; POST /api/ask gives what `newsqa ask --json`
prints; a call without the login, and malformed bodies, are refused with a reason."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import openai
import pytest

from app import cli
from app.documents import Answer, SentenceSupport
from app.engine import Engine
from app.ui import api as api_module
from app.ui import auth, server
from app.ui.api import HISTORY_TURNS, ChatRequest, add_api_routes, completion_events, conversation
from app.ui.render import api_markdown
from tests.conftest import SEED_FILE, free_port, make_settings, running
from tests.test_feeds import STORIES, publish, site  # noqa: F401 (site: the feed server fixture)

QUESTION = "Where will the talks with the U.S. take place?"
LOGIN = ("ann", "s3cret")
KEY = "ann:s3cret"


@pytest.fixture(scope="module")
def api(seed_engine: Engine) -> Iterator[tuple[str, Engine]]:
    """The page's server, behind LOGIN, with the API added as `newsqa chat` adds it; its URL."""
    import gradio as gr

    engine = Engine(make_settings(seed_engine.settings.index, llm="extractive"))
    engine.ask("warm up")
    with gr.Blocks() as blocks:
        gr.Markdown("the chat page")
    login = auth.Login(LOGIN)
    url = server.launch(blocks, "127.0.0.1", free_port(), login, max_file_bytes=1000)
    add_api_routes(blocks.server_app, engine, login)
    yield url, engine
    blocks.close()


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """What the server logs as errors meanwhile (uvicorn logs an exception in the app, traceback and
    all, on its own logger, which does not reach the root logger)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def client(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}v1", api_key=key, max_retries=0, timeout=120)


# -- the conversation an OpenAI request carries


def test_the_last_user_message_is_the_question_and_earlier_turns_the_history():
    request = ChatRequest.model_validate(
        {
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": "Who spoke?"},
                {"role": "assistant", "content": "Putin spoke [1].\n\n**Sources**\n\n[1] Russia urges West"},
                {"role": "user", "content": [{"type": "text", "text": "Where?"}]},
            ]
        }
    )
    assert conversation(request.messages) == ("Where?", [("Who spoke?", "Putin spoke [1].")])


def test_a_long_conversation_gives_its_latest_turns_as_history():
    turns = [
        m for n in range(50) for m in ({"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"})
    ]
    request = ChatRequest.model_validate({"messages": [*turns, {"role": "user", "content": "and now?"}]})
    question, history = conversation(request.messages)
    assert question == "and now?" and history == [(f"q{n}", f"a{n}") for n in range(50 - HISTORY_TURNS, 50)]


def test_a_conversation_must_end_with_a_question():
    from app.ui.api import ApiError

    request = ChatRequest.model_validate(
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    )
    with pytest.raises(ApiError, match="the last message must be the user's question"):
        conversation(request.messages)


def test_a_stream_sends_what_is_new_then_the_final_text_and_the_answer(seed_engine: Engine):
    """Cumulative texts become deltas; when the final text does not continue what was sent (an LLM
    failed mid-answer and the extractive answer replaced it), it follows whole on a new paragraph."""
    answer = seed_engine.ask(QUESTION)
    events = list(completion_events(iter(["The talks", "The talks will", "Garbled", answer]), "newsqa"))
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    deltas = [p["choices"][0]["delta"].get("content") for p in payloads]
    cited = len(answer.citations)
    assert deltas == ["", "The talks", " will", "\n\n" + api_markdown(answer), *[None] * cited, None]
    # Each citation as Open WebUI's source event, in [n] order, before the last chunk.
    events_sent = [p["event"] for p in payloads[4:-1]]
    assert [e["data"]["source"]["id"] for e in events_sent] == [f"newsqa-{c.number}" for c in answer.citations]
    assert all(e["type"] == "source" for e in events_sent)
    assert events_sent[0]["data"]["document"] == [answer.citations[0].passage]
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop" and payloads[-1]["newsqa"] == answer.as_dict()
    assert events[-1] == "data: [DONE]\n\n"


def test_a_sentence_not_found_in_the_articles_is_marked_in_the_completion_text():
    """An answer's unsupported sentence carries the page's plain-text mark; the text streamed before
    the mark was known is followed by the final text whole."""
    text = "Talks open in Geneva [1]. They last ten days [1]. Both sides agreed [1]."
    answer = Answer(
        QUESTION,
        text,
        False,
        (),
        "openai:model",
        {},
        sentences=(
            SentenceSupport("Talks open in Geneva.", (1,), True, "Talks open in Geneva."),
            SentenceSupport("They last ten days.", (1,), False, ""),
            SentenceSupport("Both sides agreed.", (1,), True, "Both sides agreed."),
        ),
    )
    marked = "Talks open in Geneva [1]. They last ten days [1]. (not found in the articles) Both sides agreed [1]."
    assert api_markdown(answer) == marked
    events = list(completion_events(iter([text, answer]), "newsqa"))
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert [p["choices"][0]["delta"].get("content") for p in payloads] == ["", text, "\n\n" + marked, None]
    assert payloads[-1]["newsqa"]["sentences"][1] == {
        "text": "They last ten days.",
        "citations": [1],
        "supported": False,
        "support": "",
    }


def test_a_stream_that_fails_midway_says_why_and_still_ends_with_done(caplog):
    def failing() -> Iterator[str]:
        yield "The talks"
        raise RuntimeError("the index went away")

    events = list(completion_events(failing(), "newsqa"))
    assert events[-1] == "data: [DONE]\n\n"
    assert json.loads(events[-2].removeprefix("data: "))["error"]["message"] == "the index went away"
    assert "a streamed answer failed" in caplog.text  # a fault here, logged with its traceback


# -- on a real server


@pytest.mark.slow
def test_models_lists_newsqa_and_its_extractive_twin(api):
    url, _ = api
    assert [m.id for m in client(url).models.list()] == ["newsqa", "newsqa-extractive"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["newsqa", "newsqa-extractive"])
def test_a_completion_answers_the_seed_question_with_a_citation(api, model: str):
    url, _ = api
    completion = client(url).chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}])
    text = completion.choices[0].message.content
    assert "Geneva" in text and "[1]" in text
    assert "**Sources**" in text and "[1] Russia urges West" in text
    answer = completion.model_extra["newsqa"]
    assert not answer["refused"] and answer["backend"] == "extractive"
    assert [c["file"] for c in answer["citations"]] == [SEED_FILE.name]
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.slow
def test_a_streamed_completion_answers_the_seed_question_with_a_citation(api):
    url, _ = api
    chunks = list(
        client(url).chat.completions.create(
            model="newsqa", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Geneva" in text and "[1]" in text and "**Sources**" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    answer = chunks[-1].model_extra["newsqa"]
    assert answer["citations"][0]["file"] == SEED_FILE.name and text.startswith(answer["answer"])


@pytest.mark.slow
def test_a_raw_stream_ends_with_done(api):
    url, _ = api
    body = {"model": "newsqa", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.stream("POST", f"{url}v1/chat/completions", json=body, auth=LOGIN, timeout=120) as response:
        lines = [line for line in response.iter_lines() if line]
    assert response.status_code == 200 and lines[-1] == "data: [DONE]"


@pytest.mark.slow
def test_a_client_has_a_few_requests_in_hand_at_once(api, monkeypatch):
    """Requests whose bodies are still coming hold their client's slots; one more from that client
    is refused with a reason, another client is not, and a slot given back can be taken again."""
    url, _ = api
    monkeypatch.setattr(api_module, "API_CONCURRENCY", 2)
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b'{"question": '
        release.wait(60)
        yield b"1}"

    def held() -> int:
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.4"), timeout=90) as held_client:
            return held_client.post(f"{url}api/ask", content=slow_body(), auth=LOGIN).status_code

    def from_address(address: str) -> httpx.Response:
        with httpx.Client(transport=httpx.HTTPTransport(local_address=address)) as other:
            return other.get(f"{url}v1/models", auth=LOGIN)

    with ThreadPoolExecutor(2) as pool:
        holding = [pool.submit(held) for _ in range(2)]
        deadline = time.monotonic() + 60
        while (refused := from_address("127.0.0.4")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)  # until the server holds both
        assert refused.status_code == 429
        assert refused.json()["error"]["message"] == "this client has 2 requests in hand: wait for one"
        assert from_address("127.0.0.5").status_code == 200
        release.set()
        assert [h.result() for h in holding] == [400, 400]  # `"question": 1` is no string
    assert from_address("127.0.0.4").status_code == 200


@pytest.mark.slow
def test_a_follow_up_carries_the_earlier_turn(api):
    url, _ = api
    first = client(url).chat.completions.create(model="newsqa", messages=[{"role": "user", "content": QUESTION}])
    follow_up = client(url).chat.completions.create(
        model="newsqa",
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "What did Putin demand there?"},
        ],
    )
    answer = follow_up.model_extra["newsqa"]
    assert answer["question"] == "What did Putin demand there?" and answer["citations"]


@pytest.mark.slow
def test_calls_without_the_login_are_refused(api):
    url, _ = api
    with pytest.raises(openai.AuthenticationError, match="wrong login: send the page's USER:PASS"):
        client(url, key="ann:guess").models.list()
    with pytest.raises(openai.AuthenticationError, match="sign in: send the page's login"):
        client(url, key="no-login").chat.completions.create(
            model="newsqa", messages=[{"role": "user", "content": QUESTION}]
        )
    assert httpx.post(f"{url}api/ask", json={"question": QUESTION}).status_code == 401
    assert httpx.post(f"{url}api/ask", json={"question": QUESTION}, auth=LOGIN).status_code == 200


@pytest.mark.slow
def test_wrong_keys_are_throttled_like_page_logins(api):
    url, _ = api
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3")) as other:
        statuses = [
            other.get(f"{url}v1/models", headers={"Authorization": f"Bearer ann:guess-{n}"}).status_code
            for n in range(auth.LOGIN_ATTEMPTS + 1)
        ]
        assert statuses == [401] * auth.LOGIN_ATTEMPTS + [429]
        refused = other.get(f"{url}v1/models", headers={"Authorization": f"Bearer {KEY}"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert refused.json()["error"]["message"].startswith("too many wrong logins: try again in ")
    assert httpx.get(f"{url}v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.slow
def test_api_ask_gives_what_newsqa_ask_json_prints(api, capsys):
    url, engine = api
    response = httpx.post(
        f"{url}api/ask",
        auth=LOGIN,
        timeout=120,
        json={"question": QUESTION, "history": [], "as_of": "2024-01-31", "filters": {"source": None}},
    )
    assert response.status_code == 200
    given = response.json()
    assert (
        cli.main(
            [
                "--index",
                str(engine.settings.index),
                "ask",
                "--llm",
                "extractive",
                "--json",
                "--as-of",
                "2024-01-31",
                QUESTION,
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert given.keys() == printed.keys()
    assert {k: v for k, v in given.items() if k != "timings"} == {k: v for k, v in printed.items() if k != "timings"}
    assert "Geneva" in given["answer"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "path, body, status, reason",
    [
        ("v1/chat/completions", b"{not json", 400, "the body is not JSON"),
        ("v1/chat/completions", b'{"messages": []}', 400, "messages: List should have at least 1 item"),
        (
            "v1/chat/completions",
            json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}).encode(),
            404,
            "no model 'gpt-4'; models: newsqa, newsqa-extractive",
        ),
        (
            "v1/chat/completions",
            json.dumps({"messages": [{"role": "user", "content": "why? " * 500}]}).encode(),
            400,
            "the question is over 2000 characters",
        ),
        (
            "v1/chat/completions",
            json.dumps({"messages": [{"role": "user", "content": "x" * 1_100_000}]}).encode(),
            413,
            "the request body is over 1 MB",
        ),
        (
            "v1/chat/completions",
            json.dumps({"messages": [{"role": "user", "content": "x" * 20_001}]}).encode(),
            400,
            "messages.0.content: Value error, a message is over 20000 characters",
        ),
        ("api/ask", b'{"question": ""}', 400, "question: String should have at least 1 character"),
        ("api/ask", b'{"question": "Where?", "filters": {"topic": "x"}}', 400, "filters.topic: Extra inputs"),
        ("api/ask", b'{"question": "Where?", "as_of": "last week"}', 400, "as_of: Input should be a valid date"),
        ("api/ask", b'{"question": "   "}', 400, "the question is empty"),
        ("api/ask", b'{"question": "Where?\xff"}', 400, "the body is not UTF-8: byte 20 cannot be read"),
        ("api/ask", b"[" * 200_000 + b"]" * 200_000, 400, "the body is nested too deep"),
        (
            "api/ask",
            b'{"question": "Where?", "as_of": ' + b"9" * 100_000 + b"}",
            400,
            "the body holds a number of over",
        ),
        (
            "v1/chat/completions",
            b'{"messages": [{"role": "user", "content": "Where? \\ud800"}]}',
            400,
            "the body holds a lone surrogate, '\\ud800': half a character, not one",
        ),
        (
            "v1/chat/completions",
            b'{"stream": true, "messages": [{"role": "user", "content": "\\ud800"}]}',
            400,
            "the body holds a lone surrogate",
        ),
        ("api/ask", b'{"question": "\\udfff Where?"}', 400, "the body holds a lone surrogate"),
    ],
)
def test_bad_requests_get_a_reason(api, server_errors, path: str, body: bytes, status: int, reason: str):
    url, _ = api
    response = httpx.post(f"{url}{path}", content=body, auth=LOGIN, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    message = response.json()["error"]["message"]
    assert message.startswith(reason) and "\n" not in message
    assert server_errors == []


@pytest.mark.slow
def test_newsqa_chat_serves_the_api_and_indexes_a_followed_feed_on_its_own(site: str, tmp_path: Path):
    """`newsqa chat` as a user starts it, with a feed followed and never refreshed by hand: the API
    answers from the feed's entry, published after the follow."""
    index = tmp_path / "index"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")},
        "NEWSQA_INDEX": str(index),
        "NEWSQA_LLM": "extractive",
        "NEWSQA_ALLOW_PRIVATE_URLS": "1",
        "NEWSQA_OPEN_BROWSER": "0",
        "NEWSQA_CONFIG": str(tmp_path / "no-config.toml"),
    }
    assert cli.main(["--index", str(index), "follow", f"{site}/feed.rss"]) == 0
    publish(site, [("orchard", date.today())])
    port = free_port()
    chat = [sys.executable, "-m", "app.cli", "chat", "--port", str(port), "--auth", KEY]
    with running(chat, env, ready="OpenAI-compatible API at") as printed:
        assert f"OpenAI-compatible API at http://127.0.0.1:{port}/v1" in printed, printed
        api = client(f"http://127.0.0.1:{port}/")
        deadline = time.monotonic() + 120
        asked = [{"role": "user", "content": "How much did the cooperative pay for the orchard?"}]
        while True:
            completion = api.chat.completions.create(model="newsqa", messages=asked)
            if "80,000" in completion.choices[0].message.content or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert "80,000" in completion.choices[0].message.content
        assert completion.model_extra["newsqa"]["citations"][0]["title"] == STORIES["orchard"][0]
