"""Prompt building: numbered passages with title and date, fitted into the model's context budget.

Token counts use tiktoken (cl100k, offline). A model's own tokenizer usually splits text into more
pieces, so the budget is `context_tokens / tokenizer_ratio`, minus the room kept for the answer.
Passages go in by rank, at most `llm.prompt_passages` of them; the last one that does not fit whole is cut at a sentence boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.chunking import sentence_spans
from rag.config import LLMSettings
from rag.llm.base import Message
from rag.tokens import count_tokens
from rag.types import Hit

# Kept short and plain: the bundled 135M model follows a one-line instruction far better than a list
# of rules (it rambles or recites titles otherwise). Citations are not requested: the system decides them.
SYSTEM = "Answer the question using only the context. Reply with one complete sentence."
MESSAGE_OVERHEAD = 8  # role markers and separators a chat template adds per message


class PromptTooLongError(ValueError):
    """Even without passages, the question does not fit the context."""


@dataclass
class Prompt:
    """The messages to send and which hits made it in (possibly cut)."""

    messages: list[Message]
    passages: int  # how many of the hits are in the prompt
    tokens: int  # tiktoken count of all message contents plus overhead


class PromptBuilder:
    """Builds the chat messages for a question and its retrieved passages."""

    def __init__(self, settings: LLMSettings):
        self.settings = settings

    @property
    def budget(self) -> int:
        """tiktoken tokens available for the prompt."""
        return int(self.settings.context_tokens / self.settings.tokenizer_ratio) - self.settings.max_answer_tokens

    def run(self, question: str, hits: list[Hit]) -> Prompt:
        """Messages with as many passages as fit, best first."""
        head = "Context:\n"
        tail = f"\nQuestion: {question}"
        used = count_tokens(SYSTEM) + count_tokens(head) + count_tokens(tail) + 2 * MESSAGE_OVERHEAD
        if used > self.budget:
            raise PromptTooLongError(
                f"the question needs {used} tokens but the prompt budget is {self.budget} "
                f"(llm.context_tokens={self.settings.context_tokens})"
            )
        blocks: list[str] = []
        if self.settings.prompt_passages:
            hits = hits[: self.settings.prompt_passages]
        for number, hit in enumerate(hits, start=1):
            block = self.passage(number, hit, hit.text)
            cost = count_tokens(block) + 1
            if used + cost > self.budget:
                cut = self._cut(number, hit, self.budget - used - 1)
                if cut:
                    blocks.append(cut)
                    used += count_tokens(cut) + 1
                break
            blocks.append(block)
            used += cost
        user = head + "\n".join(blocks) + "\n" + tail
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        return Prompt(messages, len(blocks), used)

    @staticmethod
    def passage(number: int, hit: Hit, text: str) -> str:
        """One numbered passage: `[n] Title (date, source)` then its text."""
        meta = ", ".join(part for part in (hit.date, hit.source) if part)
        return f"[{number}] {hit.title}" + (f" ({meta})" if meta else "") + f"\n{text}\n"

    def _cut(self, number: int, hit: Hit, room: int) -> str | None:
        """The longest sentence prefix of a passage that fits `room` tokens, or None."""
        best = None
        for _, end in sentence_spans(hit.text, 0, len(hit.text)):
            block = self.passage(number, hit, hit.text[:end])
            if count_tokens(block) > room:
                break
            best = block
        return best
