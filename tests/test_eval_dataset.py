"""Eval dataset parsing: questions, conversations, malformed lines, and the project's own sets."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from eval import dataset

QUESTION = {
    "id": "q1",
    "question": "Where?",
    "answers": ["Geneva"],
    "evidence": ["a.md"],
    "answerable": True,
    "question_date": "2024-10-03",
}


def write(tmp_path: Path, lines: list[str], name: str = "set.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_question_line(tmp_path):
    loaded = dataset.load(write(tmp_path, [json.dumps(QUESTION)]))
    assert loaded.problems == []
    assert loaded.items == [dataset.Question("q1", "Where?", ("Geneva",), ("a.md",), True, date(2024, 10, 3))]
    assert loaded.name == "set"


def test_malformed_lines_are_reported_with_their_numbers_and_skipped(tmp_path):
    lines = [
        json.dumps(QUESTION),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({**QUESTION, "id": "q2", "question": ""}),
        json.dumps({**QUESTION, "id": "q3", "answers": "Geneva"}),
        json.dumps({**QUESTION, "id": "q4", "question_date": "03/10/2024"}),
        json.dumps({**QUESTION, "id": "q5", "answers": []}),  # answerable without a gold answer
        json.dumps({**QUESTION, "id": "q6", "answerable": "yes"}),
        json.dumps(QUESTION),  # the id again
        "",
        json.dumps({"id": "c1", "turns": []}),
        json.dumps({"id": "c2", "turns": ["Where?"]}),
        json.dumps({**QUESTION, "id": "q7"}),
    ]
    loaded = dataset.load(write(tmp_path, lines))
    assert [q.id for q in loaded.questions] == ["q1", "q7"]
    assert [p.line for p in loaded.problems] == [2, 3, 4, 5, 6, 7, 8, 9, 11, 12]
    assert "not JSON" in str(loaded.problems[0])
    assert str(loaded.problems[0]).startswith("line 2: ")
    assert "question_date" in loaded.problems[4].reason
    assert "duplicate id" in loaded.problems[7].reason


def test_an_unanswerable_question_needs_no_answers(tmp_path):
    line = json.dumps({"id": "u", "question": "Who?", "answers": [], "evidence": [], "answerable": False})
    (question,) = dataset.load(write(tmp_path, [line])).items
    assert not question.answerable
    assert question.question_date is None


def test_a_conversation_gives_each_turn_the_shared_evidence_and_date(tmp_path):
    line = json.dumps(
        {
            "id": "c",
            "question_date": "2025-05-20",
            "evidence": ["e.md"],
            "turns": [
                {"question": "Who won?", "answers": ["Priya"]},
                {"question": "Who lost?", "answers": ["Dana"], "evidence": ["f.md"]},
                {"question": "Her age?", "answers": []},
            ],
        }
    )
    (conversation,) = dataset.load(write(tmp_path, [line])).items
    assert isinstance(conversation, dataset.Conversation)
    first, second, third = conversation.turns
    assert [t.id for t in conversation.turns] == ["c#1", "c#2", "c#3"]
    assert first.evidence == ("e.md",) and second.evidence == ("f.md",)
    assert all(t.question_date == date(2025, 5, 20) for t in conversation.turns)
    assert first.answerable and not third.answerable


def test_name_of_a_questions_file_is_its_folder(tmp_path):
    folder = tmp_path / "quail_news"
    folder.mkdir()
    assert dataset.load(write(folder, [json.dumps(QUESTION)], "questions.jsonl")).name == "quail_news"


def test_the_projects_own_sets_meet_the_brief():
    sets = {d.name: d for d in dataset.own_sets()}
    assert {"seed", "dated"} <= set(sets)
    for data in sets.values():
        assert data.problems == [], data.name
        assert data.articles is not None and data.articles.is_dir()
        files = {p.name for p in data.articles.iterdir()}
        assert {f for q in data.questions for f in q.evidence} <= files, data.name
    seed = sets["seed"]
    single = [i for i in seed.items if isinstance(i, dataset.Question)]
    conversations = [i for i in seed.items if isinstance(i, dataset.Conversation)]
    assert sum(q.answerable for q in single) >= 25
    assert sum(not q.answerable for q in single) >= 5
    assert len(conversations) >= 3 and all(len(c.turns) >= 2 for c in conversations)
    dated = sets["dated"]
    assert all(q.question_date for q in dated.questions)
    assert any("last week" in q.question for q in dated.questions)


def test_numeric_ids_are_read_as_text_but_not_booleans(tmp_path):
    lines = [json.dumps({**QUESTION, "id": 7}), json.dumps({**QUESTION, "id": True})]
    loaded = dataset.load(write(tmp_path, lines))
    assert [q.id for q in loaded.questions] == ["7"]
    assert [p.line for p in loaded.problems] == [2]
