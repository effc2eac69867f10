"""What Open WebUI asks beyond a question: its background tasks (a title, tags, follow-ups) are not
answered from the articles, but done by the LLM or answered `{}`; on real servers, one extractive and
one whose `newsqa` model is an LLM (the stand-in of test_ui_look)."""

from __future__ import annotations

import json

import httpx
import pytest

from app.ui.open_webui import NOTHING, is_client_task
from tests.test_api import LOGIN, api  # noqa: F401 (api: the extractive server fixture)
from tests.test_api_options import llm_api  # noqa: F401 (the LLM server fixture)
from tests.test_ui_look import WRITTEN, models  # noqa: F401 (models: the stand-in LLM server)

# Open WebUI 0.12's title task, its chat history longer than a question may be.
TITLE_TASK = (
    "### Task:\nGenerate a concise title summarizing the chat history.\n### Output:\nJSON format: "
    '{ "title": "your concise title here" }\n### Chat History:\n<chat_history>\n'
    + "USER: Where will the talks with the U.S. take place?\nASSISTANT: In Geneva [1].\n" * 40
    + "</chat_history>"
)


def test_a_task_is_told_from_a_question():
    assert is_client_task(TITLE_TASK)
    assert not is_client_task("Where will the talks with the U.S. take place?")
    assert not is_client_task("What is ### Task: in Open WebUI?")


def ask(url: str, content: str, **options) -> httpx.Response:
    body = {"model": "newsqa", "messages": [{"role": "user", "content": content}], **options}
    return httpx.post(f"{url}/chat/completions", json=body, auth=LOGIN, timeout=120)


@pytest.mark.slow
def test_without_an_llm_a_task_gets_an_empty_json_object_not_an_answer(api):  # noqa: F811
    url, _ = api
    done = ask(f"{url}v1", TITLE_TASK).json()
    assert done["choices"][0]["message"]["content"] == NOTHING and "newsqa" not in done
    with httpx.stream(
        "POST",
        f"{url}v1/chat/completions",
        json={"messages": [{"role": "user", "content": TITLE_TASK}], "stream": True},
        auth=LOGIN,
        timeout=120,
    ) as streamed:
        events = [line.removeprefix("data: ") for line in streamed.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == NOTHING


@pytest.mark.slow
def test_with_an_llm_a_task_goes_to_it_as_written(llm_api: str):  # noqa: F811
    done = ask(llm_api, TITLE_TASK).json()
    assert done["choices"][0]["message"]["content"] == WRITTEN  # the stand-in's reply, untouched
    assert "newsqa" not in done
