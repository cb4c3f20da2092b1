"""Output hygiene: what a generator writes around its answer is removed before it is verified or shown.

Small models wrap answers in scaffolding ("The answer is: 220,000", "According to passage [2], ..."),
copy layout from the passages ("Х Х Х", "* * *"), loop ("the vaccine, the vaccine, the vaccine"), emit
stray letters of another script, emit `[n]` markers (citations are the system's, not the model's),
and stop mid-sentence at the token limit. `clean_draft` removes all of that; `StreamCleaner` applies it
to a streamed draft so that what streams to a user is a prefix of the cleaned text (it holds back
only text that may still turn out to be scaffolding or a half-written word).
"""

from __future__ import annotations

import re
import unicodedata

from rag.chunking import is_layout

_SOURCE = r"(?:the\s+)?(?:given\s+|provided\s+)?(?:passages?|context|text|articles?|sources?|sentences?|information|quotes?)"
_REF = r"(?:\s*\[?\d+\]?)?"
SCAFFOLD = re.compile(
    r"^\s*(?:"
    r"(?:sure|okay|ok|certainly)[!.,]?\s*|here(?:'s| is) (?:the|my) answer\s*[:.]?\s*|"
    r"(?:the\s+)?(?:short\s+|final\s+|correct\s+)?answer(?:\s+to\s+(?:the|your|this|that)\s+question)?\s*(?:is)?\s*[:\-–]\s*|"
    r"(?:the\s+)?(?:short\s+|final\s+|correct\s+)?answer\s+is\s+(?=\S)|"
    rf"(?:according\s+to|based\s+on)\s+{_SOURCE}{_REF}\s*(?:provided\s*)?[,:]?\s*|"
    rf"(?:from|in|as\s+(?:stated|mentioned|said)\s+in)\s+{_SOURCE}{_REF}\s*(?:provided\s*)?[,:]\s*|"
    rf"according\s+to\s*\[\d+\]\s*[,:]?\s*|"
    rf"{_SOURCE}{_REF}\s+(?:says|states|mentions|shows|indicates|reports)\s+(?:that\s+)?|"
    rf"\[\d+\]\s+(?:says|states|mentions|shows|indicates|reports)\s+(?:that\s+)?"
    r")+",
    re.IGNORECASE,
)
# Lower-cased openings that may still grow into scaffolding: stream them only once they do not.
SCAFFOLD_OPENINGS = ("the answer", "answer", "the short answer", "the final answer", "final answer", "short answer",
                     "the correct answer", "correct answer", "according to", "based on", "from the", "in the",
                     "as stated", "as mentioned", "the passage", "the context", "the text", "the article", "passage",
                     "context", "sure", "okay", "certainly", "here is", "here's", "[")
# Layout glued to the start of a line: one character repeated ("Х Х Х The answer...") or symbols ("* * * 70").
LEADING_LAYOUT = re.compile(r"^\s*(?:(\S)(?:\s+\1)+|[^\w\s]+(?:\s+[^\w\s]+)+)\s+")
MARKER = re.compile(r"\s*\[\d+(?:\s*[,;-]\s*\d+)*\]")
MARKDOWN = re.compile(r"\*\*|__|^\s*(?:[-*•]\s+|#+\s+|\d+[.)]\s+)", re.MULTILINE)
WORD = re.compile(r"\S+")


def _script(character: str) -> str:
    """The script a letter belongs to ("LATIN", "CYRILLIC", ...), "" for anything else."""
    if not character.isalpha():
        return ""
    try:
        return unicodedata.name(character).split(" ", 1)[0]
    except ValueError:
        return ""


def _drop_mixed_script(text: str) -> str:
    """Remove words that mix scripts ("Хello") and short words of a script the text otherwise lacks
    (a stray "Х" in English); longer foreign words (a quoted name) stay."""
    scripts: dict[str, int] = {}
    for character in text:
        if script := _script(character):
            scripts[script] = scripts.get(script, 0) + 1
    if len(scripts) < 2:
        return text
    main = max(scripts, key=scripts.get)
    kept = []
    for word in text.split(" "):
        letters = {s for c in word if (s := _script(c))}
        if len(letters) > 1 or (letters and main not in letters and sum(c.isalpha() for c in word) <= 3):
            continue
        kept.append(word)
    return " ".join(kept)


def _collapse_repeats(text: str) -> str:
    """A phrase of 2-8 words said twice or more in a row is said once; a single word, three times or more."""
    words = text.split(" ")
    changed = True
    while changed:
        changed = False
        for size in range(8, 0, -1):
            least = 3 if size == 1 else 2
            i = 0
            while i + size * least <= len(words):
                unit = [w.lower().strip(",.;:") for w in words[i:i + size]]
                repeats = 1
                while words[i + repeats * size:i + (repeats + 1) * size] and \
                        [w.lower().strip(",.;:") for w in words[i + repeats * size:i + (repeats + 1) * size]] == unit:
                    repeats += 1
                if repeats >= least and any(unit):
                    words[i + size:i + repeats * size] = []
                    changed = True
                i += 1
    return " ".join(words)


def _strip_leading_layout(line: str) -> str:
    while (stripped := LEADING_LAYOUT.sub("", line, count=1)) != line:
        line = stripped
    return line


def clean_draft(text: str, final: bool = True) -> str:
    """The draft without scaffolding, markers, layout, loops and stray script; when `final`, also
    without a last sentence the token limit cut short (if a complete one comes before it)."""
    lines = [_strip_leading_layout(line) for line in text.splitlines() if line.strip() and not is_layout(line)]
    text = " ".join(" ".join(lines).split())
    text = MARKDOWN.sub("", text)
    text = MARKER.sub("", text)
    text = _drop_mixed_script(text)
    text = _collapse_repeats(text)
    # Scaffolding opens the answer or a sentence of it.
    parts = re.split(r"(?<=[.!?])\s+", text)
    parts = [SCAFFOLD.sub("", part, count=1) for part in parts]
    parts = [p[:1].upper() + p[1:] if p and p[0].islower() else p for p in parts]
    text = " ".join(p for p in parts if p.strip())
    text = re.sub(r"\s+([,.;:!?])", r"\1", text).strip(" \"'“”")
    if final:
        complete = re.match(r"^.*[.!?]['\"”’)]?(?=\s|$)", text)
        if complete and not re.search(r"[.!?]['\"”’)]?$", text):
            text = complete.group()
    return text.strip()


class StreamCleaner:
    """Cleans a draft as it streams: `feed` returns the newly cleaned text to show, `finish` the rest."""

    def __init__(self):
        self.raw = ""
        self.shown = ""
        self.diverged = False  # cleaning rewrote text already shown: show nothing more until the end

    def feed(self, piece: str) -> str:
        self.raw += piece
        if self.diverged:
            return ""
        end = max(self.raw.rfind(" "), self.raw.rfind("\n"))
        ready = self.raw[:end] if end > 0 else ""  # whole words only
        cleaned = clean_draft(ready, final=False)
        opening = cleaned.lower()
        if len(opening) < 60 and any(o.startswith(opening) or (opening.startswith(o) and not re.search(r"[,:.]", opening))
                                     for o in SCAFFOLD_OPENINGS):
            return ""  # may still be scaffolding
        return self._advance(cleaned)

    def finish(self) -> str:
        """The rest of the cleaned draft (empty when cleaning changed what was already shown)."""
        return "" if self.diverged else self._advance(clean_draft(self.raw))

    def _advance(self, cleaned: str) -> str:
        if not cleaned.startswith(self.shown):
            self.diverged = True
            return ""
        new, self.shown = cleaned[len(self.shown):], cleaned
        return new
