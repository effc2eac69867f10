"""LLM backends: choosing one from the settings, and the two chains every backend runs, the
condense chain (a follow-up made standalone) and the answer chain (cited, from the passages only).

Every backend is a LangChain chat model (ChatOllama, ChatOpenAI, or LlamaCppChatModel over an
in-process llama.cpp), so the chains, the fitting to the context window and the error handling
are one code path. Whatever goes wrong on the model's side comes out as an LLMError with a
one-line message, for the caller to fall back on the extractive answer.
"""

from __future__ import annotations

import importlib.util
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import openai
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser

from app.documents import Passage
from app.prompting import (
    conversation_block,
    count_message_tokens,
    estimate_tokens,
    load_template,
    longest_fitting_prefix,
    passage_block,
)
from app.settings import Settings

# What the model must answer when the passages do not hold the answer (prompts/answer.txt).
REFUSAL = "The articles do not say."

BACKEND_KINDS = ("auto", "extractive", "ollama:MODEL", "openai:MODEL", "llamacpp:PATH.gguf")
# How long `auto` waits for Ollama to say which models it has.
OLLAMA_PROBE_SECONDS = 1.0

_LABEL = re.compile(r"^(?:standalone question|question)\s*:\s*", re.IGNORECASE)


class LLMError(Exception):
    """The model is missing, down, too slow, or said nothing usable; the message is one line."""


@dataclass(frozen=True)
class Limits:
    """What a request asks of one answer's writing: at most `max_tokens` tokens, as the backend
    counts them (its model's tokenizer, else an estimate that errs short; None: the backend's own
    limit, which a request cannot raise), ending before any of `stop`."""

    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass
class Generation:
    """One answer as it is written: iterating gives its text deltas; then `finish_reason` is "stop",
    or "length" when `max_tokens` ended it, and `usage` holds the tokens the model reported
    (`prompt_tokens`, `completion_tokens`; empty when it reports none)."""

    deltas: Iterator[str]
    finish_reason: str = "stop"
    usage: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[str]:
        return self.deltas


