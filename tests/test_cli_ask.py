"""`newsqa ask` run as a user runs it, in a subprocess, over the seed index; and how it prints an
answer, in-process, from a given one."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from app.cli import asking
from app.documents import Answer, Citation, Filters, Passage, SentenceSupport
from app.engine import Engine
from conftest import make_passage, make_settings
from tests.conftest import SEED_FILE
from tests.test_ui_look import CHECKED, FALSE_SENTENCE, models  # noqa: F401 (models: the stand-in LLM server)

_SCRIPT = shutil.which("newsqa", path=str(Path(sys.executable).parent))
NEWSQA = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "app.cli"]


def newsqa(
    tmp_path: Path, *args: str, index: Path | None = None, stdin: str = "", **settings: str
) -> subprocess.CompletedProcess:
    """`newsqa ask ARGS` with only the NEWSQA_* `settings` given (NEWSQA_OPENAI_BASE_URL=...)."""
    # The user's own config file and backend settings stay out of the test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSQA_")} | settings
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    index_args = ["--index", str(index or tmp_path / "index")]
    return subprocess.run(
        [*NEWSQA, *index_args, "ask", *args], input=stdin, capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.slow
def test_ask_json_answers_geneva_citing_the_seed_article(seed_engine: Engine, tmp_path: Path):
    done = newsqa(
        tmp_path,
        "--llm",
        "extractive",
        "--json",
        "Where will the talks with the U.S. take place?",
        index=seed_engine.settings.index,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert not answer["refused"]
    assert "Geneva" in answer["answer"]
    assert answer["backend"] == "extractive"
    assert [c["file"] for c in answer["citations"]] == [SEED_FILE.name]
    citation = answer["citations"][0]
    assert "Geneva" in citation["sentence"]
    assert "highlight" in citation
    assert citation["passage"][citation["sentence_start"] : citation["sentence_end"]] == citation["sentence"]
    assert set(answer["timings"]) >= {"retrieve", "generate", "total"}


@pytest.mark.slow
def test_an_llm_answer_with_a_false_sentence_has_exactly_that_one_flagged(seed_engine: Engine, models, tmp_path: Path):
    """Through the openai: backend, against a stand-in server that writes three sentences about the
    seed article, one of which it does not say: the Answer, `--json` and the printed answer."""
    llm = {"NEWSQA_OPENAI_BASE_URL": f"{models}/v1", "NEWSQA_OPENAI_API_KEY": "unused"}
    engine = Engine(
        make_settings(
            seed_engine.settings.index, llm="openai:checked-model", openai_base_url=llm["NEWSQA_OPENAI_BASE_URL"]
        )
    )
    answer = engine.ask("Where will the talks with the U.S. take place?")
    assert answer.backend == "openai:checked-model" and answer.answer == CHECKED
    assert [s.supported for s in answer.sentences] == [True, False, True]
    assert answer.sentences[1].text == FALSE_SENTENCE and answer.sentences[1].support == ""
    for sentence in (answer.sentences[0], answer.sentences[2]):
        assert sentence.support and any(sentence.support in p.text for p in answer.passages)
    assert "1 sentence not found in the articles" in answer.warnings

    args = ("--llm", "openai:checked-model", "Where will the talks with the U.S. take place?")
    done = newsqa(tmp_path, "--json", *args, index=seed_engine.settings.index, **llm)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert [s["text"] for s in printed["sentences"] if not s["supported"]] == [FALSE_SENTENCE]
    assert printed["sentences"] == [s.as_dict() for s in answer.sentences]

    done = newsqa(tmp_path, *args, index=seed_engine.settings.index, **llm)
    assert done.returncode == 0, done.stderr
    assert f"{FALSE_SENTENCE.removesuffix('.')} [1]. (not found in the articles) He warned" in done.stdout
    assert done.stdout.count("(not found in the articles)") == 1
    assert "warning: 1 sentence not found in the articles" in done.stdout


@pytest.mark.slow
def test_ask_json_refuses_an_unrelated_question(seed_engine: Engine, tmp_path: Path):
    done = newsqa(
        tmp_path, "--llm", "extractive", "--json", "What is the capital of Peru?", index=seed_engine.settings.index
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["refused"]
    assert answer["citations"] == []
    assert [c["file"] for c in answer["closest"]] == [SEED_FILE.name]


@pytest.mark.slow
def test_interactive_ask_keeps_the_conversation_for_follow_ups(seed_engine: Engine, tmp_path: Path):
    done = newsqa(
        tmp_path,
        "--llm",
        "extractive",
        index=seed_engine.settings.index,
        stdin="Who is Andrew Rasiulis?\nWhat does he think Russia's strategy is?\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Canadian Global Affairs Institute" in done.stdout
    assert "bleed concessions" in done.stdout
    assert done.stdout.count("Sources:") == 2
    assert "; read as: What does Andrew Rasiulis think Russia's strategy is?)" in done.stdout
    assert "\033[" not in done.stdout  # not a terminal: no bold


SENTENCE = "The talks will be held in Geneva."
GENEVA = Citation(
    1, "a1", "Talks", date(2024, 1, 9), "Wire", "", "a.txt", SENTENCE, SENTENCE, 0, len(SENTENCE), highlight=(26, 32)
)


def answer(text: str, citations=(), refused: bool = False, passages=()) -> Answer:
    return Answer(
        "Where?",
        text,
        refused,
        tuple(citations),
        "extractive",
        {"total": 12.0},
        standalone_question="Where?",
        passages=tuple(passages),
    )


def passage(rank: int, published: date | None, source: str) -> Passage:
    return make_passage("Text.", rank, title=f"Story {rank}", published=published, source=source, file=f"s{rank}.txt")


ANSWERED = answer(f"{SENTENCE} [1]", [GENEVA])
REFUSED = answer(
    "The indexed articles do not answer this question.",
    refused=True,
    passages=[
        passage(1, None, "Wire"),
        passage(2, date(2024, 1, 2), "Wire"),
        passage(3, date(2024, 1, 3), ""),
        passage(4, date(2024, 1, 4), "Wire"),
    ],
)


class OneAnswer:
    """An engine that has one answer, whatever the question."""

    def __init__(self, answer: Answer):
        self.answer = answer

    def ask(self, question, history=(), as_of=None, filters=None):
        return self.answer


def test_ask_json_gives_the_highlight_of_each_citation(capsys):
    asking._ask_one(OneAnswer(ANSWERED), argparse.Namespace(json=True, as_of=None), Filters(), "Where?", ())
    [citation] = json.loads(capsys.readouterr().out)["citations"]
    assert citation["highlight"] == [26, 32] and citation["sentence"][26:32] == "Geneva"


def test_a_terminal_shows_the_asked_for_phrase_bold_and_a_pipe_plain_text(capsys):
    asking._print_streamed([ANSWERED.answer, ANSWERED], bold=True)
    out = capsys.readouterr().out
    assert out.startswith("The talks will be held in \033[1mGeneva\033[0m. [1]\n")
    assert '      "The talks will be held in \033[1mGeneva\033[0m."' in out
    asking._print_streamed(["The talks", ANSWERED.answer, ANSWERED])
    assert "\033[" not in capsys.readouterr().out


def test_a_cited_sentence_that_opens_a_quotation_is_printed_with_it_closed(capsys):
    passage = 'He said: "It is you who must act. We will wait."'
    start = passage.index('"It')
    end = passage.index(" We")
    citation = Citation(1, "a1", "Talks", None, "Wire", "", "a.txt", passage, passage[start:end], start, end)
    quoted = Answer("What did he say?", f'{passage[start:end]}" [1]', False, (citation,), "extractive", {})
    asking._print_streamed([quoted.answer, quoted])
    assert '      ""It is you who must act.""' in capsys.readouterr().out.splitlines()


def test_a_refusal_lists_the_closest_articles(capsys):
    asking._print_streamed([REFUSED.answer, REFUSED])
    assert capsys.readouterr().out.splitlines() == [
        "The indexed articles do not answer this question.",
        "Closest articles:",
        "  - Story 1 (Wire)  s1.txt",
        "  - Story 2 (Wire, 2024-01-02)  s2.txt",
        "  - Story 3 (2024-01-03)  s3.txt",
        "(extractive, 0.0 s)",
    ]


def checked(text: str, *supported: bool) -> Answer:
    """An LLM-like answer of three sentences, `supported` saying which a passage says."""
    texts = ("Talks will be held in Geneva.", "They last ten days.", "Both sides agreed.")
    sentences = tuple(SentenceSupport(t, (1,), ok, t if ok else "") for t, ok in zip(texts, supported))
    unsupported = supported.count(False)
    return replace(
        answer(text, [GENEVA]), sentences=sentences, warnings=(f"{unsupported} sentence not found in the articles",)
    )


def test_a_sentence_not_found_in_the_articles_is_marked_and_a_shown_one_shown_again_with_its_mark(capsys):
    text = "Talks will be held in Geneva [1]. They last ten days [1]. Both sides agreed [1]."
    asking._print_streamed([text[:40], text[:70], text, checked(text, True, False, True)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        text[:70],  # as streamed, the second sentence on screen
        "Talks will be held in Geneva [1]. They last ten days [1]. (not found in the articles) Both sides agreed [1].",
        "warning: 1 sentence not found in the articles",
    ]
    # The last sentence not found: its mark follows what was streamed, and nothing is shown twice.
    asking._print_streamed([text[:70], text, checked(text, True, True, False)])
    assert capsys.readouterr().out.splitlines()[0] == f"{text} (not found in the articles)"


def test_a_bad_date_is_a_one_line_error(tmp_path: Path):
    done = newsqa(tmp_path, "--as-of", "2021-02-30", "When?")
    assert done.returncode == 2
    assert "argument --as-of: not a date (YYYY-MM-DD): '2021-02-30'" in done.stderr
    assert "Traceback" not in done.stderr


def test_since_after_until_is_refused(tmp_path: Path):
    done = newsqa(tmp_path, "--since", "2021-12-31", "--until", "2021-01-01", "When?")
    assert done.returncode == 2
    assert done.stderr.strip() == "newsqa: --since 2021-12-31 is after --until 2021-01-01"


def test_an_unknown_backend_is_a_one_line_error(tmp_path: Path):
    done = newsqa(tmp_path, "--llm", "bogus", "When?")
    assert done.returncode == 2
    assert done.stderr.startswith("newsqa: unknown LLM backend 'bogus'")
    assert "Traceback" not in done.stderr


def test_an_answer_keeps_its_line_breaks_and_escapes_every_other_control_character(capsys):
    """An LLM's answer, written under an article's influence, streamed and then whole: a colour change
    and a clipboard write (OSC 52) in it are printed as text, its own line break as a line break."""
    text = "Geneva\x1b[31m, they said.\nThe\x1b]52;c;aGk=\x07 rest. [1]"
    written = answer(text, [GENEVA])
    asking._print_streamed([text[:12], text, written], bold=True)
    out = capsys.readouterr().out
    assert out.startswith("Geneva\\x1b[31m, they said.\nThe\\x1b]52;c;aGk=\\x07 rest. [1]\n")
    assert "\x1b]" not in out and "\x07" not in out and "\x1b[31m" not in out
