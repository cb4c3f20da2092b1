"""Keeping a vector store in step with the metadata store (SQLite, the truth) after a process died
between committing a batch and writing it to the store.

A store of the index's own (FAISS) is compared with SQLite's chunk ids whenever it is opened. A
shared, live store (Milvus) is repaired only when SQLite says a batch may be missing (a flag set in
the batch's transaction, cleared once the store has it) or the counts differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Callable

import numpy as np

from rag.errors import NewsIndexError
from rag.store.base import StoreRecord, VectorStore
from rag.store.metadata import MetadataStore

REPAIR_BATCH = 5000  # chunks re-added per step when a vector store is repaired from SQLite
STORE_PENDING = "store_write_pending"  # metadata state: a batch is in SQLite but maybe not in the store yet

RecordsFor = Callable[[np.ndarray, MetadataStore], "list[StoreRecord] | None"]


def reconcile(store: VectorStore, metadata: MetadataStore, dimension: int, records_for: RecordsFor) -> bool:
    """Make the store hold exactly the chunk ids `metadata` holds; whether anything changed."""
    truth, cached = metadata.chunk_ids(), store.all_ids()
    missing = np.setdiff1d(truth, cached, assume_unique=True)
    extra = np.setdiff1d(cached, truth, assume_unique=True)
    if len(extra):
        store.remove(extra)
    for start in range(0, len(missing), REPAIR_BATCH):
        ids = missing[start:start + REPAIR_BATCH]
        store.add(ids, metadata.vectors(ids, dimension), records_for(ids, metadata))
    return bool(len(missing) or len(extra))


def repair_shared(store: VectorStore, database: Path, dimension: int, records_for: RecordsFor,
                  lock: Callable[[], IO | None]) -> None:
    """Bring a shared, live store in step with SQLite after a writer died mid-batch.

    A clear flag and equal counts mean nothing to do (no scan of the ids). Otherwise the repair runs
    under the writer lock (`lock()` takes it, or returns None when this process already holds it),
    with a fresh connection that sees every commit: a reader's view may be pinned to an older
    moment, and "repairing" from it would delete a live writer's new vectors. A reader skips the
    repair while a writer holds the lock (the writer repairs when it opens).
    """
    def out_of_step(metadata: MetadataStore) -> bool:
        return metadata.get_state(STORE_PENDING) == "1" or store.count() != metadata.counts()["chunks"]

    fresh = MetadataStore(database)
    try:
        if not out_of_step(fresh):
            return
        try:
            handle = lock()
        except (NewsIndexError, OSError):  # a writer holds the lock (and repairs), or the folder is read-only to us
            return
        try:
            if out_of_step(fresh):
                reconcile(store, fresh, dimension, records_for)
                fresh.set_state(STORE_PENDING, "0")
        finally:
            if handle is not None:
                handle.close()
    finally:
        fresh.close()


def flag_write(store: VectorStore, metadata: MetadataStore, pending: bool) -> None:
    """Mark (in the batch's transaction) or clear (once the store has it) a pending write to a shared
    store; a store of the index's own needs no flag."""
    if store.shared:
        metadata.set_state(STORE_PENDING, "1" if pending else "0")
