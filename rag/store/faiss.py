"""FAISS vector store: exact inner-product search while small, HNSW once past a size threshold.

Ids are the metadata store's chunk ids (IndexIDMap2). HNSW cannot delete in place, so removed ids
become tombstones excluded from every search through an IDSelector, and the graph is rebuilt from
the live vectors when tombstones pass a fifth of the index. A search limited to a small set of ids
(a selective date or source filter) is computed exactly over just those vectors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rag.config import StoreSettings

FLAT, HNSW = "flat", "hnsw"
FILE = "vectors.faiss"  # in the index directory
EXACT_FILTER_LIMIT = 20000  # below this many allowed ids, brute force beats a filtered graph walk


def _faiss():
    import faiss

    return faiss


class FaissStore:
    """A FAISS index that picks its own type by size; see the module docstring."""

    keeps_records = False  # only vectors: search() is given the allowed ids the metadata store computed
    text_search = False
    shared = False  # a file of this index alone, compared with SQLite when it is opened

    def __init__(self, dimension: int, settings: StoreSettings | None = None, index=None):
        self.dimension = dimension
        self.settings = settings or StoreSettings()
        self.index = index if index is not None else self._new(FLAT)
        self.tombstones: set[int] = set()

    @property
    def kind(self) -> str:
        """`flat` or `hnsw`."""
        faiss = _faiss()
        # The IDMap's inner index comes back as a base-class proxy; downcast to see its real type.
        return HNSW if isinstance(faiss.downcast_index(self.index.index), faiss.IndexHNSW) else FLAT

    @classmethod
    def open(cls, directory: Path, dimension: int, settings: StoreSettings, owner: str = "") -> "FaissStore":
        """The index's saved file, or a new empty index when there is none or it is unreadable (the
        index then rebuilds it from the vectors SQLite keeps)."""
        path = Path(directory) / FILE
        if path.is_file():
            try:
                return cls.load(path, dimension, settings)
            except (RuntimeError, ValueError):
                pass  # damaged or foreign file
        return cls(dimension, settings)

    @classmethod
    def describe(cls, directory: Path, settings: StoreSettings) -> dict:
        return {"backend": "faiss", "file": FILE}

    @classmethod
    def load(cls, path: Path, dimension: int, settings: StoreSettings | None = None) -> "FaissStore":
        """Read a saved index; the caller reconciles it with the metadata store."""
        index = _faiss().read_index(str(path))
        if index.d != dimension:
            raise ValueError(f"{path}: vectors have dimension {index.d}, the embedding model gives {dimension}")
        return cls(dimension, settings, index)

    def _new(self, kind: str):
        faiss = _faiss()
        if kind == HNSW:
            inner = faiss.IndexHNSWFlat(self.dimension, self.settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.settings.hnsw_ef_construction
        else:
            inner = faiss.IndexFlatIP(self.dimension)
        return faiss.IndexIDMap2(inner)

    def all_ids(self) -> np.ndarray:
        """Every id in the FAISS index, tombstones included."""
        return _faiss().vector_to_array(self.index.id_map).astype(np.int64)

    def ids(self) -> np.ndarray:
        """Every live id."""
        ids = self.all_ids()
        if self.tombstones:
            ids = ids[~np.isin(ids, np.fromiter(self.tombstones, dtype=np.int64))]
        return ids

    def count(self) -> int:
        """Number of live vectors."""
        return int(self.index.ntotal) - len(self.tombstones)

    def add(self, ids: np.ndarray, vectors: np.ndarray, records: list | None = None) -> None:
        """Add vectors (`records` are not needed here); switches to HNSW when the threshold is crossed."""
        if len(ids) == 0:
            return
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        if self.kind == FLAT and self.count() > self.settings.ann_threshold:
            self._rebuild(HNSW)

    def remove(self, ids: np.ndarray) -> None:
        """Delete from a flat index; tombstone in HNSW, rebuilding when there are too many."""
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        if self.kind == FLAT:
            self.index.remove_ids(ids)
            return
        stored = self.all_ids()
        present = set(stored[np.isin(stored, ids)].tolist())
        self.tombstones |= present
        if len(self.tombstones) > 0.2 * max(1, self.index.ntotal):
            live = self.ids()
            self._rebuild(HNSW if len(live) > self.settings.ann_threshold else FLAT)

    def _rebuild(self, kind: str) -> None:
        """Re-create the index of `kind` from the live vectors."""
        live = self.ids()
        vectors = self.index.reconstruct_batch(live) if len(live) else np.zeros((0, self.dimension), np.float32)
        self.index = self._new(kind)
        self.tombstones = set()
        if len(live):
            self.index.add_with_ids(vectors, live)

    def search(self, query: np.ndarray, k: int, filters=None, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (id, inner product), best first, among `allowed` ids (the filters are applied by the
        caller, which computed `allowed` from them)."""
        faiss = _faiss()
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            if self.tombstones:
                allowed = allowed[~np.isin(allowed, np.fromiter(self.tombstones, dtype=np.int64))]
            allowed = allowed[np.isin(allowed, self.all_ids())] if len(allowed) <= EXACT_FILTER_LIMIT else allowed
            if len(allowed) == 0:
                return []
            if len(allowed) <= EXACT_FILTER_LIMIT:
                scores = self.index.reconstruct_batch(allowed) @ query[0]
                top = np.argsort(-scores)[:k]
                return [(int(allowed[i]), float(scores[i])) for i in top]
            # A bitmap over the id range: built in ~1 ms for 500k ids, where IDSelectorBatch hashes
            # each one (30 ms), and looked up without hashing during the graph walk.
            bitmap = np.zeros(int(allowed.max()) + 1, dtype=bool)
            bitmap[allowed] = True
            bitmap = np.packbits(bitmap, bitorder="little")
            selector = faiss.IDSelectorBitmap(bitmap)
        elif self.tombstones:
            # Both selectors stay referenced by locals: SWIG does not keep the inner one alive.
            dead = faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64))
            selector = faiss.IDSelectorNot(dead)
        else:
            selector = None
        if self.kind == HNSW:
            params = faiss.SearchParametersHNSW(efSearch=max(self.settings.hnsw_ef_search, k))
            if selector is not None:
                params.sel = selector
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, ids = self.index.search(query, min(k, max(1, self.index.ntotal)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def search_text(self, query: str, k: int, filters=None) -> list[tuple[int, float]]:
        raise NotImplementedError("FAISS has no text search; the index uses its local BM25")

    def persisted(self, directory: Path) -> bool:
        return (Path(directory) / FILE).exists()

    def save(self, directory: Path) -> None:
        self.write(Path(directory) / FILE)

    def close(self) -> None:
        """Nothing to release: the index lives in memory."""

    def write(self, path: Path) -> None:
        """Write to a temporary file and rename it into place, so a crash never leaves half a file."""
        temporary = path.with_name(path.name + ".tmp")
        _faiss().write_index(self.index, str(temporary))
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
