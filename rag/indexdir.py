"""The index directory's own files: `manifest.json` (what the index was built with, its counts) and
`.lock` (held by the one process allowed to write).

An index only makes sense with the embedding model that embedded it and the vector store that holds
its vectors; opening it with other settings is refused here, naming the setting to change.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from rag.config import Settings
from rag.errors import NewsIndexError

FORMAT_VERSION = 1
MANIFEST, LOCK = "manifest.json", ".lock"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def writer_lock(directory: Path) -> IO:
    """Take the writer lock (held while the returned handle is open), failing fast when another
    process holds it."""
    handle = open(directory / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise NewsIndexError(f"{directory}/ is being written by another process (lock {LOCK})") from None
    return handle


def read_manifest(directory: Path) -> dict | None:
    """The manifest, or None for an index not yet written."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NewsIndexError(f"{path}: unreadable manifest ({exc})") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise NewsIndexError(f"{path}: index format {manifest.get('format')!r}, this version reads {FORMAT_VERSION}")
    return manifest


def check_compatible(manifest: dict, settings: Settings, directory: Path) -> None:
    """The configured embedding model and vector store must be the ones the index was built with."""
    built_with, configured = manifest["embedding_model"], settings.embedding.model
    if built_with != configured:
        raise NewsIndexError(
            f"{directory}/ was built with embedding model {built_with!r} "
            f"(dimension {manifest['dimension']}), but the configured model is {configured!r}. "
            "Use that model (RAG_EMBEDDING_MODEL) or a new --index directory."
        )
    recorded = manifest.get("store", {"backend": "faiss"})
    store = recorded.get("backend", "faiss")
    if store != settings.store.backend:
        where = "".join(f" --set store.{store}.{key}={value}" for key, value in recorded.items()
                        if key not in ("backend", "file"))
        raise NewsIndexError(
            f"{directory}/ keeps its vectors in {store}, but store.backend is "
            f"{settings.store.backend!r}: pass --store {store}{where} (or RAG_STORE_BACKEND)"
        )


def new_manifest(index_id: str, settings: Settings, dimension: int, max_seq_length: int, chunking: dict,
                 store: dict, runtime: dict) -> dict:
    """The manifest of a new index, before its first write. `runtime` (how the vectors were computed:
    torch, onnx or openvino, quantisation, precision) is a record, not a condition: every runtime of the
    same model and dimension is declared compatible, their measured drift is mean cosine >= 0.992
    (bench/results/embedding_backends*.json)."""
    return {
        "format": FORMAT_VERSION,
        "index_id": index_id,
        "embedding_model": settings.embedding.model,
        "embedding_runtime": runtime,
        "dimension": dimension,
        "embedding_max_seq_length": max_seq_length,
        "chunking": {**chunking, "tokenizer": "tiktoken cl100k_base"},
        "store": store,
        "created_at": now(),
    }


def write_manifest(directory: Path, manifest: dict, counts: dict, vector_index: str) -> None:
    """Update the counts and write the manifest atomically (a reader never sees half a file)."""
    manifest.update(counts={"documents": counts["documents"], "chunks": counts["chunks"], "files": counts["files"]},
                    vector_index=vector_index, updated_at=now())
    path = directory / MANIFEST
    temporary = path.with_name(MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
