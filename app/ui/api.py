"""The HTTP API served beside the chat page, behind its login.

`GET /v1/models` and `POST /v1/chat/completions` speak the OpenAI chat API, so that Open WebUI,
LibreChat, editors and scripts can use newsqa as a model: the last user message is the question, the
earlier turns its history, and the reply is the answer with its [n] markers and its sources, the
whole Answer in a `newsqa` field. `POST /api/ask` gives the Answer as `newsqa ask --json` prints it,
for scripts that do not want Gradio's client.

With a login set, a request carries it as its API key (`Authorization: Bearer USER:PASS`) or as HTTP
basic auth, judged by the page's own `Login` and throttle (app/ui/auth.py). A client (an address, as
the throttle tells them apart) has at most API_CONCURRENCY requests in hand at once, so that one
cannot queue up the answerer for everyone. Bodies are bounded in size and length and read as JSON
here, so a bad one gets a one-line 4xx reason; a stream ends with [DONE] whatever happens.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from app.answering import EXTRACTIVE
from app.documents import Answer, Filters
from app.llm import Limits
from app.ui.auth import Login, client_key
from app.ui.open_webui import do_client_task, is_client_task, source_events
from app.ui.render import api_markdown, unlinked_markdown

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
API_CONCURRENCY = 4  # requests one client may have in hand at once
MAX_STOPS, MAX_STOP_CHARS = 4, 200  # OpenAI's own bounds on stop sequences

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", retry_after: int = 0):
        super().__init__(message)
        self.status, self.kind, self.retry_after = status, kind, retry_after

    def response(self) -> JSONResponse:
        """The OpenAI error shape, which its clients show as the message."""
        headers = {"WWW-Authenticate": 'Bearer realm="newsqa"'} if self.status == 401 else {}
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
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


def _unsupported(reason: str) -> PydanticCustomError:
    return PydanticCustomError("unsupported", reason)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """An OpenAI chat request: what maps onto newsqa is honoured (max_tokens, stop, usage), what
    cannot (several choices, a tool call demanded, a JSON answer, log-probabilities) is refused with
    the reason, tools offered are left uncalled, and sampling options (temperature, top_p, seed,
    user...) are the backend's settings to decide."""

    model_config = ConfigDict(extra="ignore")

    model: str = "newsqa"
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]] | None = Field(
        None, max_length=MAX_STOPS
    )
    n: int = 1
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise _unsupported("newsqa gives one answer a request (n must be 1)")
        return n

    @field_validator("tool_choice")
    @classmethod
    def _no_tool_call(cls, choice: Any) -> Any:
        # Tools offered are fine to leave uncalled (Open WebUI offers its own with every request);
        # a call demanded is not.
        if choice not in (None, "none", "auto"):
            raise _unsupported("newsqa answers from its articles and calls no tools")
        return choice

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, format: dict | None) -> dict | None:
        if format and format.get("type") != "text":
            raise _unsupported("newsqa answers in text with citations (response_format type text)")
        return format

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, logprobs: bool | None) -> bool | None:
        if logprobs:
            raise _unsupported("newsqa does not give log-probabilities")
        return logprobs

    def limits(self) -> Limits:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return Limits(max_tokens=self.max_completion_tokens or self.max_tokens, stop=tuple(stop))


