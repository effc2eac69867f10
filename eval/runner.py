"""Asking a dataset's questions through the public engine API and scoring each answer.

Every question is retrieved (engine.retrieve, for the retrieval metrics) and asked (engine.ask,
for the answer metrics), as of its question_date. A conversation's turns are asked in order with
the earlier questions and the engine's own answers as history; their retrieval is measured on the
standalone question the engine rewrote them into, which is what it searched for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from app.documents import Answer, Passage
from app.timing import timed
from eval import metrics
from eval.dataset import Conversation, Dataset, Problem, Question

# question, gold answers, given answer -> one verdict per vote
Judge = Callable[[str, Sequence[str], str], list[bool]]


@dataclass
class QuestionResult:
    question: Question
    conversation: str | None
    answer: str = ""
    refused: bool = False
    backend: str = ""
    standalone_question: str = ""
    retrieved: list[Passage] = field(default_factory=list)
    cited: list[dict] = field(default_factory=list)  # number, title, file of each citation
    phrase: str | None = None  # the first citation's highlighted phrase, None when it has none
    sentences: list[dict] = field(default_factory=list)  # SentenceSupport.as_dict() of each answer sentence
    retrieve_ms: float | None = None
    ask_ms: float | None = None
    error: str = ""
    judge_votes: list[bool] = field(default_factory=list)
    scores: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """A wrong answer: no gold answer in it (answerable), or not refused (unanswerable)."""
        if self.error:
            return True
        if self.question.answerable:
            return not self.scores.get("answer_contains")
        return not self.refused

    def as_dict(self) -> dict:
        q = self.question
        return {
            "id": q.id,
            "conversation": self.conversation,
            "question": q.question,
            "standalone_question": self.standalone_question or q.question,
            "question_date": q.question_date.isoformat() if q.question_date else None,
            "answerable": q.answerable,
            "gold": list(q.answers),
            "evidence": list(q.evidence),
            "answer": self.answer,
            "first_sentence": metrics.first_sentence(self.answer),
            "phrase": self.phrase,
            "sentences": self.sentences,
            "refused": self.refused,
            "backend": self.backend,
            "retrieved": [
                {
                    "rank": p.rank,
                    "file": p.file,
                    "title": p.title,
                    "published": p.published.isoformat() if p.published else None,
                }
                for p in self.retrieved
            ],
            "cited": self.cited,
            "retrieve_ms": self.retrieve_ms,
            "ask_ms": self.ask_ms,
            "judge_votes": self.judge_votes,
            "error": self.error,
            "failed": self.failed,
            "scores": self.scores,
        }


@dataclass
class DatasetResult:
    name: str
    questions: list[QuestionResult]
    metrics: dict
    problems: list[Problem]
    seconds: float

    @property
    def backend(self) -> str:
        """The answer backend most answers came from."""
        backends = Counter(r.backend for r in self.questions if r.backend)
        return backends.most_common(1)[0][0] if backends else ""

    def as_dict(self) -> dict:
        return {
            "metrics": self.metrics,
            "questions": [r.as_dict() for r in self.questions],
            "backend": self.backend,
            "skipped_lines": [str(p) for p in self.problems],
            "seconds": round(self.seconds, 1),
        }


def run(
    engine, dataset: Dataset, k: int | None = None, judge: Judge | None = None, progress: bool | None = None
) -> DatasetResult:
    """Ask every question of `dataset` with `k` passages (None: the engine's default); `progress`:
    None shows a bar on a terminal only."""
    with timed() as spent:
        results = _ask_all(engine, dataset, k, judge, progress)
    aggregate = metrics.aggregate(
        [r.scores for r in results],
        [r.retrieve_ms for r in results if r.retrieve_ms is not None],
        [r.ask_ms for r in results if r.ask_ms is not None],
    )
    return DatasetResult(dataset.name, results, aggregate, dataset.problems, spent.wall)


def _ask_all(
    engine, dataset: Dataset, k: int | None, judge: Judge | None, progress: bool | None
) -> list[QuestionResult]:
    if dataset.questions:
        _warm_up(engine, dataset.questions[0], k)
    results: list[QuestionResult] = []
    with tqdm(
        total=len(dataset.questions), desc=dataset.name, unit="q", disable=None if progress is None else not progress
    ) as bar:
        for item in dataset.items:
            turns = item.turns if isinstance(item, Conversation) else (item,)
            history: list[tuple[str, str]] = []
            for question in turns:
                result = ask(
                    engine,
                    question,
                    history,
                    k,
                    judge,
                    conversation=item.id if isinstance(item, Conversation) else None,
                )
                results.append(result)
                history.append((question.question, result.answer))
                bar.update()
    return results


def ask(
    engine,
    question: Question,
    history: Sequence[tuple[str, str]],
    k: int | None,
    judge: Judge | None,
    conversation: str | None = None,
) -> QuestionResult:
    """One question, retrieved and answered; an engine error is recorded, not raised, so one
    question that fails (a timed-out LLM server, say) does not end a run of hundreds."""
    result = QuestionResult(question, conversation)
    as_of, depth = question.question_date, max(k or 0, metrics.RANKING_DEPTH)
    try:
        if not history:
            with timed() as spent:
                result.retrieved = engine.retrieve(question.question, as_of=as_of, k=depth)
            result.retrieve_ms = spent.ms
        with timed() as spent:
            answer = engine.ask(question.question, history=tuple(history), as_of=as_of, k=k)
        result.ask_ms = spent.ms
        _take_answer(result, answer)
        if history:
            with timed() as spent:
                result.retrieved = engine.retrieve(
                    result.standalone_question or question.question, as_of=as_of, k=depth
                )
            result.retrieve_ms = spent.ms
    except Exception as error:  # noqa: BLE001 - recorded in the result and the report
        result.error = f"{type(error).__name__}: {error}"
    result.scores = metrics.score_question(
        answer=result.answer,
        refused=result.refused,
        golds=question.answers,
        evidence=question.evidence,
        answerable=question.answerable,
        ranked_files=[p.file for p in result.retrieved],
        cited_files=[c["file"] for c in result.cited],
        phrase=result.phrase,
        supported=[s["supported"] for s in result.sentences],
    )
    if judge and question.answerable and not result.error:
        _judge(result, judge)
    return result


def _warm_up(engine, question: Question, k: int | None) -> None:
    """One untimed question first: loading the embedding model, the lexical index and the LLM
    would otherwise land in the first question's latency and skew the p95."""
    try:
        engine.ask(question.question, as_of=question.question_date, k=k)
    except Exception:  # noqa: BLE001 - the same error is recorded when the question is asked for real
        pass


def _judge(result: QuestionResult, judge: Judge) -> None:
    """judge_correct by strict majority of the votes (a tie is not correct), and how many agreed."""
    if result.refused:
        result.scores["judge_correct"] = False
        return
    q = result.question
    result.judge_votes = judge(q.question, q.answers, result.answer)
    if result.judge_votes:  # no votes: every call to the judge failed
        yes = sum(result.judge_votes)
        result.scores["judge_correct"] = 2 * yes > len(result.judge_votes)
        result.scores["judge_agreement"] = max(yes, len(result.judge_votes) - yes) / len(result.judge_votes)


def _take_answer(result: QuestionResult, answer: Answer) -> None:
    result.answer = answer.answer
    result.refused = answer.refused
    result.backend = answer.backend
    result.standalone_question = answer.standalone_question
    result.cited = [{"number": c.number, "title": c.title, "file": c.file} for c in answer.citations]
    first = answer.citations[0] if answer.citations else None
    if first and first.highlight:
        result.phrase = first.sentence[first.highlight[0] : first.highlight[1]]
    result.sentences = [s.as_dict() for s in answer.sentences]
