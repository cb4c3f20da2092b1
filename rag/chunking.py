"""Paragraph-first, token-bounded chunking with exact character offsets.

A paragraph is a chunk unless it is short (a dateline, a byline, a one-liner), in which case it joins
its neighbour in the same section, or long, in which case it is cut at sentence boundaries (blingfire), and a sentence longer
than the bound at word boundaries. Every chunk satisfies two bounds: `max_tokens` tiktoken tokens, and
the embedding model's own sequence limit (the `fits` check), so no chunk is silently truncated when
embedded. `chunk.text == document.text[chunk.start:chunk.end]` always holds.

Layout lines ("Х Х Х", "* * *", "-0-", "###": no word of two or more letters or digits) are section
breaks, not text: they are in no chunk and in no sentence, and short paragraphs do not merge across them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Protocol

from rag.tokens import count_tokens
from rag.types import Chunk, Document

Span = tuple[int, int]
Within = Callable[[int, int], "int | None"]  # a span's token count if it satisfies both bounds, else None


@dataclass
class Unit:
    """A span of the document text and its token count."""

    start: int
    end: int
    tokens: int
    section: int = 0  # layout lines (dividers) between paragraphs start a new section


class SpanMeasure(Protocol):
    """The embedder's view of spans of one text, each read as prefix + text[start:end] (rag.embedding.TextSpans)."""

    def fits(self, start: int, end: int) -> bool:
        """Whether the span embeds without truncation."""

    def ids(self, start: int, end: int) -> list[int] | None:
        """The span's input ids for the encoder, when they come for free; else None."""


class WholeTexts:
    """A SpanMeasure from a check of whole embedding texts (no ids)."""

    def __init__(self, fits: Callable[[str], bool], text: str, prefix: str):
        self._fits, self.text, self.prefix = fits, text, prefix

    def fits(self, start: int, end: int) -> bool:
        return self._fits(self.prefix + self.text[start:end])

    def ids(self, start: int, end: int) -> None:
        return None


class Chunker:
    """Splits a Document into Chunks within `max_tokens` and the embedder's own length check: `fits`
    (embedding text -> bool), or `spans`, which measures one text's spans at once (Embedder.spans) and
    hands each chunk's input ids on to the encoder."""

    def __init__(
        self,
        max_tokens: int = 180,
        min_tokens: int = 40,
        fits: Callable[[str], bool] | None = None,
        embed_title: bool = True,
        spans: Callable[[str, str], SpanMeasure] | None = None,
    ):
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        fits = fits or (lambda text: True)
        self.spans = spans or (lambda text, prefix: WholeTexts(fits, text, prefix))
        self.embed_title = embed_title

    def run(self, document: Document) -> list[Chunk]:
        """The chunks of one document, in order."""
        text = document.text
        prefix = self.embedding_text(document.title, "")
        measure = self.spans(text, prefix)
        fits = measure.fits

        def within(start: int, end: int) -> int | None:
            """Token count of the span if it satisfies both bounds, else None."""
            tokens = count_tokens(text[start:end])
            return tokens if tokens <= self.max_tokens and fits(start, end) else None

        units: list[Unit] = []
        section = 0
        for start, end in paragraph_spans(text):
            if is_layout(text[start:end]):
                section += 1
                continue
            tokens = within(start, end)
            if tokens is not None:
                units.append(Unit(start, end, tokens, section))
            else:
                units.extend(Unit(u.start, u.end, u.tokens, section) for u in self._split_long(text, within, start, end))
        units = self._merge_short(units, within)
        return [
            Chunk(
                chunk_id=f"{document.doc_id}#{ordinal}",
                doc_id=document.doc_id,
                ordinal=ordinal,
                start=unit.start,
                end=unit.end,
                text=text[unit.start:unit.end],
                n_tokens=unit.tokens,
                title=document.title,
                date=document.date,
                source=document.source,
                url=document.url,
                token_ids=measure.ids(unit.start, unit.end),
            )
            for ordinal, unit in enumerate(units)
        ]

    def embedding_text(self, title: str, text: str) -> str:
        """What the embedder and BM25 see for a chunk: the title gives a paragraph its topic."""
        return f"{title}\n{text}" if self.embed_title and title else text

    def _split_long(self, text: str, within: Within, start: int, end: int) -> list[Unit]:
        """Pack the sentences of an over-long paragraph into units within the bounds."""
        units: list[Unit] = []
        current: Unit | None = None
        for s_start, s_end in sentence_spans(text, start, end):
            if current is not None:
                tokens = within(current.start, s_end)
                if tokens is not None:
                    current = Unit(current.start, s_end, tokens)
                    continue
                units.append(current)
            tokens = within(s_start, s_end)
            if tokens is not None:
                current = Unit(s_start, s_end, tokens)
            else:
                words = self._split_words(text, within, s_start, s_end)
                units.extend(words[:-1])
                current = words[-1]
        if current is not None:
            units.append(current)
        return units

    def _split_words(self, text: str, within: Within, start: int, end: int) -> list[Unit]:
        """Cut a run-on sentence at word boundaries, each piece as long as the bounds allow."""
        words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
        units: list[Unit] = []
        i = 0
        while i < len(words):
            # Binary search for the longest run of words from i that fits.
            lo, hi, best = i, len(words) - 1, None
            while lo <= hi:
                mid = (lo + hi) // 2
                tokens = within(words[i][0], words[mid][1])
                if tokens is not None:
                    best, lo = (mid, tokens), mid + 1
                else:
                    hi = mid - 1
            if best is None:  # a single "word" over the bound (e.g. a huge URL): cut it by characters
                units.extend(self._split_chars(text, *words[i]))
                i += 1
                continue
            units.append(Unit(words[i][0], words[best[0]][1], best[1]))
            i = best[0] + 1
        return units

    def _split_chars(self, text: str, start: int, end: int) -> list[Unit]:
        """Last resort for a token-dense string without spaces."""
        units, step = [], max(8, self.max_tokens)
        for s in range(start, end, step):
            e = min(end, s + step)
            units.append(Unit(s, e, count_tokens(text[s:e])))
        return units

    def _merge_short(self, units: list[Unit], within: Within) -> list[Unit]:
        """Join each short unit with its neighbour while the result stays within the bounds."""
        merged: list[Unit] = []
        for unit in units:
            if merged and merged[-1].section == unit.section and (
                    merged[-1].tokens < self.min_tokens or unit.tokens < self.min_tokens):
                tokens = within(merged[-1].start, unit.end)
                if tokens is not None:
                    merged[-1] = Unit(merged[-1].start, unit.end, tokens, unit.section)
                    continue
            merged.append(unit)
        return merged