def usage(answer: Answer) -> dict[str, int]:
    """The OpenAI usage of an answer: the tokens its LLM reported (zeros when none: extractive)."""
    prompt, completion = answer.usage.get("prompt_tokens", 0), answer.usage.get("completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


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
    """The request's JSON body as `schema`, read up to MAX_BODY_BYTES; whatever cannot be read, a
    400 with the reason."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body is over {MAX_BODY_BYTES / 1e6:g} MB")
    try:
        data = json.loads(body.decode("utf-8"))
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # a lone surrogate escaped as \ud800
    except UnicodeDecodeError as error:
        raise ApiError(400, f"the body is not UTF-8: byte {error.start} cannot be read") from None
    except UnicodeEncodeError as error:
        half = error.object[error.start]
        raise ApiError(400, f"the body holds a lone surrogate, {half!r}: half a character, not one") from None
    except json.JSONDecodeError as error:
        raise ApiError(400, f"the body is not JSON: {error}") from None
    except ValueError:  # json reads whole numbers with int(), which refuses very long ones
        raise ApiError(400, f"the body holds a number of over {sys.get_int_max_str_digits()} digits") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deep") from None
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(map(str, problem["loc"])) or "body"
        raise ApiError(400, f"{where}: {problem['msg']}") from None


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _chunk(completion: str, model: str, delta: dict, finish: str | None = None, **extra) -> str:
    """One event of a stream: `delta` as its one choice, unless `extra` says otherwise."""
    payload = {
        "id": completion,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _settled(text: str) -> str:
    """The text of a partial answer but a "[" not yet closed: it may become an [n] marker, which is
    escaped differently from a bracket."""
    opening = text.rfind("[")
    return text[:opening] if opening >= 0 and "]" not in text[opening:] else text


def completion_events(parts: Iterator[str | Answer], model: str, include_usage: bool = False) -> Iterator[str]:
    """Server-sent events in the OpenAI chunk format: the answer as it is written, then the rest of
    its final form (markers resolved, sentences not found in the articles marked, sources), the
    Answer riding on the last chunk, then [DONE]. When the final text does not continue what was sent
    (the LLM failed mid-answer, a marker was moved, or a sentence already sent is marked), it follows
    whole. No link, image or HTML from the text is in any of it."""
    completion = _completion_id()
    yield _chunk(completion, model, {"role": "assistant", "content": ""})
    sent = ""
    try:
        for part in parts:
            if isinstance(part, Answer):
                final = api_markdown(part)
                rest = final[len(sent) :] if final.startswith(sent) else "\n\n" + final
                yield _chunk(completion, model, {"content": rest})
                for event in source_events(part):  # Open WebUI's citation chips
                    yield _chunk(completion, model, {}, event=event)
                yield _chunk(completion, model, {}, part.finish_reason, newsqa=part.as_dict())
                if include_usage:  # OpenAI's last chunk: no choices, the usage
                    yield _chunk(completion, model, {}, usage=usage(part), choices=[])
                continue
            shown = unlinked_markdown(_settled(part))
            if shown.startswith(sent) and len(shown) > len(sent):
                yield _chunk(completion, model, {"content": shown[len(sent) :]})
                sent = shown
    except Exception as error:  # after the 200 has gone, an error event is the only way left to say it
        if not isinstance(error, ValueError):  # a ValueError is the question's fault, anything else a fault here
            log.exception("a streamed answer failed")
        yield f"data: {json.dumps({'error': {'message': str(error), 'type': 'invalid_request_error'}})}\n\n"
    yield "data: [DONE]\n\n"


class ClientSlots:
    """How many requests each client has in hand, up to API_CONCURRENCY."""

    def __init__(self):
        self.lock = threading.Lock()
        self.held: dict[str, int] = {}

    def take(self, client: str) -> bool:
        """Hold one of `client`'s slots; False when all are held."""
        with self.lock:
            if self.held.get(client, 0) >= API_CONCURRENCY:
                return False
            self.held[client] = self.held.get(client, 0) + 1
            return True

    def give_back(self, client: str) -> None:
        with self.lock:
            self.held[client] -= 1
            if not self.held[client]:
                del self.held[client]


class _Holding(Response):
    """`response` sent as it is, with a slot given back once it is sent, failed or abandoned (a
    stream's answer is written while it is sent)."""

    def __init__(self, response: Response, give_back: Callable[[], None]):
        self.response, self.give_back, self.background = response, give_back, None

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self.response(scope, receive, send)
        finally:
            self.give_back()


def _completion(model: str, content: str, finish: str = "stop", spent: dict | None = None, **extra) -> dict:
    """A whole chat.completion: `content` as its one choice."""
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": spent or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        **extra,
    }


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "newsqa"}


def _refusal(login: Login | None, authorization: str, host: str) -> ApiError | None:
    """Why `login` refuses a request with this Authorization header from `host`; None: it may go on."""
    verdict = login.authorise(authorization, host) if login else None
    if verdict is None or verdict.ok:
        return None
    if verdict.status == 429:
        return ApiError(429, verdict.reason, "rate_limit_error", verdict.retry_after)
    return ApiError(verdict.status, verdict.reason, "authentication_error")


def add_api_routes(app: FastAPI, engine: Engine, login: Login | None) -> None:
    """Serve the API on the page's app; behind `login` when given."""
    router = APIRouter()
    slots = ClientSlots()

    def endpoint(handler: Callable) -> Callable:
        """The login first, then one of the client's slots, and any ApiError as its JSON answer."""

        async def run(request: Request) -> Response:
            host = request.client.host if request.client else ""
            refusal = _refusal(login, request.headers.get("authorization", ""), host)
            client = client_key(host)
            if refusal is None and not slots.take(client):
                refusal = ApiError(
                    429, f"this client has {API_CONCURRENCY} requests in hand: wait for one", "rate_limit_error", 1
                )
            if refusal is not None:
                return refusal.response()
            try:
                response = await handler(request)
            except ApiError as error:
                response = error.response()
            except BaseException:
                slots.give_back(client)
                raise
            return _Holding(response, lambda: slots.give_back(client))

        return run

    @endpoint
    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [_model(name) for name in MODELS]})

    @endpoint
    async def model(request: Request) -> Response:
        name = request.path_params["model"]
        if name not in MODELS:
            raise ApiError(404, f"no model {name!r}; models: {', '.join(MODELS)}", "model_not_found")
        return JSONResponse(_model(name))

    @endpoint
    async def chat_completions(request: Request) -> Response:
        chat = await _read(request, ChatRequest)
        if chat.model not in MODELS:
            raise ApiError(404, f"no model {chat.model!r}; models: {', '.join(MODELS)}", "model_not_found")
        llm = MODELS[chat.model]
        if chat.messages[-1].role == "user" and is_client_task(task := chat.messages[-1].text()):
            done = await run_in_threadpool(do_client_task, engine, llm, task)
            if chat.stream:
                events = [_chunk(_completion_id(), chat.model, {"role": "assistant", "content": done}, "stop")]
                return StreamingResponse(iter([*events, "data: [DONE]\n\n"]), media_type="text/event-stream")
            return JSONResponse(_completion(chat.model, done))
        question, history = conversation(chat.messages)
        limits = chat.limits()
        if chat.stream:
            parts = engine.stream(question, history=history, llm=llm, limits=limits)
            include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
            return StreamingResponse(
                completion_events(parts, chat.model, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        answer = await run_in_threadpool(lambda: engine.ask(question, history, llm=llm, limits=limits))
        return JSONResponse(
            _completion(chat.model, api_markdown(answer), answer.finish_reason, usage(answer), newsqa=answer.as_dict())
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
    router.add_api_route("/v1/models/{model}", model, methods=["GET"], include_in_schema=False)
    router.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], include_in_schema=False)
    router.add_api_route("/api/ask", ask, methods=["POST"], include_in_schema=False)
    app.include_router(router)
