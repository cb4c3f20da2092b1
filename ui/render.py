"""Turning answers and documents into what the browser shows, as escaped text only.

Corpus text and model output are untrusted: an article may contain `<script>`, `onerror=` attributes
or `javascript:` links. Everything here is HTML-escaped (and, for the chat bubbles, Markdown-escaped),
and links are emitted only for http(s) URLs, so nothing from the corpus can become markup or code.
"""

from __future__ import annotations

import html
import re

from rag.api.guard import safe_url
from rag.errors import RagError
from rag.injection import instruction_spans
from rag.types import Answer, Citation, Dated, Hit

# Markdown punctuation that could start emphasis, links, images, code, headings or tables.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_AUTOLINK = re.compile(r"://|\bwww\\?\.", re.IGNORECASE)
CONTEXT_CHARS = 600  # at most this much text shown around a quote
FLAGGED_NOTE = "This sentence addresses an AI assistant; it is never used as a source."


def markdown_text(text: str) -> str:
    """`text` so that Markdown renders it literally: no HTML, no emphasis or links, no bare URL made a
    link (the "://" and "www." that autolinking looks for are written as character references), no
    math (the Chatbot renders no LaTeX: `latex_delimiters=[]`)."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))
    return _AUTOLINK.sub(lambda m: "&#58;//" if m.group() == "://" else m.group()[:3] + "&#46;", escaped)


def answer_markdown(answer: Answer, flag_unsupported: bool = False) -> str:
    """The chat bubble for a finished answer: sentences with [n] markers, flags, or the refusal."""
    if answer.refused:
        return f"**{markdown_text(answer.answer)}**" + timeframe_note(answer) + (
            "\n\n_Related passages are listed under Sources._" if answer.retrieved else ""
        )
    parts = ["⚠️ **The sources disagree:**"] if answer.conflict else []
    for sentence in answer.sentences:
        if sentence.supported and sentence.citations:
            marks = "".join(f"\\[{n}\\]" for n in sentence.citations)
            when = f"**{markdown_text(sentence.date)}**: " if sentence.date else ""
            parts.append(f"{when}{markdown_text(sentence.text)} {marks}")
        elif flag_unsupported:
            parts.append(f"~~{markdown_text(sentence.text)}~~ ⚠️ _unsupported_")
    return " ".join(parts) + timeframe_note(answer)


def timeframe_note(answer: Answer) -> str:
    """A line saying which dates the question was read as, when its words named any."""
    frame = answer.timeframe
    if frame is None or not (frame.expressions or frame.favour_recent):
        return ""
    return f"\n\n_Dates: {markdown_text(frame.describe())}_"


def error_markdown(error: RagError) -> str:
    """A user-facing error, marked as a warning, as literal Markdown text."""
    return f"⚠️ {markdown_text(error.for_ui())}"


def draft_markdown(draft: str) -> str:
    """The chat bubble while the draft streams in (not yet verified)."""
    return f"{markdown_text(draft)} ▌\n\n_checking sources…_"


def quote_in_context(text: str, start: int, end: int) -> tuple[str, str, str]:
    """(before, quote, after): the quote with the rest of its paragraph, bounded to CONTEXT_CHARS."""
    para_start = max((m.end() for m in _PARAGRAPH_BREAK.finditer(text, 0, start)), default=0)
    following = _PARAGRAPH_BREAK.search(text, end)
    para_end = following.start() if following else len(text)
    room = max(CONTEXT_CHARS - (end - start), 0) // 2
    before_start = max(para_start, start - room)
    after_end = min(para_end, end + room)
    before = ("…" if before_start > para_start else "") + text[before_start:start]
    after = text[end:after_end] + ("…" if after_end < para_end else "")
    return before, text[start:end], after


def _heading(n: int | None, source: Dated) -> str:
    meta = html.escape(source.byline)
    label = html.escape(source.title or "(untitled)")
    link = safe_url(source.url)
    title_html = f'<a href="{html.escape(link, quote=True)}" target="_blank" rel="noopener noreferrer nofollow">{label}</a>' if link else label
    number = f'<span class="rag-n">[{n}]</span> ' if n is not None else ""
    return f'<div class="rag-title">{number}{title_html}' + (f' <span class="rag-meta">({meta})</span>' if meta else "") + "</div>"


def flagged_html(text: str) -> str:
    """Escaped text with the sentences that address an AI (rag.injection) marked as such."""
    parts, position = [], 0
    for start, end in instruction_spans(text):
        parts.append(html.escape(text[position:start]))
        parts.append(f'<span class="rag-flagged" title="{FLAGGED_NOTE}">⚠ {html.escape(text[start:end])}</span>')
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def citation_html(citation: Citation, document_text: str) -> str:
    """One source: heading, then the quote highlighted inside its paragraph."""
    before, quote, after = quote_in_context(document_text, citation.start, citation.end)
    body = f"{flagged_html(before)}<mark>{html.escape(quote)}</mark>{flagged_html(after)}"
    heading = _heading(citation.n, citation)
    return f'<div class="rag-source" data-n="{citation.n}">{heading}<div class="rag-quote">{body}</div></div>'


def related_html(hit: Hit) -> str:
    """A retrieved passage offered after a refusal."""
    heading = _heading(None, hit)
    return f'<div class="rag-source rag-related">{heading}<div class="rag-quote">{flagged_html(hit.text)}</div></div>'


def sources_html(answer: Answer, document_texts: dict[str, str]) -> str:
    """The sources panel for an answer (citations), or the related passages of a refusal."""
    if answer.refused:
        if not answer.retrieved:
            return '<div class="rag-refused">Nothing in the corpus is related to this question.</div>'
        items = "".join(related_html(hit) for hit in answer.retrieved)
        return f'<div class="rag-refused">The corpus does not answer this. Related passages:</div>{items}'
    items = "".join(citation_html(c, document_texts.get(c.doc_id, c.quote)) for c in answer.citations)
    return f'<div class="rag-sources">{items}</div>'


SOURCES_PLACEHOLDER = '<div class="rag-empty">Sources for the latest answer appear here.</div>'

CSS = """
.rag-source { border-left: 3px solid #8aa; padding: 4px 8px; margin-bottom: 10px; }
.rag-related { border-left-color: #ccc; }
.rag-title { font-weight: 600; }
.rag-meta { font-weight: 400; color: #666; }
.rag-quote { white-space: pre-wrap; font-size: 0.92em; }
.rag-quote mark { background: #ffe58a; padding: 0 1px; }
.rag-refused { font-weight: 600; color: #a33; margin-bottom: 8px; }
.rag-timeline { list-style: none; padding-left: 0; }
.rag-timeline-entry { margin-bottom: 10px; }
.rag-date { font-family: monospace; font-weight: 600; }
.rag-flagged { background: #f3e0e0; text-decoration: line-through; color: #733; }
"""


def timeline_html(timeline) -> str:
    """A rag.timeline.Timeline as a list: date, headline (linked when http(s)), source, the sentence."""
    if not timeline.entries:
        return '<div class="rag-refused">No articles about this in the corpus.</div>'
    rows = []
    for entry in timeline.entries:
        rows.append(f'<li class="rag-timeline-entry"><span class="rag-date">{html.escape(entry.date or "undated")}</span> '
                    f'{_heading(None, entry)}<div class="rag-quote">{flagged_html(entry.sentence)}</div></li>')
    return f'<ol class="rag-timeline">{"".join(rows)}</ol>'
