"""The vector-store contract: what the index needs from any backend (FAISS or Milvus, chosen by config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass
class StoreRecord:
    """What a store may keep beside a chunk's vector to filter and rank without the metadata store."""

    date: str | None
    source: str
    text: str  # the lexical text: title and chunk text, as BM25 sees them


class VectorStore(Protocol):
    """Vectors keyed by int64 chunk ids, searched by inner product (cosine on unit vectors).

    Filters reach a store in one of two forms. A store that keeps each chunk's date and source
    (`filters_natively = True`, Milvus) gets the SearchFilters and applies them itself; one that keeps
    only vectors (FAISS) gets `allowed`, the chunk ids the metadata store says match.
    """

    kind: str  # the index type in use, for stats and the manifest
    filters_natively: bool
    has_text_search: bool  # whether search_text() (the store's own BM25) exists

    def add(self, ids: np.ndarray, vectors: np.ndarray, records: list[StoreRecord] | None = None) -> None:
        """Add (or overwrite) vectors under these ids; `records`, one per id, for stores that keep
        date, source and text."""

    def remove(self, ids: np.ndarray) -> None:
        """Remove these ids; unknown ids are ignored."""

    def search(self, query: np.ndarray, k: int, allowed=None) -> list[tuple[int, float]]:
        """The k nearest (id, score) pairs, best first, restricted by `allowed` (see above)."""

    def all_ids(self) -> np.ndarray:
        """Every stored id, including any the store has only marked deleted."""

    def ids(self) -> np.ndarray:
        """Every live id."""

    def count(self) -> int:
        """Number of live vectors."""

    def save(self, path: Path) -> None:
        """Make every change durable (FAISS: write atomically to `path`)."""
