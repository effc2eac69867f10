"""The LLM judge: is an answer right, given the gold answers? (prompts/judge.txt)

Word overlap misses a right answer in other words ("Mitch McConnell" for the gold "Mitch
McConell"); a judge model does not. It runs at temperature 0 and is asked several times
(Settings.eval_judge_votes), so that its own instability shows up as the agreement figure.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from langchain_core.output_parsers import StrOutputParser

from app.llm import LLMError, describe, select_backend
from app.prompting import load_template
from app.settings import Settings
from eval.runner import Judge

_VERDICT = re.compile(r"\b(INCORRECT|CORRECT)\b", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """CORRECT -> True, INCORRECT -> False, whichever comes first; None when the reply has neither."""
    found = _VERDICT.search(text)
    return found.group(1).upper() == "CORRECT" if found else None


def judge_for(settings: Settings) -> Judge | None:
    """A judge over the configured LLM backend at temperature 0; None with the extractive answerer
    (no LLM to ask) or with eval_judge_votes = 0."""
    if settings.eval_judge_votes == 0:
        return None
    try:
        backend = select_backend(settings.model_copy(update={"llm_temperature": 0.0}))
    except LLMError as error:
        print(f"no LLM judge: {error}", file=sys.stderr)
        return None
    except ValueError as error:  # a malformed NEWSQA_LLM: said once, before any question is asked
        raise RuntimeError(str(error)) from error
    if backend is None:
        return None
    chain = load_template("judge") | backend.model | StrOutputParser()
    votes = settings.eval_judge_votes

    def judge(question: str, golds: Sequence[str], answer: str) -> list[bool]:
        """One verdict a vote; a vote that fails or cannot be read is left out."""
        verdicts = []
        for _ in range(votes):
            try:
                reply = chain.invoke(
                    {"question": question, "golds": "\n".join(f"- {g}" for g in golds), "answer": answer}
                )
            except Exception as error:  # noqa: BLE001 - the model's client may raise anything; the vote is lost
                print(f"judge: {describe(error, settings.llm_timeout)}", file=sys.stderr)
                continue
            verdict = parse_verdict(reply)
            if verdict is not None:
                verdicts.append(verdict)
        return verdicts

    return judge