def paragraph_spans(text: str) -> list[Span]:
    """Paragraphs split at blank lines; text without blank lines is split at line breaks."""
    separator = r"\n\s*\n" if re.search(r"\n\s*\n", text) else r"\n"
    spans, position = [], 0
    for match in re.finditer(separator, text):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, len(text)))
    return [trimmed for span in spans if (trimmed := _trim(text, *span))]


def sentence_spans(text: str, start: int, end: int) -> list[Span]:
    """Sentence spans inside text[start:end], found by blingfire (abbreviation- and number-aware, fast).

    A line break always ends a sentence (a headline, a dateline or a divider has no full stop, and
    blingfire would glue it to the next sentence), and layout lines are no sentence at all.
    """
    import blingfire

    spans = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        offset, line_text = start + line.start(), line.group()  # group() copies the line: once
        _, offsets = blingfire.text_to_sentences_and_offsets(line_text)
        joined: list[tuple[int, int]] = []
        for s, e in offsets:
            # Only the previous piece's last characters are searched: a long line stays linear.
            if joined and TITLE_END.search(line_text, max(joined[-1][0], joined[-1][1] - 16), joined[-1][1]):
                joined[-1] = (joined[-1][0], e)  # "Gen." | "Mark Milley said ...": one sentence
            else:
                joined.append((s, e))
        spans.extend(t for s, e in joined if (t := _trim(text, offset + s, offset + e)) and not is_layout(text[t[0]:t[1]]))
    return spans or ([] if is_layout(text[start:end]) else [(start, end)])


# Titles that only ever stand before a name, so no sentence ends with one; blingfire ends a sentence
# after some of them ("Gen." at a sentence's start, "Dr." before a capitalised word).
TITLE_END = re.compile(r"(?:^|(?<=[\s(\"“'‘]))(?:Mr|Mrs|Ms|Dr|Gen|Gens|Lt|Sgt|Capt|Col|Maj|Cmdr|Adm|Cpl|Pvt|Gov|Sen|Sens|Rep|Reps|"
                       r"Rev|Prof|Supt|Det)\.\s*$")


LAYOUT = re.compile(r"[\W_]*(?:[^\W_][\W_]+)*[^\W_]?[\W_]*")  # no run of two or more letters or digits


def is_layout(text: str) -> bool:
    """Whether a line is layout, not text: a divider such as "Х Х Х", "* * *", "-0-" or "###"."""
    text = text.strip()
    return len(text) <= 200 and LAYOUT.fullmatch(text) is not None  # dividers are short


def _trim(text: str, start: int, end: int) -> Span | None:
    """Shrink a span to exclude surrounding whitespace; None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
