"""The HTTP API served beside the chat page, behind its login.

`GET /v1/models` and `POST /v1/chat/completions` speak the OpenAI chat API, so that Open WebUI,
LibreChat, editors and scripts can use newsqa as a model: the last user message is the question, the
earlier turns its history, and the reply is the answer with its [n] markers and its sources, the
whole Answer in a `newsqa` field. `POST /api/ask` gives the Answer as `newsqa ask --json` prints it,
for scripts that do not want Gradio's client.

With a login set, a request carries it as its API key (`Authorization: Bearer USER:PASS`) or as HTTP
basic auth; wrong keys are throttled per client as page logins are. Bodies are bounded in size and
length and read as JSON here, so a bad one gets a one-line 4xx reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from app.answering import EXTRACTIVE
from app.documents import Answer, Filters
from app.ui.auth import LoginThrottle, login_check
from app.ui.render import api_markdown

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.engine import Engine

# Model id -> the NEWSQA_LLM value it answers with (None: the configured backend).
MODELS: dict[str, str | None] = {"newsqa": None, "newsqa-extractive": EXTRACTIVE}
MAX_BODY_BYTES = 1_000_000
MAX_QUESTION_CHARS = 2_000
MAX_MESSAGE_CHARS = 20_000  # an earlier answer, sources and all
# A chat client sends the whole conversation every time: a long one is taken, and only its latest
# turns become the history (a follow-up leans on those; the condense prompt stays small).
MAX_MESSAGES = 400
HISTORY_TURNS = 6
SOURCES_HEADING = "\n\n**Sources**"  # where api_markdown's sources start: not history for a follow-up


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind

    def response(self) -> JSONResponse:
        """The OpenAI error shape, which its clients show as the message."""
        headers = {"WWW-Authenticate": 'Bearer realm="newsqa"'} if self.status == 401 else None
        return JSONResponse(
            {"error": {"message": str(self), "type": self.kind, "param": None, "code": None}},
            status_code=self.status,
            headers=headers,
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(BaseModel):
    type: str
    text: str = ""


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, tool calls...: not used

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @field_validator("content")
    @classmethod
    def _bounded(cls, content: str | list[TextPart] | None) -> str | list[TextPart] | None:
        if len(content if isinstance(content, str) else "".join(p.text for p in content or ())) > MAX_MESSAGE_CHARS:
            raise ValueError(f"a message is over {MAX_MESSAGE_CHARS} characters")
        return content

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # temperature, max_tokens...: the backend's settings decide

    model: str = "newsqa"
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False


class FiltersIn(_Strict):
    source: str | None = Field(None, max_length=200)
    since: date | None = None
    until: date | None = None


class AskRequest(_Strict):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[tuple[str, str]] = Field(default_factory=list, max_length=MAX_MESSAGES // 2)
    as_of: date | None = None
    filters: FiltersIn = Field(default_factory=FiltersIn)

    def latest_history(self) -> list[tuple[str, str]]:
        return self.history[-HISTORY_TURNS:]


def conversation(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last user message) and the latest HISTORY_TURNS (question, answer) turns
    before it; system messages are not newsqa's to follow, and an earlier answer's sources list is
    left out."""
    turns: list[tuple[str, str]] = []
    question = None
    for message in messages:
        if message.role == "user":
            if question is not None:
                turns.append((question, ""))
            question = message.text()
        elif message.role == "assistant" and question is not None:
            turns.append((question, message.text().split(SOURCES_HEADING)[0]))
            question = None
    if question is None or not question.strip():
        raise ApiError(400, "the last message must be the user's question")
    if len(question) > MAX_QUESTION_CHARS:
        raise ApiError(400, f"the question is over {MAX_QUESTION_CHARS} characters")
    return question, turns[-HISTORY_TURNS:]


