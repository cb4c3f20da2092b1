"""The vector-store contract: what the index needs from any backend (FAISS today, others by config)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class VectorStore(Protocol):
    """Vectors keyed by int64 chunk ids, searched by inner product (cosine on unit vectors)."""

    kind: str  # the index type in use, for stats and the manifest

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under these ids."""

    def remove(self, ids: np.ndarray) -> None:
        """Remove these ids; unknown ids are ignored."""

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The k nearest (id, score) pairs, best first, optionally among `allowed` ids only."""

    def ids(self) -> np.ndarray:
        """Every live id."""

    def count(self) -> int:
        """Number of live vectors."""

    def save(self, path: Path) -> None:
        """Write atomically to `path`."""
