"""The eval runner and its outputs over a scripted engine: what is asked, with which history and
date, how answers are scored, and what the table, JSON and report say."""

from __future__ import annotations

import json
from datetime import date

from app.documents import Answer, Citation, Passage, SentenceSupport
from conftest import make_passage
from eval import metrics, output, runner
from eval.dataset import Conversation, Dataset, Problem, Question


def passage(file: str, rank: int) -> Passage:
    return make_passage("text", rank, chunk_ids=(f"{file}-0",), article_id=file, title=f"Title of {file}", file=file)


def citation(file: str, highlight: tuple[int, int] | None = None) -> Citation:
    return Citation(
        number=1,
        article_id=file,
        title=f"Title of {file}",
        published=None,
        source="",
        url="",
        file=file,
        passage="text",
        sentence="Talks in Geneva",
        sentence_start=0,
        sentence_end=15,
        highlight=highlight,
    )


class ScriptedEngine:
    """Answers from a script keyed by question; records every call."""

    def __init__(
        self,
        answers: dict[str, tuple[str, bool, list[str]]],
        ranked: dict[str, list[str]],
        rewrites: dict[str, str] | None = None,
        failing: set[str] = frozenset(),
    ):
        self.answers, self.ranked, self.rewrites, self.failing = answers, ranked, rewrites or {}, failing
        # question -> the first citation's highlight in "Talks in Geneva", and the answer's sentences
        self.highlights: dict[str, tuple[int, int]] = {}
        self.sentences: dict[str, tuple[SentenceSupport, ...]] = {}
        self.calls: list[tuple] = []

    def retrieve(self, question, as_of=None, filters=None, k=None):
        self.calls.append(("retrieve", question, as_of, k))
        return [passage(f, rank) for rank, f in enumerate(self.ranked.get(question, []), start=1)][:k]

    def ask(self, question, history=(), as_of=None, filters=None, k=None):
        self.calls.append(("ask", question, tuple(history), as_of, k))
        if question in self.failing:
            raise TimeoutError("the server did not answer")
        text, refused, cited = self.answers[question]
        highlights = [self.highlights.get(question)] + [None] * (len(cited) - 1)
        return Answer(
            question=question,
            answer=text,
            refused=refused,
            citations=tuple(map(citation, cited, highlights)),
            sentences=self.sentences.get(question, ()),
            backend="scripted",
            timings={},
            standalone_question=self.rewrites.get(question, ""),
        )


WHERE = Question("where", "Where are the talks?", ("Geneva",), ("a.md",), True, date(2024, 1, 5))
WHO = Question("who", "Who is the minister?", (), (), False)
CONVERSATION = Conversation(
    "c",
    (
        Question("c#1", "Who warned Putin?", ("Biden",), ("a.md",), True),
        Question("c#2", "How did he warn him?", ("conference call",), ("a.md",), True),
    ),
)


def scripted() -> ScriptedEngine:
    return ScriptedEngine(
        answers={
            "Where are the talks?": ("In Geneva [1].", False, ["a.md"]),
            "Who is the minister?": ("The articles do not say.", True, []),
            "Who warned Putin?": ("Joe Biden [1].", False, ["a.md", "b.md"]),
            "How did he warn him?": ("By letter [1].", False, ["a.md"]),
        },
        ranked={
            "Where are the talks?": ["b.md", "a.md"],
            "Who warned Putin?": ["a.md"],
            "How did Biden warn Putin?": ["a.md"],
        },
        rewrites={"How did he warn him?": "How did Biden warn Putin?"},
    )


def test_questions_are_asked_as_of_their_date_and_turns_with_history():
    engine = scripted()
    data = Dataset("set", None, items=[WHERE, WHO, CONVERSATION])
    result = runner.run(engine, data, k=3, progress=False)
    timed = engine.calls[1:]  # the first call warms the engine up
    assert engine.calls[0] == ("ask", "Where are the talks?", (), date(2024, 1, 5), 3)
    assert ("retrieve", "Where are the talks?", date(2024, 1, 5), metrics.RANKING_DEPTH) in timed
    assert ("ask", "Where are the talks?", (), date(2024, 1, 5), 3) in timed
    assert ("ask", "How did he warn him?", (("Who warned Putin?", "Joe Biden [1]."),), None, 3) in timed
    # a follow-up is measured on the question the engine searched for
    assert ("retrieve", "How did Biden warn Putin?", None, metrics.RANKING_DEPTH) in timed
    assert [r.question.id for r in result.questions] == ["where", "who", "c#1", "c#2"]
    assert [r.conversation for r in result.questions] == [None, None, "c", "c"]


def test_scores_and_aggregates():
    result = runner.run(scripted(), Dataset("set", None, items=[WHERE, WHO, CONVERSATION]), progress=False)
    where, who, first, second = result.questions
    assert where.scores["hit@1"] is False and where.scores["mrr@10"] == 0.5
    assert who.scores["refusal_rate"] is True
    assert first.scores["citation_precision"] == 0.5
    assert [r.failed for r in result.questions] == [False, False, False, True]
    m = result.metrics
    assert m["hit@1"] == 2 / 3
    assert m["answer_contains"] == 2 / 3
    assert m["refusal_rate"] == 1.0 and m["false_refusal_rate"] == 0.0
    assert m["retrieve_ms_p50"] is not None and m["ask_ms_p95"] is not None
    assert "judge_correct" not in m
    assert result.backend == "scripted"


