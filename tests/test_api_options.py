"""The OpenAI request options the API honours (max_tokens, stop, usage, a model by id) and those it
refuses with a reason (n > 1, tools, JSON answers, log-probabilities): in-process, and on a real
server whose `newsqa` model is an LLM (the stand-in OpenAI-compatible server of test_ui_look)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from app.engine import Engine
from app.llm import Limits
from app.ui import auth, server
from app.ui.api import ChatRequest, add_api_routes
from tests.conftest import free_port, make_settings
from tests.test_api import LOGIN, QUESTION
from tests.test_ui_look import WRITTEN, models  # noqa: F401 (models: the stand-in LLM server)

ASKED = [{"role": "user", "content": QUESTION}]


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        ({"n": 2}, "newsqa gives one answer a request (n must be 1)"),
        ({"tool_choice": "required"}, "newsqa answers from its articles and calls no tools"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "calls no tools"),
        ({"response_format": {"type": "json_object"}}, "response_format type text"),
        ({"logprobs": True}, "newsqa does not give log-probabilities"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_what_newsqa_cannot_do_is_refused_with_the_reason(option: dict, reason: str):
    with pytest.raises(ValueError, match=re.escape(reason)):
        ChatRequest.model_validate({"messages": ASKED, **option})


def test_tools_offered_are_left_uncalled():
    """Open WebUI offers its own tools with every request: an answer that calls none is allowed."""
    tools = [{"type": "function", "function": {"name": "get_current_timestamp"}}]
    for choice in (None, "auto", "none"):
        ChatRequest.model_validate({"messages": ASKED, "tools": tools, "tool_choice": choice})


def test_max_tokens_and_stop_become_the_answer_s_limits():
    assert ChatRequest.model_validate({"messages": ASKED}).limits() == Limits()
    assert ChatRequest.model_validate({"messages": ASKED, "max_tokens": 9, "stop": "\n"}).limits() == Limits(9, ("\n",))
    newer = ChatRequest.model_validate({"messages": ASKED, "max_tokens": 9, "max_completion_tokens": 5, "stop": ["x"]})
    assert newer.limits() == Limits(5, ("x",))  # the newer name wins, as OpenAI's own API has it


@pytest.fixture(scope="module")
def llm_api(seed_engine: Engine, models: str) -> Iterator[str]:  # noqa: F811 (the fixture, imported)
    """The API over the seed index whose `newsqa` model is an LLM, behind LOGIN; its /v1 URL."""
    import gradio as gr

    settings = make_settings(seed_engine.settings.index, llm="openai:quick-model", openai_base_url=f"{models}/v1")
    engine = Engine(settings)
    with gr.Blocks() as blocks:
        gr.Markdown("the chat page")
    login = auth.Login(LOGIN)
    url = server.launch(blocks, "127.0.0.1", free_port(), login, max_file_bytes=1000)
    add_api_routes(blocks.server_app, engine, login)
    yield f"{url}v1"
    blocks.close()


def complete(url: str, **options) -> httpx.Response:
    return httpx.post(f"{url}/chat/completions", json={"messages": ASKED, **options}, auth=LOGIN, timeout=120)


@pytest.mark.slow
def test_an_llm_answer_ends_at_max_tokens_with_finish_reason_length(llm_api: str):
    whole = complete(llm_api).json()
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["choices"][0]["message"]["content"].startswith(WRITTEN.removesuffix(" [1]."))

    cut = complete(llm_api, max_tokens=4).json()  # the backend's estimate, 3 bytes a token: 12 bytes
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["newsqa"]["answer"].startswith("Putin said a") and "expansion" not in cut["newsqa"]["answer"]
    assert cut["newsqa"]["finish_reason"] == "length"


@pytest.mark.slow
def test_an_llm_answer_ends_before_a_stop_sequence(llm_api: str):
    stopped = complete(llm_api, stop=["NATO"]).json()
    assert stopped["newsqa"]["answer"].startswith("Putin said any further")
    assert "NATO" not in stopped["newsqa"]["answer"]
    assert stopped["choices"][0]["finish_reason"] == "stop"


@pytest.mark.slow
def test_a_stream_asked_for_its_usage_ends_with_it(llm_api: str):
    body = {"messages": ASKED, "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 4}
    with httpx.stream("POST", f"{llm_api}/chat/completions", json=body, auth=LOGIN, timeout=120) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    *chunks, last = [json.loads(event) for event in events[:-1]]
    assert last["choices"] == [] and set(last["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks).startswith("Putin said")


@pytest.mark.slow
def test_a_model_is_served_by_its_id(llm_api: str):
    found = httpx.get(f"{llm_api}/models/newsqa-extractive", auth=LOGIN)
    assert found.status_code == 200 and found.json()["id"] == "newsqa-extractive"
    missing = httpx.get(f"{llm_api}/models/gpt-4o", auth=LOGIN)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no model 'gpt-4o'; models: newsqa, newsqa-extractive"
    assert httpx.get(f"{llm_api}/models/newsqa").status_code == 401  # behind the login like the rest


@pytest.mark.slow
def test_a_refused_option_is_a_400_on_the_wire(llm_api: str):
    refused = complete(llm_api, n=3)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "n: newsqa gives one answer a request (n must be 1)"
