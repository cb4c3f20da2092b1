"""When a question is about: its `as_of` date and the publication window its words ask for.

Every question is asked *as of* a day (today unless told otherwise): nothing dated after it is used.
Relative expressions ("yesterday", "this week", "last month", "in March", "two weeks ago", "since
March 3") are found and resolved against `as_of` by dateparser, and become a publication-date window;
"since the election" counts from the first day of the busiest week of the corpus's coverage of the
election in the year before `as_of` (a date read from the coverage; none when mentions are spread out).
News is reported on and after the day it happens, and looked back on later ("babies born last year"
is a figure published this summer; a Sunday's death is written up all week), so a window runs from
the start of the period the words name to `as_of`; among the passages about the question, those
published after the period (and a few days' grace) rank lower the later they are
(`TimeFrame.period_until`, rag.retrieve), so "what did the Fed decide in March" still reads March's
news first. "latest / recently / now" questions favour recent articles instead of filtering.

Dates the question states with a year ("in 2021", "since 2005", "the 2010 World Cup") are facts about
events, not about when the articles were published: retrieval matches them as words, and they set no
window. Undated documents (reference pages, wiki passages) stay eligible under the as_of bound (an
absent date is no evidence of being later), but not in a window: they cannot be news of "last week".
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Callable

from rag.types import QueryError, SearchFilters

# Time words that only ever count from the day of asking.
SHIFTING_WORDS = r"yesterday|today|tonight|ago|this|last|past|previous|earlier"
WEEKDAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# Words that make an expression relative to the day of asking (dateparser finds the expression).
RELATIVE = re.compile(rf"\b({SHIFTING_WORDS}|{WEEKDAYS}|january|"
                      r"february|march|april|may|june|july|august|september|october|november|december)\b",
                      re.IGNORECASE)
YEAR = re.compile(r"\b(1[89]|2[01])\d{2}\b")
# Up to two words of letters after / before a time word: what dateparser needs of its context ("this
# week", "two weeks ago"), without the neighbours that make it give up on the whole text.
PLAIN_WORDS = re.compile(r"(?: [A-Za-z]+){0,2}")
PLAIN_WORDS_BEFORE = re.compile(r"(?:[A-Za-z]+ ){1,2}$")
SNIPPET_SEARCHES = 3  # time words searched again on their own, at most, per question
# The time words searched again: the shifting ones. A month or a weekday alone is as often a fact's ("why
# are there 28 days in February", "Black Friday").
SHIFTING = re.compile(rf"\b({SHIFTING_WORDS})\b", re.IGNORECASE)
MONTH = re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b")
# A month name is a date only after a preposition ("in March", "since May 3"), never "May the ..."
# or "protesters march".
MONTH_CONTEXT = re.compile(r"\b(in|on|since|during|of|from|until|by|before|after|early|mid|late|last|this)\s*-?\s*$",
                           re.IGNORECASE)
WEEKDAY = re.compile(rf"\b({WEEKDAYS})\b", re.IGNORECASE)
LAST = re.compile(r"\b(last|previous|ago)\b", re.IGNORECASE)
TRAILING = re.compile(r"(\s+(in|on|at|of|the|for|to|and|by|about|with|from|over|as))+\s*$", re.IGNORECASE)
SINCE = re.compile(r"\b(since|from)\s+(the\s+)?$", re.IGNORECASE)
# "since the election", "after the earthquake?": an event named at the end of a clause, to be dated from
# the corpus's coverage of it (rag.retrieve.Retriever.event_day).
SINCE_EVENT = re.compile(r"\bsince\s+the\s+(?P<event>[A-Za-z][\w'’-]*(?:\s+[A-Za-z][\w'’-]*){0,3})"
                         r"\s*(?=[?.!,;]|$)", re.IGNORECASE)
# Not an event to date: a calendar span ("since the start of the year") or a clause ("since the war began").
NOT_EVENT = re.compile(r"\b(year|month|week|day|century|decade|time|then|start|beginning|end)\b|"
                       r"\b(began|begun|started|ended|struck|hit|happened|broke|erupted|took|was|were|is|are|has|had)$",
                       re.IGNORECASE)
# Questions about the newest state of things: favour recent articles (a ranking preference, no filter).
RECENT = re.compile(r"\b(latest|newest|most recent|recent(ly)?|now|currently|current|so far|still|"
                    r"up to date|these days|nowadays)\b", re.IGNORECASE)
# Days past a period's end that reports about it still appear (a week's events are written up the
# next Monday, a month's in the first days of the next).
GRACE_DAYS = {"day": 1, "week": 2, "month": 7, "year": 14}
PERIOD_DAYS = {"day": 1, "week": 7, "month": 31, "year": 366}

EARLIEST, LATEST = date(1800, 1, 1), date(2200, 12, 31)  # as_of days that make sense for news

_parsers: dict[date, object] = {}
_parsers_lock = threading.Lock()


@dataclass
class TimeExpression:
    """One relative expression and the period it names."""

    text: str
    since: str  # the period's first day
    until: str  # its last day plus the days reports about it still appear (GRACE_DAYS), at most as_of


@dataclass
class TimeFrame:
    """The dates a question is asked under: as_of, the window its words name, whether it wants news."""

    as_of: str | None  # None: no date bound at all (retrieval.timeframe = false)
    since: str | None = None  # the publication window searched: from the start of the period named ...
    until: str | None = None  # ... to as_of
    period_until: str | None = None  # the period (with grace) ends before as_of: later articles rank lower
    favour_recent: bool = False
    expressions: list[TimeExpression] = field(default_factory=list)
    query: str = ""  # the question without the expressions that became a window (for retrieval)

    def filters(self, requested: SearchFilters | None = None) -> SearchFilters:
        """The request's filters narrowed to this frame: nothing after as_of, the window if any.

        Undated documents stay eligible under the as_of bound alone; a window the question names ("this
        week") or the request sets asks for dated articles.
        """
        requested = requested or SearchFilters()
        if self.as_of is None:
            return requested
        since = max(filter(None, (requested.since, self.since)), default=None)
        until = min(filter(None, (requested.until, self.until, self.as_of)))
        if since and since > until:  # e.g. --since after as_of: nothing can match
            return SearchFilters(source=requested.source, matches_nothing=True)
        return SearchFilters(since=since, until=until, source=requested.source,
                             undated=not (requested.since or requested.until or self.expressions))

    def describe(self) -> str:
        """"'this week' -> 2022-09-30 .. 2022-10-07 (as of 2022-10-07)", or just the as_of day."""
        if self.as_of is None:
            return ""
        window = "; ".join(f"'{e.text}' -> {e.since} .. {e.until}" for e in self.expressions)
        recent = "; favouring recent articles" if self.favour_recent else ""
        return (f"{window} " if window else "") + f"(as of {self.as_of}{recent})"

    def to_json(self) -> dict:
        return asdict(self)


def parse_as_of(value: str | date | None) -> date:
    """The as_of day: a date, an ISO string, or today when None/empty."""
    if value is None or value == "":
        return date.today()
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip()[:10].replace("/", "-"))
        except ValueError:
            raise QueryError(f"as_of: {str(value)[:40]!r} is not a date (use YYYY-MM-DD)") from None
    if not EARLIEST <= day <= LATEST:
        raise QueryError(f"as_of: {day.isoformat()} is outside {EARLIEST.isoformat()} .. {LATEST.isoformat()}")
    return day


def warm() -> None:
    """Load dateparser now (about half a second), so a server's first dated question does not wait."""
    resolve("What happened last week?")


def untimed(question: str) -> TimeFrame:
    """The frame of a question whose dates are not read (retrieval.timeframe = false)."""
    return TimeFrame(as_of=None, query=question)


def resolve(question: str, as_of: str | date | None = None,
            event_day: Callable[[str, date], date | None] | None = None) -> TimeFrame:
    """The time frame of a question asked on `as_of` (today by default).

    `event_day(phrase, as_of)` dates an event the question counts from ("since the election"), from the
    corpus; without it such phrases set no window.
    """
    day = parse_as_of(as_of)
    frame = TimeFrame(as_of=day.isoformat(), favour_recent=bool(RECENT.search(question)), query=question)
    found: list[tuple[str, date, date]] = []
    for expression, start in _search(question, day):
        text = TRAILING.sub("", expression) or expression  # "yesterday in" -> "yesterday"
        try:
            window = _window(question, text, start, day)
        except (ValueError, OverflowError):  # a period that runs outside the calendar
            window = None
        if window is not None:
            found.append((text, *window))
    if event_day is not None and not found:
        for match in SINCE_EVENT.finditer(question):
            if NOT_EVENT.search(match.group("event")):
                continue
            when = event_day(match.group("event"), day)
            if when is not None and when <= day:
                found.append((match.group().strip(), when, day))
                break
    # Several expressions narrow each other, latest window first; one that would leave nothing is about
    # an event the question mentions ("this week, what was announced in February"), not a window.
    since = until = None
    for text, begin, end in sorted(found, key=lambda f: f[2], reverse=True):
        if since is not None and (max(since, begin) > min(until, end)):
            continue
        since, until = (begin, end) if since is None else (max(since, begin), min(until, end))
        frame.expressions.append(TimeExpression(text, begin.isoformat(), end.isoformat()))
        frame.query = re.sub(rf"(\b(since|from)\s+)?{re.escape(text)}(['’]s\b)?", " ", frame.query, count=1)
    if since is not None:
        frame.since, frame.until = since.isoformat(), day.isoformat()
        frame.period_until = until.isoformat() if until < day else None
        frame.favour_recent = False  # the window already says which news
        frame.query = re.sub(r"\s+([?.!,;:])", r"\1", " ".join(frame.query.split()))
        frame.query = frame.query if len(frame.query.split()) >= 2 else question
    return frame


def _search(question: str, day: date) -> list[tuple[str, datetime]]:
    """dateparser's date expressions in the question (English), relative to `day`."""
    if not RELATIVE.search(question):
        return []  # most questions name no time: skip dateparser's search
    from dateparser.search import search_dates

    settings = {"RELATIVE_BASE": datetime(day.year, day.month, day.day), "PREFER_DATES_FROM": "past",
                "RETURN_TIME_AS_PERIOD": True}

    def search(text: str) -> list[tuple[str, datetime]]:
        try:
            return search_dates(text, languages=["en"], settings=settings) or []
        except (ValueError, OverflowError, TypeError, KeyError):  # an odd phrase must not stop the answer
            return []

    # dateparser gives up on a whole text over one word it half reads as a date: "Covid-19 this week",
    # "legislation this week, but ..." and "This week's supermoon" find nothing, while "this week" alone
    # does (23 of RealTime QA's first 300 questions named "this week" or the like and got no window).
    # Then (when nothing it found is relative: "Jan. 6" is an event's date) each word such as "this" or
    # "ago" is searched again with the plain words next to it.
    found = search(question)
    if any(RELATIVE.search(text) for text, _ in found):
        return found
    for match in islice(SHIFTING.finditer(question), SNIPPET_SEARCHES):  # a hostile question: 3 at most
        after = PLAIN_WORDS.match(question, match.end())
        left = max(0, match.start() - 40)  # two words back at most
        before = PLAIN_WORDS_BEFORE.search(question, left, match.start())
        begin = before.start() if before else match.start()
        for snippet in (question[begin: after.end()], question[match.start(): after.end()], question[begin: match.end()]):
            if hits := [(text, when) for text, when in search(snippet) if text in question]:
                found += hits
                break
    return found


def _period(text: str, day: date) -> str:
    """"day", "week", "month" or "year": the span an expression names (dateparser's period)."""
    with _parsers_lock:
        parser = _parsers.get(day)
        if parser is None:
            from dateparser.date import DateDataParser

            base = datetime(day.year, day.month, day.day)
            parser = _parsers[day] = DateDataParser(languages=["en"], settings={
                "RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_TIME_AS_PERIOD": True})
            if len(_parsers) > 64:
                _parsers.pop(next(iter(_parsers)))
        return parser.get_date_data(text).period or "day"


def _window(question: str, text: str, start: datetime, day: date) -> tuple[date, date] | None:
    """The publication window for one expression, or None when it is not a relative date."""
    if YEAR.search(text) or not RELATIVE.search(text):
        return None  # an event's date ("in 2021") or a bare number: not a window
    at = question.find(text)
    before = question[:at] if at >= 0 else ""
    month = MONTH.search(text)
    if month and not MONTH_CONTEXT.search(before + text[: month.start()]):
        return None  # "May the ...", a verb
    if not month and text.strip().lower() in {"may", "march"}:
        return None
    period = _period(text, day)
    first = start.date()
    lowered = text.lower()
    if period == "day" and first == day - timedelta(days=7) and WEEKDAY.search(text) and not LAST.search(text):
        first = day  # "convicted Thursday", asked on a Thursday: today, not a week ago (dateparser's past)
    if period == "week":
        # "this week" is the week up to today; "last week" / "two weeks ago" the 7 days around that day.
        begin = first - timedelta(days=7) if "this" in lowered else first - timedelta(days=6)
        end = first + timedelta(days=GRACE_DAYS["week"])
    elif period == "month":
        begin = first.replace(day=1)
        following = (begin + timedelta(days=32)).replace(day=1)
        end = following - timedelta(days=1) + timedelta(days=GRACE_DAYS["month"])
    elif period == "year":
        begin, end = date(first.year, 1, 1), date(first.year, 12, 31) + timedelta(days=GRACE_DAYS["year"])
    else:
        begin, end = first, first + timedelta(days=GRACE_DAYS["day"])
    if SINCE.search(before):
        end = day  # "since March 3": from then until now
    if begin > day:  # "in December" asked in March means last December
        return None
    return begin, min(end, day)
