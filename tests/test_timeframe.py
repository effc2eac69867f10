"""Time phrases of a question resolved against its "as of" date (pure functions, fast)."""

from __future__ import annotations

from datetime import date

import pytest

from app.timeframe import resolve

WEDNESDAY = date(2024, 3, 13)  # 2024 is a leap year: February has 29 days


def window(question: str, as_of: date = WEDNESDAY) -> tuple[date | None, date | None]:
    frame = resolve(question, as_of)
    return frame.since, frame.until


@pytest.mark.parametrize(
    "question, since, until",
    [
        ("What happened today?", date(2024, 3, 13), date(2024, 3, 13)),
        ("What did Putin say tonight?", date(2024, 3, 13), date(2024, 3, 13)),
        ("What did Putin say yesterday?", date(2024, 3, 12), date(2024, 3, 12)),
        ("What happened last night?", date(2024, 3, 12), date(2024, 3, 12)),
        ("What happened the day before yesterday?", date(2024, 3, 11), date(2024, 3, 11)),
        ("What happened this week?", date(2024, 3, 11), date(2024, 3, 13)),
        ("What happened last week?", date(2024, 3, 4), date(2024, 3, 10)),
        ("What happened the previous week?", date(2024, 3, 4), date(2024, 3, 10)),
        ("What happened this month?", date(2024, 3, 1), date(2024, 3, 13)),
        ("Who resigned last month?", date(2024, 2, 1), date(2024, 2, 29)),
        ("What happened this year?", date(2024, 1, 1), date(2024, 3, 13)),
        ("Who won last year?", date(2023, 1, 1), date(2023, 12, 31)),
        ("What was said in the past 10 days?", date(2024, 3, 3), date(2024, 3, 13)),
        ("What changed over the past week?", date(2024, 3, 6), date(2024, 3, 13)),
        ("What changed in the last week?", date(2024, 3, 6), date(2024, 3, 13)),
        ("Any news in the past month?", date(2024, 2, 13), date(2024, 3, 13)),
        ("What happened in the last two months?", date(2024, 1, 13), date(2024, 3, 13)),
        ("What happened in the past few days?", date(2024, 3, 10), date(2024, 3, 13)),
        ("What happened three days ago?", date(2024, 3, 10), date(2024, 3, 10)),
        ("What happened a few days ago?", date(2024, 3, 10), date(2024, 3, 10)),
        ("What happened two weeks ago?", date(2024, 2, 26), date(2024, 3, 3)),
        ("What happened a month ago?", date(2024, 2, 1), date(2024, 2, 29)),
        ("What happened a year ago?", date(2023, 1, 1), date(2023, 12, 31)),
        ("What did he say on Monday?", date(2024, 3, 11), date(2024, 3, 11)),
        ("What did he say on Thursday?", date(2024, 3, 7), date(2024, 3, 7)),
        ("What did he say on Wednesday?", date(2024, 3, 13), date(2024, 3, 13)),
        ("What did he say last Wednesday?", date(2024, 3, 6), date(2024, 3, 6)),
        ("What happened in March?", date(2024, 3, 1), date(2024, 3, 31)),
        ("What happened in April?", date(2023, 4, 1), date(2023, 4, 30)),  # no April yet this year
        ("What happened in March 2022?", date(2022, 3, 1), date(2022, 3, 31)),
        ("What happened during March of 2022?", date(2022, 3, 1), date(2022, 3, 31)),
        ("What happened last March?", date(2023, 3, 1), date(2023, 3, 31)),  # asked in March: a year ago
        ("What happened last February?", date(2024, 2, 1), date(2024, 2, 29)),
        ("What happened in May?", date(2023, 5, 1), date(2023, 5, 31)),
        ("What happened in 2023?", date(2023, 1, 1), date(2023, 12, 31)),
        ("What happened on March 5?", date(2024, 3, 5), date(2024, 3, 5)),
        ("What happened on March 20th?", date(2023, 3, 20), date(2023, 3, 20)),  # not yet this year
        ("What happened on 5 March 2023?", date(2023, 3, 5), date(2023, 3, 5)),
        ("What happened on Feb. 29, 2024?", date(2024, 2, 29), date(2024, 2, 29)),
        ("What happened on 2024-02-29?", date(2024, 2, 29), date(2024, 2, 29)),
        ("What happened since 2023?", date(2023, 1, 1), date(2024, 3, 13)),
        ("What happened since March 5?", date(2024, 3, 5), date(2024, 3, 13)),
        ("What happened after March 5?", date(2024, 3, 6), date(2024, 3, 13)),
        ("What happened after 2022?", date(2023, 1, 1), date(2024, 3, 13)),
        ("What happened since last week?", date(2024, 3, 4), date(2024, 3, 13)),
        ("What happened before 2023?", None, date(2022, 12, 31)),
        ("What happened before March 5?", None, date(2024, 3, 4)),
        ("What happened prior to last month?", None, date(2024, 1, 31)),
        ("What happened until February?", None, date(2024, 2, 29)),
        ("What happened through 2022?", None, date(2022, 12, 31)),
    ],
)
def test_phrases_resolve_to_windows(question, since, until):
    assert window(question) == (since, until)


