"""A LangChain chat model over llama.cpp in this process (llama-cpp-python, an optional extra).

Written here rather than taken from langchain-community (its ChatLlamaCpp), which would bring a
large dependency tree for some forty lines: this wraps `Llama.create_chat_completion`, which
applies the chat template stored in the GGUF file, and exposes the model's own tokenizer so the
prompt can be fitted to the window exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr


class Deadline:
    """A logits processor that ends a generation running past `seconds`: llama.cpp calls it before
    every token (reading the prompt is not cut). Past the deadline only the end-of-text token can
    come, and `check` raises; raising in here would be lost in llama.cpp's C callback."""

    def __init__(self, seconds: float, end_token: int):
        self.seconds = seconds
        self.end_token = end_token
        self.until = time.monotonic() + seconds
        self.passed = False

    def __call__(self, input_ids, scores):
        if time.monotonic() > self.until:
            self.passed = True
            scores[:] = -np.inf
            scores[self.end_token] = 0.0
        return scores

    def check(self) -> None:
        if self.passed:
            raise TimeoutError(f"no answer within {self.seconds:g} s")


class LlamaCppChatModel(BaseChatModel):
    model_path: str
    n_ctx: int = 4096
    temperature: float = 0.0
    max_tokens: int = 512
    timeout: float | None = None  # seconds a generation may take; None: no limit

    _llama: Any = PrivateAttr(default=None)
    _loading: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    # One llama.cpp context serves one generation at a time (the chat page may ask concurrently).
    _generating: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def llama(self):
        """The model, loaded on first use (seconds for a real GGUF file)."""
        with self._loading:
            if self._llama is None:
                from llama_cpp import Llama

                self._llama = Llama(model_path=self.model_path, n_ctx=self.n_ctx, verbose=False)
            return self._llama

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _complete(self, messages: list[BaseMessage], stop: list[str] | None, stream: bool):
        """The completion (or its stream) and the deadline to check once it is read; call with
        `_generating` held."""
        from llama_cpp import LogitsProcessorList

        deadline = Deadline(self.timeout or float("inf"), self.llama.token_eos())
        return self.llama.create_chat_completion(
            messages=convert_to_openai_messages(messages),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stop=stop or [],
            stream=stream,
            logits_processor=LogitsProcessorList([deadline]),
        ), deadline

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._generating:
            response, deadline = self._complete(messages, stop, stream=False)
        deadline.check()
        text = response["choices"][0]["message"].get("content") or ""
        usage = response["usage"]
        message = AIMessage(
            content=text,
            usage_metadata={
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._generating:
            parts, deadline = self._complete(messages, stop, stream=True)
            for part in parts:
                text = part["choices"][0]["delta"].get("content")
                if not text:
                    continue
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
            deadline.check()