async def _read(request: Request, schema: type[BaseModel]) -> BaseModel:
    """The request's JSON body as `schema`, read up to MAX_BODY_BYTES."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body is over {MAX_BODY_BYTES / 1e6:g} MB")
    try:
        return schema.model_validate(json.loads(body))
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the body is not JSON: {error}") from None
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "body"
        raise ApiError(400, f"{where}: {problem['msg']}") from None


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _chunk(completion: str, model: str, delta: dict, finish: str | None = None, **extra) -> str:
    payload = {
        "id": completion,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def completion_events(parts: Iterator[str | Answer], model: str) -> Iterator[str]:
    """Server-sent events in the OpenAI chunk format: the answer as it is written, then the rest of
    its final form (markers resolved, sentences not found in the articles marked, sources), the
    Answer riding on the last chunk, then [DONE]. When the final text does not continue what was sent
    (the LLM failed mid-answer, a marker was moved, or a sentence already sent is marked), it follows
    whole."""
    completion = _completion_id()
    yield _chunk(completion, model, {"role": "assistant", "content": ""})
    sent = ""
    try:
        for part in parts:
            if isinstance(part, Answer):
                final = api_markdown(part)
                rest = final[len(sent) :] if final.startswith(sent) else "\n\n" + final
                yield _chunk(completion, model, {"content": rest})
                yield _chunk(completion, model, {}, "stop", newsqa=part.as_dict())
            elif part.startswith(sent) and len(part) > len(sent):
                yield _chunk(completion, model, {"content": part[len(sent) :]})
                sent = part
    except ValueError as error:
        yield f"data: {json.dumps({'error': {'message': str(error), 'type': 'invalid_request_error'}})}\n\n"
    yield "data: [DONE]\n\n"


def add_api_routes(app: FastAPI, engine: Engine, credentials: tuple[str, str] | None) -> None:
    """Serve the API on the page's app; behind `credentials` when given."""
    router = APIRouter()
    check = login_check(credentials) if credentials else None
    throttle = LoginThrottle(None)

    def authorise(request: Request) -> None:
        if check is None:
            return
        host = request.client.host if request.client else ""
        wait = throttle.locked_for(host)
        given = _given_login(request.headers.get("authorization", ""))
        if not wait and given and check(*given):
            return
        wait = wait or throttle.admit(host)
        if wait:
            raise ApiError(429, f"too many failed logins: try again in {int(wait) + 1} s", "rate_limit_error")
        raise ApiError(
            401,
            "sign in: send the page's login as the API key (Bearer USER:PASS) or by basic auth",
            "authentication_error",
        )

    def endpoint(handler: Callable) -> Callable:
        """Auth first, and any ApiError as its JSON answer."""

        async def run(request: Request) -> Response:
            try:
                authorise(request)
                return await handler(request)
            except ApiError as error:
                return error.response()

        return run

    @endpoint
    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": name, "object": "model", "created": 0, "owned_by": "newsqa"} for name in MODELS],
            }
        )

    @endpoint
    async def chat_completions(request: Request) -> Response:
        chat = await _read(request, ChatRequest)
        if chat.model not in MODELS:
            raise ApiError(404, f"no model {chat.model!r}; models: {', '.join(MODELS)}", "model_not_found")
        question, history = conversation(chat.messages)
        llm = MODELS[chat.model]
        if chat.stream:
            parts = engine.stream(question, history=history, llm=llm)
            return StreamingResponse(
                completion_events(parts, chat.model),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        answer = await run_in_threadpool(engine.ask, question, history, llm=llm)
        return JSONResponse(
            {
                "id": _completion_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": chat.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": api_markdown(answer)},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "newsqa": answer.as_dict(),
            }
        )

    @endpoint
    async def ask(request: Request) -> Response:
        asked = await _read(request, AskRequest)
        filters = Filters(**asked.filters.model_dump())
        try:
            answer = await run_in_threadpool(engine.ask, asked.question, asked.latest_history(), asked.as_of, filters)
        except ValueError as error:  # e.g. a question of spaces
            raise ApiError(400, str(error)) from None
        return JSONResponse(answer.as_dict())

    router.add_api_route("/v1/models", models, methods=["GET"], include_in_schema=False)
    router.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], include_in_schema=False)
    router.add_api_route("/api/ask", ask, methods=["POST"], include_in_schema=False)
    app.include_router(router)


def _given_login(header: str) -> tuple[str, str] | None:
    """(user, password) from `Bearer USER:PASS` or `Basic base64(USER:PASS)`; None when absent or malformed."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    user, sep, password = value.strip().partition(":")
    return (user, password) if sep else None