@pytest.mark.parametrize(
    "question",
    [
        "What is the 2016 election about?",  # a year with no preposition names a thing, not a time
        "What may happen in may?",  # the modal verb, not the month
        "How many days did the strike last?",
        "Who spoke for a week?",
        "What happened on 2023-02-29?",  # no such day; nor is "2023" read out of it
        "What happened on February 30?",
        "Who is the senator from Massachusetts?",
    ],
)
def test_questions_without_a_time(question):
    frame = resolve(question, WEDNESDAY)
    assert (frame.since, frame.until, frame.recent) == (None, None, False)
    assert frame.query == question


def test_week_and_month_edges():
    sunday = date(2024, 3, 17)
    assert window("What happened this week?", sunday) == (date(2024, 3, 11), date(2024, 3, 17))
    assert window("What did he say on Sunday?", sunday) == (sunday, sunday)
    assert window("What did he say last Sunday?", sunday) == (date(2024, 3, 10), date(2024, 3, 10))
    assert window("Who resigned last month?", date(2024, 1, 15)) == (date(2023, 12, 1), date(2023, 12, 31))
    assert window("What happened last week?", date(2024, 1, 3)) == (date(2023, 12, 25), date(2023, 12, 31))
    # A month back from March 31 is the last day of February.
    assert window("Any news in the past month?", date(2024, 3, 31)) == (date(2024, 2, 29), date(2024, 3, 31))


def test_several_phrases_intersect():
    assert window("What happened in March, since March 10?") == (date(2024, 3, 10), date(2024, 3, 13))
    assert window("What happened in 2023 before May?") == (date(2023, 1, 1), date(2023, 4, 30))


@pytest.mark.parametrize(
    "question",
    [
        "Who recently resigned?",
        "What is the latest on Ukraine?",
        "What are the most recent talks about?",
        "What is happening lately?",
        "Who is currently in charge?",
        "What is the newest proposal?",
    ],
)
def test_recency_words_ask_for_recent_news_without_a_window(question):
    frame = resolve(question, WEDNESDAY)
    assert frame.recent
    assert (frame.since, frame.until) == (None, None)


@pytest.mark.parametrize(
    "question, query",
    [
        ("What did Putin say yesterday?", "What did Putin say?"),
        ("Who resigned last month?", "Who resigned?"),
        ("What happened in the past 10 days in Geneva?", "What happened in Geneva?"),
        ("Today, who won the vote?", "who won the vote?"),
        ("Who recently resigned?", "Who resigned?"),
        ("What is the latest on Ukraine?", "What is the on Ukraine?"),
        ("Who won last year's election?", "Who won election?"),
        # Weekdays, dates, months and years are named in articles too: they stay for the matching.
        ("What did Putin say on Monday?", "What did Putin say on Monday?"),
        ("What did Putin say last Monday?", "What did Putin say last Monday?"),
        ("What happened in March 2022?", "What happened in March 2022?"),
        ("What happened in 2023?", "What happened in 2023?"),
        # Nothing but time words: the question is kept as it is rather than emptied.
        ("Yesterday?", "Yesterday?"),
        ("What happened today?", "What happened?"),
    ],
)
def test_query_without_relative_phrases(question, query):
    assert resolve(question, WEDNESDAY).query == query


def test_phrases_are_reported_as_written():
    frame = resolve("What did the Senate pass Last Week, and who recently resigned?", WEDNESDAY)
    assert frame.phrases == ("Last Week", "recently")
    assert frame.window and frame.recent
    assert not resolve("Who is Andrew Rasiulis?", WEDNESDAY).window


@pytest.mark.parametrize(
    "question, published, admitted",
    [
        ("What happened this week?", date(2024, 3, 12), True),
        ("What happened this week?", date(2024, 3, 5), True),  # the week before: news announced ahead
        ("What happened this week?", date(2024, 2, 20), False),  # weeks before: other news
        ("What happened this week?", None, True),  # an undated article may be of any week
        ("What happened yesterday?", date(2024, 3, 1), False),
        ("What did Putin say?", date(2020, 1, 1), True),  # no period named: any article
        ("Who stepped down two years ago?", date(2024, 3, 12), True),  # an older period dates background
        ("What happened in 2006?", date(2024, 3, 12), True),
    ],
)
def test_a_question_about_current_news_admits_articles_of_its_period_and_the_week_before(question, published, admitted):
    assert resolve(question, WEDNESDAY).current_news_admits(published, WEDNESDAY) is admitted
