"""The LLM judge: the verdict parsing, its prompt and votes over a scripted chat model, and the
real local-model path (a tiny random-weight GGUF through llama.cpp)."""

from __future__ import annotations

import importlib.util

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from app.llm import LLMBackend, LLMError
from app.settings import Settings
from eval import judge as judge_module
from eval.judge import judge_for, parse_verdict


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ("CORRECT", True),
        ("correct.", True),
        ("INCORRECT", False),
        ("Verdict: incorrect, the answer names someone else", False),
        ("The answer is CORRECT, not INCORRECT", True),  # the first verdict counts
        ("I cannot tell", None),
        ("", None),
        ("Incorrectly phrased but CORRECTED", None),  # whole words only
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict


class Prompts(BaseCallbackHandler):
    def __init__(self):
        self.seen: list[list] = []

    def on_chat_model_start(self, serialized, messages, **kwargs):
        self.seen.extend(messages)


def scripted_backend(monkeypatch, replies: list[str]) -> tuple[Prompts, list[Settings]]:
    prompts, chosen = Prompts(), []

    def select(settings: Settings):
        chosen.append(settings)
        model = FakeListChatModel(responses=replies, callbacks=[prompts])
        return LLMBackend("scripted", model, window=4000, max_tokens=100)

    monkeypatch.setattr(judge_module, "select_backend", select)
    return prompts, chosen


def test_judge_votes_at_temperature_zero_with_the_gold_answers_in_the_prompt(tmp_path, monkeypatch):
    prompts, chosen = scripted_backend(monkeypatch, ["CORRECT", "I am not sure", "INCORRECT"])
    judge = judge_for(Settings(index=tmp_path, llm="ollama:any", llm_temperature=0.7, eval_judge_votes=3))
    assert chosen[0].llm_temperature == 0.0
    assert judge("Who won?", ["Priya Natarajan", "Natarajan"], "Priya Natarajan won [1].") == [True, False]
    assert len(prompts.seen) == 3
    system, user = prompts.seen[0]
    assert "CORRECT or INCORRECT" in system.content
    assert "Who won?" in user.content and "- Priya Natarajan\n- Natarajan" in user.content
    assert "Priya Natarajan won [1]." in user.content


def test_no_judge_without_an_llm_or_with_zero_votes(tmp_path, monkeypatch, capsys):
    assert judge_for(Settings(index=tmp_path, llm="extractive")) is None
    scripted_backend(monkeypatch, ["CORRECT"])
    assert judge_for(Settings(index=tmp_path, llm="ollama:any", eval_judge_votes=0)) is None

    def unusable(settings):
        raise LLMError("llamacpp: no model file at /nowhere.gguf")

    monkeypatch.setattr(judge_module, "select_backend", unusable)
    assert judge_for(Settings(index=tmp_path, llm="llamacpp:/nowhere.gguf")) is None
    assert "no LLM judge: llamacpp: no model file" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (make install-llamacpp; CI installs it)",
)
def test_judge_runs_on_a_real_local_model(tmp_path, tiny_gguf):
    """The tiny model speaks gibberish, so its replies hold no verdict: every vote is left out,
    and the run goes on (the question then has no judge_correct)."""
    judge = judge_for(
        Settings(
            index=tmp_path, llm=f"llamacpp:{tiny_gguf}", llm_context_tokens=2048, llm_max_tokens=16, eval_judge_votes=2
        )
    )
    assert judge is not None
    assert judge("Where are the talks?", ["Geneva"], "In Geneva [1].") == []


def test_a_malformed_backend_is_one_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="unknown LLM backend 'gpt'"):
        judge_for(Settings(index=tmp_path, llm="gpt"))
