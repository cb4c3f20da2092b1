"""The vector-store contract: what the index needs from any backend (FAISS or Milvus, chosen by config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from rag.config import StoreSettings
    from rag.types import SearchFilters


@dataclass
class StoreRecord:
    """What a store may keep beside a chunk's vector to filter and rank without the metadata store."""

    date: str | None
    source: str
    text: str  # the lexical text: title and chunk text, as BM25 sees them


class VectorStore(Protocol):
    """Vectors keyed by int64 chunk ids, searched by inner product (cosine on unit vectors).

    Capabilities are class attributes, so the index reads them without opening a store:
    - `keeps_records`: the store keeps each chunk's date, source and lexical text (`add` gets them as
      StoreRecords) and applies SearchFilters itself; a store without them (FAISS) is given `allowed`,
      the chunk ids the metadata store says match the filters.
    - `text_search`: it has its own full-text (BM25) search, `search_text`.
    - `shared`: a live service that other processes read and write (Milvus): the index flags a batch in
      SQLite until the store has it, instead of comparing a saved file with SQLite when it opens.
    """

    keeps_records: ClassVar[bool]
    text_search: ClassVar[bool]
    shared: ClassVar[bool]
    kind: str  # the index type in use, for stats and the manifest

    @classmethod
    def open(cls, directory: Path, dimension: int, settings: "StoreSettings", owner: str) -> "VectorStore":
        """The store of the index at `directory` (created empty when there is none yet); `owner` is the
        index's id, for stores that more than one index could reach."""

    @classmethod
    def describe(cls, directory: Path, settings: "StoreSettings") -> dict:
        """Where the vectors live, recorded in the manifest: {"backend": name, ...}."""

    def add(self, ids: np.ndarray, vectors: np.ndarray, records: list[StoreRecord] | None = None) -> None:
        """Add (or overwrite) vectors under these ids; `records`, one per id, when `keeps_records`."""

    def remove(self, ids: np.ndarray) -> None:
        """Remove these ids; unknown ids are ignored."""

    def search(self, query: np.ndarray, k: int, filters: "SearchFilters | None" = None,
               allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The k nearest (id, score) pairs, best first, among the chunks that match: `filters` for a
        store that keeps records, `allowed` ids for one that does not (None = every chunk)."""

    def search_text(self, query: str, k: int, filters: "SearchFilters | None" = None) -> list[tuple[int, float]]:
        """The k best (id, BM25 score) pairs, when `text_search`."""

    def all_ids(self) -> np.ndarray:
        """Every stored id, including any the store has only marked deleted."""

    def ids(self) -> np.ndarray:
        """Every live id."""

    def count(self) -> int:
        """Number of live vectors."""

    def persisted(self, directory: Path) -> bool:
        """Whether the store has been saved at all (a new FAISS index has no file yet)."""

    def save(self, directory: Path) -> None:
        """Make every change durable (FAISS: write its file atomically into `directory`)."""

    def close(self) -> None:
        """Release connections and files."""
