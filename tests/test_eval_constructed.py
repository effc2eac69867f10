"""Off-period questions on a tiny synthetic dataset: which articles stay, which questions are turned
unanswerable, and which are dropped because a remaining article still holds their answer."""

from __future__ import annotations

import json

import pytest

from eval import constructed
from eval.dataset import load

ARTICLES = {
    "geneva.md": ("2024-01-02", "Talks set for Geneva", "The talks will take place in Geneva next week."),
    "vote.md": ("2024-01-03", "Council vote", "The council voted for the new park, the mayor Ada Lind said."),
    "later.md": ("2024-03-01", "Spring fair", "Ada Lind opened the spring fair."),
    "market.md": ("2024-01-01", "Market day", "Stalls sold apples and pears in the square."),
}
QUESTIONS = [
    {
        "id": "where",
        "question": "Where are the talks?",
        "answers": ["Geneva"],
        "evidence": ["geneva.md"],
        "answerable": True,
        "question_date": "2024-01-05",
    },
    # her name is in later.md too, but that was published after the question: not retrievable then
    {
        "id": "mayor",
        "question": "Who is the mayor?",
        "answers": ["Ada Lind"],
        "evidence": ["vote.md"],
        "answerable": True,
        "question_date": "2024-01-05",
    },
    # ...and retrievable for this one, asked later: dropped
    {
        "id": "mayor-later",
        "question": "Who is the mayor now?",
        "answers": ["Ada Lind"],
        "evidence": ["vote.md"],
        "answerable": True,
        "question_date": "2024-04-01",
    },
    # "apple" is no whole word of market.md ("apples"): kept
    {
        "id": "fruit",
        "question": "Which fruit won the prize?",
        "answers": ["apple"],
        "evidence": ["geneva.md"],
        "answerable": True,
        "question_date": "2024-01-05",
    },
    {"id": "none", "question": "Who won the race?", "answers": [], "evidence": [], "answerable": False},
    {"id": "talk", "turns": [{"question": "Who spoke?", "answers": ["Ada Lind"]}], "evidence": ["vote.md"]},
]


@pytest.fixture
def dataset_dir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "articles").mkdir(parents=True)
    for name, (day, title, body) in ARTICLES.items():
        (folder / "articles" / name).write_text(f'---\ntitle: "{title}"\ndate: "{day}"\n---\n\n{body}\n')
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return folder


def test_off_period_questions_lose_their_evidence_and_answers(dataset_dir, tmp_path):
    out = tmp_path / "out"
    built = constructed.build(dataset_dir, out)
    assert sorted(p.name for p in (out / "articles").iterdir()) == ["later.md", "market.md"]
    assert (out / "articles" / "market.md").read_bytes() == (dataset_dir / "articles" / "market.md").read_bytes()
    assert built.dropped == {"mayor-later": "later.md"}
    assert (out / "dropped.tsv").read_text() == "mayor-later\tlater.md\n"
    assert (built.questions, built.articles, built.skipped) == (3, 2, 2)
    data = load(out / "questions.jsonl")
    assert not data.problems
    assert [q.id for q in data.questions] == ["where-offperiod", "mayor-offperiod", "fruit-offperiod"]
    where = data.questions[0]
    assert (where.question, where.answers, where.evidence, where.answerable) == ("Where are the talks?", (), (), False)
    assert where.question_date.isoformat() == "2024-01-05"


def test_a_rebuild_replaces_the_articles_and_the_dataset_folder_is_refused(dataset_dir, tmp_path):
    out = tmp_path / "out"
    (out / "articles").mkdir(parents=True)
    (out / "articles" / "stale.md").write_text("left from another build")
    constructed.build(dataset_dir, out)
    assert "stale.md" not in {p.name for p in (out / "articles").iterdir()}
    with pytest.raises(RuntimeError, match="must not be the dataset's own folder"):
        constructed.build(dataset_dir, dataset_dir)
    assert (dataset_dir / "articles" / "geneva.md").exists()


def test_the_command_says_how_many_were_built_and_dropped(dataset_dir, tmp_path, capsys):
    assert constructed.main([str(dataset_dir), str(tmp_path / "out")]) == 0
    assert "3 off-period questions over 2 articles" in capsys.readouterr().out
    assert constructed.main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "cannot read dataset" in capsys.readouterr().err
