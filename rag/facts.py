"""Facts a sentence states that must agree exactly between a claim and its source: quantities and dates.

A quantity is parsed with its scale, unit and qualifier, so that values compare, not digit strings:
"about 220,000 doses" == "220 thousand doses", "more than 70" agrees with "over 70", "$3.3 billion" is
3.3e9 dollars, "16 percent" == "16%", and "3" is none of "3+3" (a name), "$3.3 billion" or "30th" (an
ordinal). Dates are parsed into (year, month, day) with the parts the text gives ("November 2020",
"February 23", "2022-02-23") and compare part by part.

Hand-written on purpose: the forms news text uses are few, and the parsers on PyPI (quantulum3,
dateparser's search) either miss qualifiers or find dates in ordinary words; this one is fast and
its rules are listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# -- numbers written as words ---------------------------------------------------------------------
UNITS_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
TENS_WORDS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
SCALES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
          "k": 1e3, "m": 1e6, "mn": 1e6, "mln": 1e6, "bn": 1e9, "b": 1e9, "tn": 1e12, "dozen": 12}
ORDINAL_WORDS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split())}
ORDINAL_WORDS.update({"thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70,
                      "eightieth": 80, "ninetieth": 90, "hundredth": 100, "thousandth": 1000})

# Qualifiers: which side of the value the true figure lies on. "~" about, ">" above, "<" below.
QUALIFIERS = {
    "more than": ">", "over": ">", "above": ">", "at least": ">", "exceeding": ">", "upwards of": ">",
    "in excess of": ">", "greater than": ">", "higher than": ">", "no fewer than": ">", "no less than": ">",
    "just over": ">", "well over": ">", "as many as": "~", "as much as": "~",
    "less than": "<", "fewer than": "<", "under": "<", "below": "<", "up to": "<", "at most": "<",
    "no more than": "<", "lower than": "<", "just under": "<", "nearly": "<", "almost": "<", "close to": "~",
    "about": "~", "around": "~", "approximately": "~", "roughly": "~", "some": "~", "an estimated": "~",
    "estimated": "~", "circa": "~", "approx.": "~", "an approximate": "~", "the approximately": "~",
}
CURRENCY_SYMBOLS = {"$": "usd", "us$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr", "₽": "rub"}
CURRENCY_WORDS = {"dollar": "usd", "dollars": "usd", "euro": "eur", "euros": "eur", "pound": "gbp", "pounds": "gbp",
                  "yen": "jpy", "rupee": "inr", "rupees": "inr", "rouble": "rub", "roubles": "rub", "ruble": "rub",
                  "rubles": "rub", "manat": "azn", "yuan": "cny", "usd": "usd", "eur": "eur", "gbp": "gbp"}

_QUALIFIER = "|".join(sorted((re.escape(q) for q in QUALIFIERS), key=len, reverse=True))
_WORD_NUMBER = "|".join(sorted(list(UNITS_WORDS) + list(TENS_WORDS) + ["a", "an", "one"], key=len, reverse=True))
_SCALE = "hundred|thousand|million|billion|trillion|dozen"
_FRACTION = "halfs?|halves|thirds?|quarters?|fifths?|tenths?"  # "two-thirds" is not 2
_CURRENCY = r"(?:us\$|[$€£¥₹₽])"
# A number in words ends at a hyphen before a word that is not a number ("seven-year" is "7-year";
# "seventy-five" is one number; "two-thirds" is none).
# A digit number not glued to letters or to "+", "/", "-" and digits ("3+3", "COVID-19", "24/7" and
# "F-16" are names, not quantities), except for an ordinal ("30th") or a scale suffix ("$1.2bn").
_DIGITS = r"(?<![\w+/.\-])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_DIGITS_END = r"(?:(?P<ord>st|nd|rd|th)\b|(?P<suffix>bn|mn|mln|tn|[kmb])\b|(?![\w+/]|-\d|\.\d|,\d{3}\b))"
QUANTITY = re.compile(
    rf"(?:(?P<qual>{_QUALIFIER})\s+)?"
    rf"(?P<cur>{_CURRENCY})?\s?"
    rf"(?:(?P<digits>{_DIGITS}){_DIGITS_END}|\b(?P<words>(?:(?:{_WORD_NUMBER})[\s-]+)*?(?:{_WORD_NUMBER}|{_SCALE})\b)(?!\w|-(?:{_WORD_NUMBER}|{_SCALE}|{_FRACTION})\b))"
    rf"(?:\s+(?P<scale>(?:(?:{_SCALE})\s+)*(?:{_SCALE}))\b)?"
    rf"(?:\s*(?P<pct>%|per\s?cent\b|percentage points?\b|pct\b))?"
    rf"(?:\s+(?P<curword>{'|'.join(CURRENCY_WORDS)})\b)?",
    re.IGNORECASE,
)
# "1 , 056", "3, 800" and "1. 3" as tokenised corpora write them: rejoined without moving any offset
# (not after a month name: "May 5, 300 people" is a date and a count).
SPACED_NUMBER = re.compile(r"(?<![\d,.])(\d{1,3})(?:\s*(,)\s+|\s+(,)\s*)(\d{3})(?!\d)|"
                           r"(?<![\d.])(\d+)\s*(\.)\s+(\d)(?=[\s%])")
ORDINAL = re.compile(rf"(?<!per )(?<!a )\b(?P<word>{'|'.join(ORDINAL_WORDS)})\b", re.IGNORECASE)  # not "per second"
CODE = re.compile(r"(?<![\w+])\d+(?:[+/]\d+)+(?![\w+])|\b[A-Z][A-Za-z]*-?\d+[A-Za-z\d]*\b|\b\d+[A-Za-z]+\d+[A-Za-z\d]*\b")

MONTHS = {m: i + 1 for i, m in enumerate(
    "january february march april may june july august september october november december".split())}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?:1[6-9]\d\d|20\d\d|21\d\d)"
DATE_PATTERNS = [
    # 2022-02-23, 2022/02/23
    re.compile(rf"\b(?P<y>{_YEAR})[-/](?P<m>[01]?\d)[-/](?P<d>[0-3]?\d)\b"),
    # February 23, 2022 / February 23rd / Feb. 23
    re.compile(rf"\b(?P<mon>{_MONTH})\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\b(?:\s*,?\s+(?P<y>{_YEAR})\b)?", re.IGNORECASE),
    # 23 February 2022 / 23rd of February
    re.compile(rf"\b(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MONTH})\b(?:\s*,?\s+(?P<y>{_YEAR})\b)?", re.IGNORECASE),
    # November 2020
    re.compile(rf"\b(?P<mon>{_MONTH})\s+(?:of\s+)?(?P<y>{_YEAR})\b", re.IGNORECASE),
    # a bare month name ("in March"); "may" only when capitalised ("May"), as the verb is far more common
    re.compile(r"\b(?P<mon>January|February|March|April|May|June|July|August|September|October|November|December)\b"),
    # a bare year
    re.compile(rf"(?<![\w$€£.,])(?P<y>{_YEAR})(?![\w%]|,\d|\.\d)"),
]


@dataclass(frozen=True)
class Quantity:
    """A number as stated: its value, what it counts (unit), and on which side of it the truth lies."""

    value: float
    unit: str = ""  # "%", "usd", "eur", ... or "" when the text gives none
    qualifier: str = ""  # "", "~" about, ">" more than, "<" less than
    ordinal: bool = False  # "30th", "third"
    text: str = ""
    start: int = 0
    end: int = 0
    counted: tuple[str, ...] = ()  # the words after it that say what it counts ("trucks", "river ports")


@dataclass(frozen=True)
class DateMention:
    """A calendar date with the parts the text gives."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    text: str = ""
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class Moment:
    """A time news gives without a calendar date: a weekday, a clock time, "tonight", "next week". It
    answers "when", but does not compare across articles (one's "Tuesday" is another's "today")."""

    text: str
    start: int = 0
    end: int = 0


WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
MOMENT = re.compile(
    rf"\b{WEEKDAY}(?:\s+(?:morning|afternoon|evening|night))?\b"
    r"|\b\d{1,2}(?::[0-5]\d)?(?=\s?[ap]\.?m\b)"  # the hour of "10:34 p.m." (a claim may write "10:34 pm")
    r"|\b(?:tonight|tomorrow|yesterday)\b"
    rf"|\b(?:next|last|later this|earlier this)\s+(?:week(?:end)?|month|year|spring|summer|fall|autumn|winter|{WEEKDAY})\b"
    r"|\bin the coming (?:days|weeks|months)\b",
    re.IGNORECASE)


def moments(text: str) -> list[Moment]:
    """The weekdays, clock times and days relative to the article a text names ("today" and "this
    week" aside: they date the report, not what it reports)."""
    return [Moment(m.group(), m.start(), m.end()) for m in MOMENT.finditer(text)]


def _words_value(words: str) -> float | None:
    """'seventy-five' -> 75, 'a thousand' -> 1000, 'two hundred' -> 200; None if it is not a number."""
    total, current, seen = 0.0, 0.0, False
    for word in re.split(r"[\s-]+", words.lower().strip()):
        if not word or word == "and":
            continue
        if word in ("a", "an"):
            current, seen = max(current, 1.0), True
            continue
        if word in UNITS_WORDS:
            current += UNITS_WORDS[word]
        elif word in TENS_WORDS:
            current += TENS_WORDS[word]
        elif word in SCALES and word not in ("k", "m", "b", "mn", "bn", "tn", "mln"):
            current = max(current, 1.0) * SCALES[word]
            if SCALES[word] >= 1e3:
                total, current = total + current, 0.0
        else:
            return None
        seen = True
    return total + current if seen else None


def _rejoin(match: re.Match) -> str:
    """ "3, 800" -> "3,800  " (padded to the same length, so offsets stay right), unless a month precedes."""
    before = match.string[max(0, match.start() - 10):match.start()].lower().split()
    if before and before[-1].rstrip(".") in MONTHS:
        return match.group()
    return "".join(g for g in match.groups() if g).ljust(len(match.group()))


