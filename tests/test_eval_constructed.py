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


def write_dataset(folder, articles: dict, questions: list[dict]):
    """A dataset folder: each article as Markdown with its date and title, the questions as JSONL."""
    (folder / "articles").mkdir(parents=True)
    for name, (day, title, body) in articles.items():
        (folder / "articles" / name).write_text(f'---\ntitle: "{title}"\ndate: "{day}"\n---\n\n{body}\n')
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return folder


@pytest.fixture
def dataset_dir(tmp_path):
    return write_dataset(tmp_path / "tiny", ARTICLES, QUESTIONS)


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
    said = capsys.readouterr().out
    assert "3 off-period questions over 2 articles" in said
    assert "0 near-miss questions in" in said and "4 dropped (4 with no name to swap, 0 whose" in said
    assert (tmp_path / "out" / "near_miss.jsonl").exists() and (tmp_path / "out" / "near_miss_dropped.tsv").exists()
    assert constructed.main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "cannot read dataset" in capsys.readouterr().err


# Near misses: asked over the full folder. Names of one and two words are in the articles' bodies.
NEAR_ARTICLES = {
    "oslo.md": ("2024-01-02", "Talks in Oslo", "The envoys met in Oslo on Monday, said Maria Holm of the Red Cross."),
    "prize.md": ("2024-01-03", "Prize", "The jury gave the prize to Tomas Berg, a painter from Bergen."),
    "other.md": ("2024-01-04", "Elsewhere", "Farmers near Vilnius sold pears to Jonas Petras at the market."),
    "gold.md": ("2024-01-04", "Winners", "Last year Lena Vik of Tartu won the cup."),
}
NEAR_QUESTIONS = [
    # "Where" is a first word, so not a name; "Red Cross" (two words) is its only name
    {
        "id": "envoys",
        "question": "Where did the envoys of the Red Cross meet?",
        "answers": ["Oslo"],
        "evidence": ["oslo.md"],
        "answerable": True,
        "question_date": "2024-01-05",
    },
    # two names: "Bergen" is rarer in English than "Monday"; the one-word names outside prize.md that the
    # question does not hold are Oslo, Tartu and Vilnius (Tartu would be dropped: gold.md, where it is,
    # holds the gold answer "Lena Vik"); the seed draws Vilnius
    {
        "id": "painter",
        "question": "Which painter from Bergen won on Monday?",
        "answers": ["Tomas Berg", "Lena Vik"],
        "evidence": ["prize.md"],
        "answerable": True,
        "question_date": "2024-01-05",
    },
    {
        "id": "plain",
        "question": "Who won the prize?",
        "answers": ["Tomas Berg"],
        "evidence": ["prize.md"],
        "answerable": True,
    },
    {"id": "none", "question": "Who won the race in Oslo?", "answers": [], "evidence": [], "answerable": False},
]


@pytest.fixture
def near_dir(tmp_path):
    return write_dataset(tmp_path / "near", NEAR_ARTICLES, NEAR_QUESTIONS)


def test_near_misses_swap_the_rarest_name_for_one_of_the_same_shape_from_another_article(near_dir, tmp_path):
    out = tmp_path / "out"
    built = constructed.build_near_miss(near_dir, out)
    lines = [json.loads(line) for line in (out / "near_miss.jsonl").read_text().splitlines()]
    ids = [line["id"] for line in lines]
    assert built.dropped == {"plain": constructed.NO_NAME}  # "Who" is its first word; the unanswerable one is left out
    assert ids == ["envoys-nearmiss", "painter-nearmiss"] and built.questions == 2
    envoys, painter = lines
    # a two-word name outside oslo.md: Tomas Berg, Jonas Petras or Lena Vik; the seed draws the first
    assert envoys["swapped"] == ["Red Cross", "Tomas Berg"] and envoys["swapped_from"] == "prize.md"
    assert envoys["question"] == "Where did the envoys of the Tomas Berg meet?"
    assert envoys["near_miss_of"] == "Where did the envoys of the Red Cross meet?"
    assert (envoys["answers"], envoys["evidence"], envoys["answerable"], envoys["question_date"]) == (
        [],
        [],
        False,
        "2024-01-05",
    )
    assert painter["question"] == "Which painter from Vilnius won on Monday?"
    assert painter["swapped_from"] == "other.md"
    assert (out / "near_miss_dropped.tsv").read_text() == "".join(f"{q}\t{w}\n" for q, w in built.dropped.items())
    data = load(out / "near_miss.jsonl")
    assert not data.problems and not any(q.answerable for q in data.questions)
    again = tmp_path / "again"
    constructed.build_near_miss(near_dir, again)
    assert (again / "near_miss.jsonl").read_bytes() == (out / "near_miss.jsonl").read_bytes()  # a fixed seed


def test_a_near_miss_is_dropped_when_its_new_name_shares_an_article_with_a_gold_answer(near_dir, tmp_path):
    # a one-word name whose only replacement is Tartu, in gold.md next to the gold answer
    questions = [
        {
            "id": "cup",
            "question": "Who from Vilnius won the cup?",
            "answers": ["Lena Vik"],
            "evidence": ["other.md"],
            "answerable": True,
        }
    ]
    (near_dir / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    (near_dir / "articles" / "prize.md").write_text("The jury gave the prize to Tomas Berg, a painter.\n")
    (near_dir / "articles" / "oslo.md").write_text("The envoys met on Monday, said Maria Holm.\n")
    built = constructed.build_near_miss(near_dir, tmp_path / "out")
    assert built.questions == 0
    assert built.dropped == {"cup": "'Tartu' (for 'Vilnius') is in gold.md, which holds a gold answer"}


def test_source_id_strips_either_suffix():
    assert constructed.source_id("rtqa-1-nearmiss") == constructed.source_id("rtqa-1-offperiod") == "rtqa-1"
    assert constructed.source_id("rtqa-1") == "rtqa-1"