class LLMBackend:
    """A chat model with the prompts around it, sized to its context window.

    `window` is the model's context in tokens, of which `max_tokens` stay free for the reply;
    `count_tokens` is the model's tokenizer when it is at hand, else a safe estimate; `timeout` is
    only named in messages (the client enforces it).
    """

    def __init__(
        self,
        name: str,
        model: BaseChatModel,
        window: int,
        max_tokens: int,
        count_tokens: Callable[[str], int] = estimate_tokens,
        timeout: float | None = None,
    ):
        self.name = name
        self.model = model
        self.window = window
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        self.timeout = timeout
        self._chain = model | StrOutputParser()

    @property
    def prompt_budget(self) -> int:
        """Tokens the prompt may take."""
        return self.window - self.max_tokens

    def prompt_tokens(self, messages: Sequence[BaseMessage]) -> int:
        return count_message_tokens(messages, self.count_tokens)

    def answer_messages(
        self, question: str, passages: Sequence[Passage], as_of: date | None = None
    ) -> list[BaseMessage]:
        return load_template("answer").format_messages(
            question=question.strip(),
            passages=passage_block(passages),
            refusal=REFUSAL,
            as_of=(as_of or date.today()).isoformat(),
        )

    def condense_messages(self, question: str, history: Sequence[tuple[str, str]]) -> list[BaseMessage]:
        return load_template("condense").format_messages(question=question.strip(), history=conversation_block(history))

    def fit_passages(self, question: str, passages: Sequence[Passage], as_of: date | None = None) -> list[Passage]:
        """The best-ranked passages whose prompt fits the window: the lowest-ranked are dropped
        whole, never cut. The answer's [n] markers number this list."""
        with self._errors():
            kept = longest_fitting_prefix(
                len(passages),
                lambda n: self.prompt_tokens(self.answer_messages(question, passages[:n], as_of)) <= self.prompt_budget,
            )
        if passages and not kept:
            raise LLMError(
                f"{self.name}: not even one passage fits the model's context window "
                f"({self.window} tokens, {self.max_tokens} kept for the answer)"
            )
        return list(passages[:kept])

    def condense(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """`question` rewritten to stand alone, given the conversation so far (oldest turn first).
        Turns that do not fit the window are dropped, oldest first."""
        if not history:
            return question
        latest_first = list(reversed(history))
        with self._errors():
            kept = longest_fitting_prefix(
                len(latest_first),
                lambda n: self.prompt_tokens(self.condense_messages(question, latest_first[:n][::-1]))
                <= self.prompt_budget,
            )
            if not kept:
                raise LLMError(
                    f"{self.name}: the last turn of the conversation does not fit the model's "
                    f"context window ({self.window} tokens)"
                )
            text = self._chain.invoke(self.condense_messages(question, latest_first[:kept][::-1]))
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        standalone = _LABEL.sub("", lines[0]).strip().strip("\"'“”") if lines else ""
        self._check(standalone)
        return standalone

    def stream(
        self, question: str, passages: Sequence[Passage], as_of: date | None = None, limits: Limits = Limits()
    ) -> Generation:
        """The answer as text deltas, built from `fit_passages(question, passages, as_of)` and citing
        them as [1], [2]; exactly REFUSAL when they do not hold the answer. `as_of` (default today) is
        the date the question's time words are read from. An LLMError may come after some deltas (a
        server that stops, an answer that turns out empty or garbled)."""
        generation = Generation(iter(()))
        if not passages:
            generation.deltas = iter([REFUSAL])
        else:
            messages = self.answer_messages(question, self.fit_passages(question, passages, as_of), as_of)
            generation.deltas = self._written(messages, limits, generation)
        return generation

    def _written(self, messages: list[BaseMessage], limits: Limits, generation: Generation) -> Iterator[str]:
        """The model's deltas within `limits`: cut before a stop sequence (the model is told them too,
        but not every server obeys; the last few characters wait until no stop sequence can begin
        there), and ended, the model's stream closed, at a request's max_tokens (the backend's own
        limit is the model's to keep: counted here, a token estimate would cut answers short)."""
        budget = limits.max_tokens if limits.max_tokens and limits.max_tokens < self.max_tokens else None
        held_back = max(map(len, limits.stop), default=1) - 1
        text = produced = ""
        with self._errors():
            for chunk in self.model.stream(messages, stop=list(limits.stop) or None):
                if chunk.usage_metadata:
                    usage = chunk.usage_metadata
                    generation.usage = {
                        "prompt_tokens": usage["input_tokens"],
                        "completion_tokens": usage["output_tokens"],
                    }
                text += chunk.text
                stops = [at for stop in limits.stop if (at := text.find(stop)) >= 0]
                ended = bool(stops)
                text = text[: min(stops, default=len(text))]
                if budget and self.count_tokens(text) > budget:
                    text, ended = _first_tokens(text, budget, self.count_tokens), True
                    generation.finish_reason = "length"
                if ended:
                    break
                if len(text) - held_back > len(produced):
                    yield text[len(produced) : len(text) - held_back]
                    produced = text[: len(text) - held_back]
        if len(text) > len(produced):
            yield text[len(produced) :]
            produced = text
        self._check(produced)

    def _check(self, text: str) -> None:
        problem = unusable(text)
        if problem:
            raise LLMError(f"{self.name}: {problem}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except LLMError:
            raise
        except Exception as error:  # the boundary with the model's client: any failure there is an answer
            raise LLMError(f"{self.name}: {describe(error, self.timeout)}") from error


def _first_tokens(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of `text` that counts at most `budget` tokens."""
    return text[: longest_fitting_prefix(len(text), lambda n: count_tokens(text[:n]) <= budget)]


def unusable(text: str) -> str | None:
    """Why `text` is no answer (empty, no words, unreadable characters), or None when it is one."""
    text = text.strip()
    if not text:
        return "the model returned an empty answer"
    if not any(ch.isalnum() for ch in text):
        return "the model returned no words"
    unreadable = sum(ch == "\ufffd" or (unicodedata.category(ch).startswith("C") and ch not in "\n\t") for ch in text)
    if unreadable > len(text) / 10:
        return "the model returned unreadable characters"
    return None


def describe(error: BaseException, timeout: float | None) -> str:
    """One line for a failure of a model or its server."""
    if isinstance(error, (TimeoutError, httpx.TimeoutException, openai.APITimeoutError)):
        return f"no answer within {timeout:g} s (NEWSQA_LLM_TIMEOUT)" if timeout else "timed out"
    message = " ".join(str(error).split()) or type(error).__name__
    if message == "No generation chunks were returned":  # LangChain, of a stream that held nothing
        return "the model returned an empty answer"
    if isinstance(error, (ConnectionError, httpx.TransportError, openai.APIConnectionError)):
        return f"cannot reach the server ({message})"
    return message


def select_backend(settings: Settings) -> LLMBackend | None:
    """The backend NEWSQA_LLM names; None for the extractive answerer. A malformed value is a
    ValueError; a backend that cannot be used (not installed, no file, no key) an LLMError."""
    spec = settings.llm.strip()
    kind, _, target = spec.partition(":")
    target = target.strip()
    if spec == "extractive":
        return None
    if spec == "auto":
        return _auto_backend(settings)
    if kind == "ollama" and target:
        return ollama_backend(settings, target)
    if kind == "openai" and target:
        return openai_backend(settings, target)
    if kind == "llamacpp" and target:
        return llamacpp_backend(settings, target)
    raise ValueError(f"unknown LLM backend {spec!r}: use one of {', '.join(BACKEND_KINDS)}")


def _auto_backend(settings: Settings) -> LLMBackend | None:
    """Ollama when it answers with the configured model; else an OpenAI-compatible server when
    newsqa's own settings name one (a stray OPENAI_API_KEY does not send articles out); else None."""
    if ollama_has_model(settings.ollama_url, settings.ollama_model):
        return ollama_backend(settings, settings.ollama_model)
    if settings.openai_api_key or settings.openai_base_url:
        return openai_backend(settings, settings.openai_model)
    return None


def ollama_models(url: str) -> list[str]:
    """The models installed on the Ollama server at `url` (its /api/tags); none when it does not answer."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/api/tags", timeout=OLLAMA_PROBE_SECONDS)
        response.raise_for_status()
        return [str(entry["name"]) for entry in response.json()["models"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return []


def ollama_has_model(url: str, model: str) -> bool:
    """Whether an Ollama server answers at `url` and has `model` ("llama3.2" matches "llama3.2:latest")."""
    names = set(ollama_models(url))
    return model in names or (":" not in model and f"{model}:latest" in names)


def ollama_backend(settings: Settings, model: str) -> LLMBackend:
    from langchain_ollama import ChatOllama

    chat = ChatOllama(
        model=model,
        base_url=settings.ollama_url,
        num_ctx=settings.ollama_num_ctx,
        num_predict=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        client_kwargs={"timeout": settings.llm_timeout},
    )
    return LLMBackend(
        f"ollama:{model}",
        chat,
        window=settings.ollama_num_ctx,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
    )


def openai_endpoint(settings: Settings) -> tuple[str | None, str | None]:
    """The OpenAI-compatible server's base URL and key: newsqa's settings, else OPENAI_BASE_URL and
    OPENAI_API_KEY; None for either that is not set (no base URL: api.openai.com)."""
    base_url = settings.openai_base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else os.environ.get("OPENAI_API_KEY")
    return base_url, key or None


def openai_backend(settings: Settings, model: str) -> LLMBackend:
    from langchain_openai import ChatOpenAI

    base_url, key = openai_endpoint(settings)
    if not key and not base_url:
        raise LLMError(
            "openai: no API key: set NEWSQA_OPENAI_API_KEY (or OPENAI_API_KEY), or "
            "NEWSQA_OPENAI_BASE_URL for a local server"
        )
    chat = ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=key or "unused",  # local servers ask for none, the client insists on one
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        # ChatOpenAI sends the limit as max_completion_tokens, which servers such as llama.cpp's
        # ignore (they generate until the window is full); they read max_tokens.
        extra_body={"max_tokens": settings.llm_max_tokens} if base_url else None,
        timeout=settings.llm_timeout,
        max_retries=0,  # a failure falls back to the extractive answer at once, not after retries
    )
    return LLMBackend(
        f"openai:{model}",
        chat,
        window=settings.llm_context_tokens,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
    )


def llamacpp_backend(settings: Settings, path: str) -> LLMBackend:
    """llama.cpp in this process; the model loads on first use. The timeout bounds each generation."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise LLMError(
            "llamacpp: llama-cpp-python is not installed: pip install 'newsqa[llamacpp]' (or make install-llamacpp)"
        )
    model_path = Path(path).expanduser()
    if not model_path.is_file():
        raise LLMError(f"llamacpp: no model file at {model_path}")
    from app.llamacpp import LlamaCppChatModel

    chat = LlamaCppChatModel(
        model_path=str(model_path),
        n_ctx=settings.llm_context_tokens,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
    )
    return LLMBackend(
        f"llamacpp:{model_path.name}",
        chat,
        window=settings.llm_context_tokens,
        max_tokens=settings.llm_max_tokens,
        count_tokens=chat.count_tokens,
        timeout=settings.llm_timeout,
    )