COUNTED_SKIP = {"of", "the", "a", "an", "its", "their", "his", "her", "our", "new", "more", "other", "additional"}
COUNTED_STOP = re.compile(r"[.,;:!?()\[\]“”\"]|\b(?:and|or|but|which|who|that|to|in|on|at|for|from|with|by|was|were|is|are|has|have|had)\b", re.I)


def counted_words(text: str, end: int) -> tuple[str, ...]:
    """Up to three lower-cased words after a number, to the next punctuation or function word:
    what it counts ("65,000 trucks cross" -> ("trucks",), "two river ports with" -> ("river", "ports"))."""
    rest = text[end:end + 60]
    stop = COUNTED_STOP.search(rest)
    words = re.findall(r"[^\W\d_][\w'’-]*", rest[: stop.start() if stop else len(rest)].lower())
    return tuple(w for w in words if w not in COUNTED_SKIP)[:3]


def quantities(text: str) -> list[Quantity]:
    """The quantities a text states, in order (codes like "3+3", "G7" and years in dates are not quantities)."""
    found: list[Quantity] = []
    text = SPACED_NUMBER.sub(_rejoin, text)
    blocked = [m.span() for m in CODE.finditer(text)]
    for match in QUANTITY.finditer(text):
        start, end = match.span()
        if any(s <= match.start("digits" if match.group("digits") else "words") < e for s, e in blocked):
            continue
        if match.group("digits"):
            value = float(match.group("digits").replace(",", ""))
        else:
            words = match.group("words")
            if words.lower().strip() in ("a", "an", "one") and not (match.group("scale") or match.group("suffix")):
                continue  # "a", "one of them": not a figure anyone quotes
            value = _words_value(words)
            if value is None:
                continue
        scale = match.group("suffix") or match.group("scale")
        if scale:
            for word in scale.lower().split():
                value *= SCALES.get(word, 1.0)
        unit = ""
        if match.group("pct"):
            unit = "%"
        elif match.group("cur"):
            unit = CURRENCY_SYMBOLS[match.group("cur").lower()]
        elif match.group("curword"):
            unit = CURRENCY_WORDS[match.group("curword").lower()]
        qualifier = QUALIFIERS.get((match.group("qual") or "").lower(), "")
        found.append(Quantity(value, unit, qualifier, bool(match.group("ord")), match.group().strip(), start, end,
                              counted_words(text, end)))
    for match in ORDINAL.finditer(text):
        found.append(Quantity(float(ORDINAL_WORDS[match.group("word").lower()]), "", "", True, match.group(),
                              *match.span(), counted_words(text, match.end())))
    return sorted(found, key=lambda q: q.start)


def quantities_agree(claim: Quantity, source: Quantity) -> bool:
    """Whether a source quantity states what the claim's does.

    Same value (a claim "about X" may be within 5%), same kind (an ordinal only matches an ordinal),
    units that do not contradict (a unit one side leaves out is no contradiction), and a qualifier the
    source allows: a claim "more than 70" needs the source to say more than 70 ("over 70" will do);
    a bare claim "70" may drop the source's "more than" (the quote shows it).
    """
    if claim.ordinal != source.ordinal:
        return False
    if claim.unit and source.unit and claim.unit != source.unit:
        return False
    if (claim.unit == "%") != (source.unit == "%") and (claim.unit or source.unit) == "%":
        return False  # "16" vs "16%" count different things unless both are bare
    tolerance = 0.05 if claim.qualifier == "~" or source.qualifier == "~" else 1e-9
    if abs(claim.value - source.value) > tolerance * max(abs(claim.value), abs(source.value), 1e-9):
        return False
    if claim.qualifier in (">", "<"):
        return source.qualifier == claim.qualifier
    return True


def dates(text: str) -> list[DateMention]:
    """The calendar dates a text names, most specific first where they overlap."""
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    for pattern in DATE_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(s < end and start < e for s, e in taken):
                continue
            groups = match.groupdict()
            month = int(groups["m"]) if groups.get("m") else MONTHS.get((groups.get("mon") or "").lower().rstrip("."))
            day = int(groups["d"]) if groups.get("d") else None
            year = int(groups["y"]) if groups.get("y") else None
            if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
                continue
            taken.append((start, end))
            found.append(DateMention(year, month, day, match.group(), start, end))
    return sorted(found, key=lambda d: d.start)


def dates_agree(claim: DateMention, source: DateMention, source_year: int | None = None) -> bool:
    """Every part the claim gives is the source's (a year the source leaves out may come from its article's date)."""
    year = source.year if source.year is not None else source_year
    if claim.year is not None and claim.year != year:
        return False
    if claim.month is not None and claim.month != source.month:
        return False
    if claim.day is not None and claim.day != source.day:
        return False
    return claim.year is not None or claim.month is not None


def codes(text: str) -> set[str]:
    """Number-bearing names ("3+3", "G7", "COVID-19", "F-16"), lower-cased, which must match literally."""
    return {m.group().lower() for m in CODE.finditer(text)}