def test_an_engine_error_fails_that_question_only():
    engine = scripted()
    engine.failing = {"Where are the talks?"}
    result = runner.run(engine, Dataset("set", None, items=[WHERE, WHO]), progress=False)
    where, who = result.questions
    assert where.error == "TimeoutError: the server did not answer"
    assert where.failed and where.scores["answer_contains"] is False
    assert not who.failed


def test_judge_majority_and_agreement():
    votes = iter([[True, True, False], []])
    result = runner.run(
        scripted(),
        Dataset("set", None, items=[WHERE, WHO, CONVERSATION]),
        judge=lambda q, golds, answer: next(votes, [False, False, False]),
        progress=False,
    )
    where, who, first, second = result.questions
    assert where.scores["judge_correct"] is True and where.scores["judge_agreement"] == 2 / 3
    assert "judge_correct" not in who.scores  # unanswerable: nothing to judge against
    assert "judge_correct" not in first.scores  # every vote failed
    assert second.scores["judge_correct"] is False and second.scores["judge_agreement"] == 1.0
    assert result.metrics["judge_correct"] == 0.5


def test_a_refused_answerable_question_is_judged_wrong_without_asking():
    engine = scripted()
    engine.answers["Where are the talks?"] = ("The articles do not say.", True, [])

    def judge(question, golds, answer):
        raise AssertionError("the judge must not be asked about a refusal")

    (where,) = runner.run(engine, Dataset("set", None, items=[WHERE]), judge=judge, progress=False).questions
    assert where.scores["judge_correct"] is False


def test_outputs_name_the_failures():
    result = runner.run(
        scripted(),
        Dataset("set", None, items=[WHERE, WHO, CONVERSATION], problems=[Problem(7, "not JSON")]),
        progress=False,
    )
    table = output.table([result], flagged={("set", "hit@1")})
    assert "hit@1" in table and "0.667!" in table
    assert "judge_correct" not in table  # no judge ran
    document = json.loads(json.dumps(output.to_json([result])))
    entry = document["datasets"]["set"]
    assert set(entry) >= {"metrics", "questions"}
    assert entry["metrics"]["hit@1"] == 2 / 3
    assert entry["skipped_lines"] == ["line 7: not JSON"]
    assert [q["id"] for q in entry["questions"] if q["failed"]] == ["c#2"]
    report = output.report([result], ["set: hit@1 fell below its baseline"])
    assert "set: hit@1 fell below its baseline" in report
    assert "### c#2" in report and "### where" not in report
    failure = report[report.index("### c#2") :]
    assert "**Gold:** conference call" in failure
    assert "**Given:** By letter [1]." in failure
    assert "**Asked as:** How did Biden warn Putin?" in failure
    assert "1. Title of a.md (a.md, evidence)" in failure
    assert "line 7: not JSON" in report


def test_the_marked_phrase_and_the_sentences_are_scored_and_kept():
    engine = scripted()
    engine.highlights["Where are the talks?"] = (9, 15)  # "Geneva" of "Talks in Geneva"
    engine.sentences["Where are the talks?"] = (
        SentenceSupport("In Geneva.", (1,), True, "Talks in Geneva"),
        SentenceSupport("Soon.", (1,), False, ""),
    )
    result = runner.run(engine, Dataset("set", None, items=[WHERE, WHO, CONVERSATION]), progress=False)
    where, who, first, second = result.questions
    assert where.phrase == "Geneva" and where.scores["phrase_contains"] is True
    assert where.scores["faithfulness"] == 0.5
    assert first.phrase is None and first.scores["phrase_contains"] is False  # answered, nothing marked
    assert who.scores["phrase_contains"] is None  # unanswerable
    assert result.metrics["phrase_contains"] == 1 / 3
    assert result.metrics["faithfulness"] == 0.5  # the other answers have no sentences to count
    # "In Geneva [1]." 2 words, "Joe Biden [1]." 2, "By letter [1]." 2; the refusal not counted
    assert result.metrics["answer_words"] == 2.0
    entry = json.loads(json.dumps(output.to_json([result])))["datasets"]["set"]
    saved = entry["questions"][0]
    assert (saved["first_sentence"], saved["phrase"]) == ("In Geneva.", "Geneva")
    assert saved["sentences"][1] == {"text": "Soon.", "citations": [1], "supported": False, "support": ""}
    assert saved["scores"]["answer_words"] == 2
    assert entry["metrics"]["first_sentence_contains"] == 2 / 3
    table = output.table([result])
    assert "answer_words" in table and " 2.0" in table  # words, not a share
    failure = output.report([result])[output.report([result]).index("### c#2") :]
    assert "**First sentence:** By letter." in failure
    assert "**Phrase:** (none marked)" in failure
