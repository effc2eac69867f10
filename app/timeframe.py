"""Time in a question: relative phrases resolved against the question's "as of" date.

"What did Putin say last week?" asked on 2026-11-28 means articles published 2026-11-16..22.
`resolve` finds such phrases ("today", "yesterday", "this week", "last month", "in March",
"in 2023", "since May 3", "the past 10 days", "two weeks ago", "on Monday", ...) and returns the
publication window they mean, whether the question asks for the most recent news ("recently",
"latest"), and the question with its relative phrases taken out: "yesterday" names no topic, and
left in it makes the matching prefer any article that happens to say "yesterday". Weekdays, dates,
months and years stay, because articles name them too ("said on Saturday").

Weeks start on Monday. "last week/month/year" is the previous calendar period; "the past week"
and "the last 3 days" are rolling periods ending on the "as of" date.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
MONTHS.update({"sept": 9, **{name.lower(): n for n, name in enumerate(calendar.month_abbr) if name and name != "May"}})
WEEKDAYS = {name.lower(): number for number, name in enumerate(calendar.day_name)}
NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "several": 5,
}
_VAGUE_NUMBERS = {"couple": 2, "couple of": 2, "few": 3}

_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?P<weekday>" + "|".join(WEEKDAYS) + r")"
_NUMBER = r"(?P<n>\d{1,3}|(?:a\s+)?(?:few|couple(?:\s+of)?)|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_YEAR = r"(?P<year>(?:1[89]|2[01])\d\d)"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"

# Words that ask for the newest news; they say nothing about the topic.
_RECENCY = re.compile(
    r"\b(?:(?:the\s+)?most\s+recent(?:ly)?|recent(?:ly)?|lately|latest|newest|nowadays|"
    r"these\s+days|right\s+now|currently|at\s+the\s+moment)\b",
    re.IGNORECASE,
)

# A preposition before a period changes what it means: "in March" vs "since March" vs "before March".
_PREPOSITION = (
    r"(?P<prep>in|during|on|over|throughout|from|within|of|for|since|after|before|prior\s+to|"
    r"until|till|through|by)"
)
# A period that ends this many days before the "as of" date or later is current news.
CURRENT_DAYS = 7
# News of a period is often published the week before it: this week's talks announced last Friday.
PERIOD_SLACK_DAYS = 7
_OPEN_START = {"since", "after"}
_OPEN_END = {"before", "prior to", "until", "till", "through", "by"}


@dataclass(frozen=True)
class TimeFrame:
    """What a question says about time: a publication window, a wish for recent news, or nothing."""

    since: date | None = None
    until: date | None = None
    recent: bool = False
    query: str = ""  # the question without its time phrases, for matching
    phrases: tuple[str, ...] = ()  # the phrases found, as written

    @property
    def window(self) -> bool:
        return self.since is not None or self.until is not None

    def current_news_admits(self, published: date | None, as_of: date) -> bool:
        """Whether an article published then may answer a question about current news ("this
        week", "yesterday", "the past 10 days": a period ending within CURRENT_DAYS of `as_of`):
        published in the period or within PERIOD_SLACK_DAYS before it, or undated. A question about
        an older period ("two years ago", "in 2006") often dates background, not the news, and
        admits every article, as does a question naming no period."""
        if not self.window or (self.until or as_of) < as_of - timedelta(days=CURRENT_DAYS) or published is None:
            return True
        earliest = self.since - timedelta(days=PERIOD_SLACK_DAYS) if self.since else None
        return (earliest is None or published >= earliest) and (self.until is None or published <= self.until)


Period = tuple[date, date]


def _shift_months(day: date, months: int) -> date:
    """The first day of the month `months` away from `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _month_period(year: int, month: int) -> Period:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _week_period(day: date) -> Period:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def _count(text: str) -> int:
    text = re.sub(r"\s+", " ", text.lower())
    if text.isdigit():
        return int(text)
    return NUMBERS.get(text) or _VAGUE_NUMBERS[text.removeprefix("a ")]


def _back(as_of: date, n: int, unit: str) -> date:
    """`as_of` moved back n units (a month back from March 31 is the last day of February)."""
    if unit == "day":
        return as_of - timedelta(days=n)
    if unit == "week":
        return as_of - timedelta(weeks=n)
    months = n * (12 if unit == "year" else 1)
    first = _shift_months(as_of, -months)
    return first.replace(day=min(as_of.day, calendar.monthrange(first.year, first.month)[1]))


def _calendar_period(day: date, unit: str) -> Period:
    """The day, week, month or year that `day` falls in."""
    if unit == "day":
        return day, day
    if unit == "week":
        return _week_period(day)
    if unit == "month":
        return _month_period(day.year, day.month)
    return date(day.year, 1, 1), date(day.year, 12, 31)


def _latest_year(as_of: date, month: int, day: int = 1) -> int:
    """The year of the latest such month (and day) on or before `as_of`: "in March" asked in
    February means last year's March."""
    return as_of.year if (month, day) <= (as_of.month, as_of.day) else as_of.year - 1


def _valid_day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# Each resolver takes the match and the "as of" date and gives the period meant, or None when the
# words only look like a date ("May 40").


def _days_back(n: int) -> Callable[[re.Match, date], Period]:
    return lambda m, as_of: (as_of - timedelta(days=n),) * 2


def _rolling(m: re.Match, as_of: date) -> Period:
    n = _count(m.group("n")) if m.groupdict().get("n") else 1
    return _back(as_of, n, m.group("unit").lower()), as_of


def _ago(m: re.Match, as_of: date) -> Period:
    unit = m.group("unit").lower()
    return _calendar_period(_back(as_of, _count(m.group("n")), unit), unit)


def _this_or_last(m: re.Match, as_of: date) -> Period:
    unit = m.group("unit").lower()
    start, end = _calendar_period(as_of, unit)
    if m.group("which").lower() == "this":
        return start, as_of
    return _calendar_period(start - timedelta(days=1), unit)


def _weekday(m: re.Match, as_of: date) -> Period:
    """The latest such weekday on or before `as_of`; "last Monday" is strictly before it."""
    back = (as_of.weekday() - WEEKDAYS[m.group("weekday").lower()]) % 7
    if back == 0 and (m.group("which") or "").lower() == "last":
        back = 7
    day = as_of - timedelta(days=back)
    return day, day


def _iso_day(m: re.Match, as_of: date) -> Period | None:
    day = _valid_day(int(m.group("year")), int(m.group("mon")), int(m.group("day")))
    return (day, day) if day else None


def _month_day(m: re.Match, as_of: date) -> Period | None:
    month, day_number = MONTHS[m.group("month").lower()], int(m.group("day"))
    year = int(m.group("year")) if m.group("year") else _latest_year(as_of, month, day_number)
    day = _valid_day(year, month, day_number)
    return (day, day) if day else None


def _month(m: re.Match, as_of: date) -> Period:
    month = MONTHS[m.group("month").lower()]
    which = (m.group("which") or "").lower()
    if m.group("year"):
        year = int(m.group("year"))
    elif which == "this":
        year = as_of.year
    elif which == "last":  # "last March", asked in March, is a year ago
        year = as_of.year if month < as_of.month else as_of.year - 1
    else:
        year = _latest_year(as_of, month)
    return _month_period(year, month)


def _year(m: re.Match, as_of: date) -> Period:
    year = int(m.group("year"))
    return date(year, 1, 1), date(year, 12, 31)


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern
    resolve: Callable[[re.Match, date], Period | None]
    # A weekday, month, date or year is named in articles too ("said Monday", "in March"): it stays in
    # the query. "yesterday" or "last week" in an article means another day than in the question.
    kept_in_query: bool


def _rule(body: str, resolve, *, needs_preposition: bool = False, kept_in_query: bool = False) -> _Rule:
    """`needs_preposition`: "in 2023" is a time, "the 2023 budget" is not."""
    preposition = "" if needs_preposition else "?"
    pattern = re.compile(rf"\b(?:{_PREPOSITION}\s+(?:the\s+)?){preposition}(?:{body})(?:['’]s)?\b", re.IGNORECASE)
    return _Rule(pattern, resolve, kept_in_query)


_DATED = {"needs_preposition": True, "kept_in_query": True}

# Longest phrases first: "the day before yesterday" before "yesterday", "the last 3 weeks" before "last week".
_RULES = (
    _rule(r"(?:the\s+)?day\s+before\s+yesterday", _days_back(2)),
    _rule(r"yesterday|last\s+night", _days_back(1)),
    _rule(r"today|tonight|this\s+(?:morning|afternoon|evening)", _days_back(0)),
    _rule(rf"(?:the\s+)?(?:past|last|previous)\s+{_NUMBER}\s+{_UNIT}", _rolling),
    _rule(rf"{_NUMBER}\s+{_UNIT}\s+ago", _ago),
    _rule(rf"(?:the\s+(?:past|last)|past)\s+{_UNIT}", _rolling),
    _rule(rf"(?P<which>this|last|previous)\s+{_UNIT}", _this_or_last),
    _rule(rf"(?P<which>last|this)\s+{_WEEKDAY}", _weekday, kept_in_query=True),
    _rule(rf"(?P<which>){_WEEKDAY}", _weekday, **_DATED),
    _rule(r"(?P<year>\d{4})-(?P<mon>\d\d)-(?P<day>\d\d)", _iso_day, **_DATED),
    _rule(rf"{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?", _month_day, **_DATED),
    _rule(rf"{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?", _month_day, **_DATED),
    _rule(rf"(?P<which>last|this)\s+{_MONTH}(?:,?\s+(?:of\s+)?{_YEAR})?", _month, kept_in_query=True),
    _rule(rf"(?P<which>){_MONTH}(?:,?\s+(?:of\s+)?{_YEAR})?", _month, **_DATED),
    _rule(_YEAR, _year, **_DATED),
)


def _apply_preposition(preposition: str | None, period: Period, as_of: date) -> tuple[date | None, date | None]:
    start, end = period
    preposition = re.sub(r"\s+", " ", (preposition or "").lower())
    if preposition in _OPEN_START:
        return (start if preposition == "since" else end + timedelta(days=1)), as_of
    if preposition in _OPEN_END:
        return None, (start - timedelta(days=1) if preposition in {"before", "prior to"} else end)
    return start, end


def _is_modal_may(m: re.Match) -> bool:
    """ "in may" is rarely the month: only a capital "May" is taken for it."""
    month = m.groupdict().get("month")
    return month is not None and month.lower() == "may" and month != "May"


def resolve(question: str, as_of: date) -> TimeFrame:
    """The time the question speaks of, resolved against `as_of`; windows from several phrases
    are intersected."""
    since: date | None = None
    until: date | None = None
    phrases: list[str] = []
    taken: list[tuple[int, int]] = []
    invalid: list[tuple[int, int]] = []
    removed: list[tuple[int, int]] = []
    for rule in _RULES:
        for m in rule.pattern.finditer(question):
            if any(m.start() < end and start < m.end() for start, end in taken + invalid) or _is_modal_may(m):
                continue
            period = rule.resolve(m, as_of)
            if period is None:  # not a date, and no shorter rule may read a part of it as one
                invalid.append(m.span())
                continue
            start, end = _apply_preposition(m.group("prep"), period, as_of)
            since = start if since is None or (start and start > since) else since
            until = end if until is None or (end and end < until) else until
            phrases.append(m.group(0))
            taken.append(m.span())
            if not rule.kept_in_query:
                removed.append(m.span())
    recency = [
        m.span()
        for m in _RECENCY.finditer(question)
        if not any(m.start() < end and start < m.end() for start, end in taken)
    ]
    phrases.extend(question[s:e] for s, e in recency)
    return TimeFrame(
        since=since,
        until=until,
        recent=bool(recency),
        query=_without(question, removed + recency),
        phrases=tuple(phrases),
    )


def _without(question: str, spans: list[tuple[int, int]]) -> str:
    """The question with the spans cut out and the spacing tidied; the question itself when
    nothing but time words would be left."""
    text = question
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    text = re.sub(r"\s+([?.!,;:])", r"\1", re.sub(r"\s+", " ", text)).strip()
    text = re.sub(r"^[,;:]\s*|,(?=[?.!])", "", text)
    return text if re.search(r"\w{3,}", text) else question.strip()
