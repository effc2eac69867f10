"""`newsqa eval` end to end: a dataset with its own articles, the files it writes, the cached index,
the baseline verdict and its update."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from eval import dataset

DATED = dataset.OWN_SETS / "dated"
LINES = [
    json.dumps(
        {
            "id": "wing",
            "question": "Who is the new children's wing of the library named after?",
            "answers": ["Agnes Whitcombe"],
            "evidence": ["2025-06-10_library-reopens.md"],
            "answerable": True,
            "question_date": "2025-06-12",
        }
    ),
    "{not json",
    json.dumps(
        {
            "id": "too-early",
            "question": "Who won the Harlow Bay special mayoral election?",
            "answers": [],
            "evidence": [],
            "answerable": False,
            "question_date": "2025-04-20",
        }
    ),
]


@pytest.mark.slow
def test_eval_command_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSQA_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NEWSQA_INDEX", str(tmp_path / "main-index"))  # must stay untouched
    questions = tmp_path / "small.jsonl"
    questions.write_text("\n".join(LINES) + "\n")
    saved = tmp_path / "baseline.json"
    saved.write_text(
        json.dumps(
            {
                "datasets": {
                    "small": {
                        "backend": "extractive",
                        "metrics": {
                            "hit@1": {"value": 1.0, "tolerance": 0.0},
                            "answer_contains": {"value": 2.0, "tolerance": 0.5},
                        },
                    }
                }
            }
        )
    )
    args = [
        "eval",
        str(questions),
        "--articles",
        str(DATED / "articles"),
        "--llm",
        "extractive",
        "--json",
        "--out",
        str(tmp_path / "out.json"),
        "--report",
        str(tmp_path / "out.md"),
        "--baseline",
        str(saved),
    ]

    assert main(args) == 1  # answer_contains cannot reach 2.0 - 0.5
    out, err = capsys.readouterr()
    assert "hit@1" in out and "small" in out
    assert "line 2: not JSON" in err
    assert "small: answer_contains fell below its baseline" in err
    result = json.loads((tmp_path / "out.json").read_text())["datasets"]["small"]
    assert [q["id"] for q in result["questions"]] == ["wing", "too-early"]
    assert result["metrics"]["hit@1"] == 1.0
    assert result["metrics"]["answer_words"] >= 1  # the new answer metrics reach the JSON
    assert {"first_sentence", "phrase", "sentences"} <= set(result["questions"][0])
    assert "answer_contains fell below" in (tmp_path / "out.md").read_text()
    (cached,) = (tmp_path / "cache").iterdir()
    assert (cached / "complete").exists()
    assert not (tmp_path / "main-index").exists()

    assert main([*args, "--update-baseline"]) == 0
    written = json.loads(saved.read_text())["datasets"]["small"]["metrics"]
    assert written["answer_contains"]["tolerance"] == 0.5  # kept
    assert written["answer_contains"]["value"] == result["metrics"]["answer_contains"]
    capsys.readouterr()
    to_stdout = [arg for arg in args if arg not in ("--out", str(tmp_path / "out.json"))]
    assert main(to_stdout) == 0  # --json without --out: the JSON on stdout, the table on stderr
    out, err = capsys.readouterr()
    assert json.loads(out)["datasets"]["small"]["metrics"]["hit@1"] == 1.0
    assert "hit@1" in err
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cached.name]  # the index was reused


def test_eval_command_bad_input(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.jsonl")]) == 2
    assert "dataset not found" in capsys.readouterr().err
    assert main(["eval", "--articles", str(tmp_path)]) == 2
    assert "--articles needs a dataset" in capsys.readouterr().err
    assert main(["eval", "--out", str(tmp_path / "out.json")]) == 2  # --out is for --json
    assert "eval: --out FILE is where --json writes: add --json" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
