"""The lexical index: BM25 (bm25s) over chunk texts with English stemming and stop words.

bm25s builds from a whole corpus, so the index is rebuilt from the metadata store when chunks change
(seconds for 100k chunks) and saved next to the vectors with the chunk ids it covers.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def _bm25s_tokenize(texts: list[str], return_ids: bool):
    """bm25s's tokenizer as this index uses it: English stop words out, English stemming."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=return_ids, show_progress=False)


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stemmed word tokens without English stop words."""
    return _bm25s_tokenize(texts, return_ids=False)


class BM25Index:
    """BM25 scores for chunk ids."""

    IDS_FILE = "chunk_ids.json"

    def __init__(self, ids: np.ndarray | None = None, retriever=None):
        self.chunk_ids = np.asarray(ids if ids is not None else [], dtype=np.int64)
        self.retriever = retriever

    @classmethod
    def build(cls, ids: list[int] | np.ndarray, texts: list[str]) -> "BM25Index":
        """Index these texts under these chunk ids."""
        return cls.from_tokens(ids, tokenize(texts))

    @classmethod
    def from_tokens(cls, ids: list[int] | np.ndarray, tokens: list[list[str]]) -> "BM25Index":
        """Index texts already tokenized (`tokenize`) under these chunk ids."""
        import bm25s

        if not len(ids):
            return cls()
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(np.asarray(ids, dtype=np.int64), retriever)

    @classmethod
    def load(cls, directory: Path) -> "BM25Index":
        """Read a saved index (raises OSError/ValueError when missing or damaged)."""
        import bm25s

        ids = json.loads((directory / cls.IDS_FILE).read_text())
        if not ids:
            return cls()
        return cls(np.asarray(ids, dtype=np.int64), bm25s.BM25.load(str(directory), show_progress=False))

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) with a positive score, best first."""
        if self.retriever is None:
            return []
        vocabulary = self.retriever.vocab_dict
        tokens = [t for t in tokenize([query])[0] if t in vocabulary]
        if not tokens:
            return []
        scores = self.retriever.get_scores(tokens)
        # Only chunks holding a query word score above zero: filter and rank those, not every chunk.
        rows = np.flatnonzero(scores > 0)
        if allowed is not None:
            rows = rows[np.isin(self.chunk_ids[rows], allowed)]
        if len(rows) == 0:
            return []
        k = min(k, len(rows))
        top = rows[np.argpartition(-scores[rows], k - 1)[:k]]
        top = top[np.argsort(-scores[top])]
        return [(int(self.chunk_ids[i]), float(scores[i])) for i in top]

    def save(self, directory: Path) -> None:
        """Write into a fresh folder and swap it in, so readers never see a half-written index."""
        temporary = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        if self.retriever is not None:
            self.retriever.save(str(temporary), show_progress=False)
        (temporary / self.IDS_FILE).write_text(json.dumps(self.chunk_ids.tolist()))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(temporary, directory)
        shutil.rmtree(old, ignore_errors=True)


class TokenCache:
    """The BM25 tokens of chunks a writer stored, kept (as word numbers) until the index is rebuilt.

    bm25s indexes a whole corpus at once, so an ingest rebuilds BM25 at its end, after the last batch
    is encoded; tokenizing was 40% of that rebuild. A writer tokenizes each batch as it stores it,
    while the encoder works on the next one, and the rebuild tokenizes only chunks stored before.
    Bounded: past `limit` chunks, later ones are tokenized at the rebuild as before.
    """

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self.words: list[str] = []
        self.numbers: dict[str, int] = {}
        self.tokens: dict[int, np.ndarray] = {}

    def add(self, chunk_ids, texts: list[str]) -> None:
        """Tokenize and keep these chunks' texts (nothing once the cache holds `limit` chunks)."""
        if not texts or len(self.tokens) + len(texts) > self.limit:
            return
        batch = _bm25s_tokenize(texts, return_ids=True)  # the tokens of `tokenize`, as numbers and their words
        # The batch numbers its own words 0..n-1: map them to this cache's numbers.
        mapping = np.empty(len(batch.vocab), dtype=np.int32)
        for word, number in batch.vocab.items():
            known = self.numbers.get(word)
            if known is None:
                known = self.numbers[word] = len(self.words)
                self.words.append(word)
            mapping[number] = known
        for chunk_id, numbers in zip(chunk_ids, batch.ids):
            self.tokens[int(chunk_id)] = mapping[np.asarray(numbers, dtype=np.int64)]

    def get(self, chunk_id: int) -> list[str] | None:
        """A chunk's tokens, as `tokenize` gives them, if cached."""
        numbers = self.tokens.get(chunk_id)
        return None if numbers is None else list(map(self.words.__getitem__, numbers.tolist()))
