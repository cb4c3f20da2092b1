"""What the `rag` command writes to a terminal: nothing a document or a model can use to drive it.

Article text, titles, file names and model output are printed by the CLI. A control character in
them ("\\x1b]0;...", "\\x1b[2J", a bell) would be read by the terminal as a command: retitle the
window, clear the screen, hide or rewrite what was printed before. `safe_output` routes stdout and
stderr through `ControlFilter`, which drops every C0/C1 control character except tab, newline and
carriage return (progress bars), so no escape sequence can come out of any print. The CLI's own
sequences (the draft view below) go to the stream underneath.

`DraftView` shows the unverified draft while it streams, dimmed under a label, and erases it when
the verified answer is printed: what stays on the screen is only what the verification let through.
Written to a pipe or a file, the draft is not shown at all.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import sys
import unicodedata
from typing import Iterator, TextIO

# C0 controls but tab, newline and carriage return; DEL; the C1 controls (U+0080-U+009F).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Whole escape sequences go, not only their ESC: CSI ("\x1b[31m"), OSC ("\x1b]0;title\x07") and the
# two-character ones, so that no "[31m" is left in the text.
ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)|[@-Z\\-_])")
DRAFT_LABEL = "(draft, checking it against the sources…) "
DIM, RESET = "\x1b[2m", "\x1b[0m"


def strip_controls(text: str) -> str:
    """`text` without control characters, tab, newline and carriage return aside."""
    return CONTROL.sub("", ESCAPE_SEQUENCE.sub("", text))


class ControlFilter:
    """A text stream that passes everything on to `stream` except control characters."""

    def __init__(self, stream: TextIO):
        self.unfiltered = stream

    def write(self, text: str) -> int:
        self.unfiltered.write(strip_controls(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):  # flush, isatty, fileno, encoding, ...
        return getattr(self.unfiltered, name)


@contextlib.contextmanager
def safe_output() -> Iterator[None]:
    """stdout and stderr filtered for the duration (restored after, also on error)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ControlFilter(sys.stdout), ControlFilter(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def unfiltered(stream: TextIO) -> TextIO:
    """The stream underneath a ControlFilter (the stream itself otherwise)."""
    return getattr(stream, "unfiltered", stream)


class DraftView:
    """The streaming draft on a terminal: dimmed, labelled, erased once the answer is verified."""

    def __init__(self, stream: TextIO):
        self.stream = unfiltered(stream)
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = ""

    def feed(self, piece: str) -> None:
        if not self.tty or not (piece := strip_controls(piece).replace("\r", "")):
            return
        if not self.shown:
            self.stream.write(DIM + DRAFT_LABEL)
            self.shown = DRAFT_LABEL
        self.stream.write(piece)
        self.stream.flush()
        self.shown += piece

    def clear(self) -> None:
        """Erase the draft: back to the row it started on, then clear to the end of the screen."""
        if not self.shown:
            return
        rows = screen_rows(self.shown, terminal_columns(self.stream))
        up = f"\x1b[{rows - 1}A" if rows > 1 else ""
        self.stream.write(f"{RESET}\r{up}\x1b[J")
        self.stream.flush()
        self.shown = ""


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal `stream` writes to (stdout may be a file while stderr is the terminal);
    $COLUMNS when set, as shutil reads it."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


def screen_rows(text: str, columns: int) -> int:
    """How many terminal rows `text` takes from the start of a row (wide characters count twice)."""
    columns = max(columns, 1)
    rows = 0
    for line in text.split("\n"):
        width = sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in line)
        rows += max(1, math.ceil(width / columns))
    return rows
