"""Milvus vector store: chunk vectors, their date and source, and BM25 text in one Milvus collection.

The same code runs against milvus-lite (a local folder named `*.db`, in-process, one process at a
time) and a Milvus Standalone or Distributed server (`http://host:19530`). Besides the vector, each
row keeps what search needs without the metadata store: the article date and lower-cased source, so
date-range and source filters run inside Milvus, and the chunk's lexical text for Milvus' own BM25.
That text is stored already analysed by our tokenizer (stemmed, stop words removed, see bm25.py) and
searched with the same analysis, so the ranking matches the local BM25 on every Milvus version
(milvus-lite's analyzer has no stemmer) and ids, not text, remain the contract with SQLite.

Milvus persists every write itself: `save` only flushes. Reads are live (no snapshot); the caller
joins the ids with the metadata store, which drops any id a concurrent writer has not committed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import numpy as np

from rag.config import StoreSettings
from rag.errors import ErrorKind, RagError
from rag.store.base import StoreRecord
from rag.store.bm25 import tokenize

LITE_FOLDER = "milvus.db"  # the default milvus-lite folder, in the index directory
OWNER_PROPERTY = "newsrag.index_id"  # collection property naming the index that owns it
_LITE_USERS: dict[str, int] = {}  # open MilvusStores per milvus-lite folder in this process

MAX_TEXT_BYTES = 60000  # under Milvus' 65,535-byte VARCHAR limit
BATCH = 1000  # rows per insert/delete request (a gRPC message stays well under its size limit)


class MilvusStoreError(RagError):
    """The Milvus store is unreachable, missing its package, or holds another index's data."""

    kind = ErrorKind.UNAVAILABLE


def require_pymilvus() -> None:
    """Raise MilvusStoreError naming the extra to install when pymilvus is missing."""
    if importlib.util.find_spec("pymilvus") is None:
        raise MilvusStoreError('store.backend = milvus needs pymilvus: pip install -e ".[milvus]"')


def milvus_literal(value: str) -> str:
    """A Milvus expression string literal (no parameter binding in milvus-lite)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expression(filters) -> str:
    """Date range (inclusive, ISO dates compare as strings) and source as a Milvus boolean expression."""
    if filters is None:
        return ""
    dated = []
    if filters.since:
        dated.append(f"date >= {milvus_literal(filters.since)}")
    if filters.until:
        # Undated chunks are stored as "" which sorts first: exclude them, as SQL's NULL would be.
        dated.append(f'date != "" and date <= {milvus_literal(filters.until)}')
    clauses = []
    if dated:
        range_ = " and ".join(dated)
        clauses.append(f'(date == "" or ({range_}))' if getattr(filters, "undated", False) else range_)
    if filters.source:
        clauses.append(f"source == {milvus_literal(filters.source.lower())}")
    return " and ".join(clauses)


class MilvusStore:
    """Vectors and BM25 text in a Milvus collection; see the module docstring."""

    keeps_records = True  # date, source and text beside each vector: search() applies SearchFilters itself
    text_search = True  # Milvus BM25
    shared = True  # a live service: the index flags each batch in SQLite until Milvus has it

    @classmethod
    def open(cls, directory: Path, dimension: int, settings: StoreSettings, owner: str = "") -> "MilvusStore":
        return cls(cls.uri_for(directory, settings), dimension, settings, owner)

    @classmethod
    def describe(cls, directory: Path, settings: StoreSettings) -> dict:
        return {"backend": "milvus", "uri": cls.uri_for(directory, settings), "collection": settings.milvus.collection}

    @staticmethod
    def uri_for(directory: Path, settings: StoreSettings) -> str:
        """The configured server URI or milvus-lite folder, else a milvus-lite folder in the index directory."""
        return settings.milvus.uri or str(Path(directory) / LITE_FOLDER)

    def __init__(self, uri: str, dimension: int, settings: StoreSettings | None = None, owner: str = ""):
        """Open (creating when missing) the configured collection at `uri` for the index `owner`
        (its id, kept as a collection property so two indexes never share one collection)."""
        self.settings = settings or StoreSettings()
        self.uri, self.collection, self.dimension, self.owner = uri, self.settings.milvus.collection, dimension, owner
        require_pymilvus()
        from pymilvus import MilvusClient

        # pymilvus (and milvus-lite's in-process gRPC server) log failed RPCs and fallbacks with
        # tracebacks; the errors that matter reach the user once, as a MilvusStoreError.
        for name in ("pymilvus", "grpc._server", "milvus_lite"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        token = os.environ.get(self.settings.milvus.token_env, "")
        self.lite_path = None if "://" in uri else os.path.abspath(uri)
        if self.lite_path:
            Path(self.lite_path).parent.mkdir(parents=True, exist_ok=True)
        with self._errors("open"):
            self.client = MilvusClient(uri=uri, token=token)
        if self.lite_path:  # counted once the folder's server runs, so close() can stop it
            _LITE_USERS[self.lite_path] = _LITE_USERS.get(self.lite_path, 0) + 1
        try:
            with self._errors("collection set-up"):
                if not self.client.has_collection(self.collection):
                    self._create()
                self.client.load_collection(self.collection)  # a reopened collection starts released
                self._check_collection()
        except MilvusStoreError:
            self.close()
            raise

    @contextmanager
    def _errors(self, action: str):
        """Turn pymilvus, gRPC and milvus-lite errors into one MilvusStoreError naming the collection."""
        try:
            yield
        except MilvusStoreError:
            raise
        except Exception as exc:  # MilvusException, grpc.RpcError, or OSError for milvus-lite's lock
            reason, kind = getattr(exc, "message", None) or str(exc) or type(exc).__name__, ErrorKind.UNAVAILABLE
            if action == "open" and self.lite_path:  # the folder's lock: held, like the index's own, by another process
                reason += (" (milvus-lite lets one process at a time open a folder: is a `rag serve` or `rag ui`"
                           " using it? Ingest through it, or use a Milvus server URI that processes share)")
                kind = ErrorKind.CONFLICT
            raise MilvusStoreError(f"Milvus {action} failed for collection {self.collection!r} at {self.uri}: {reason}",
                                   kind) from exc

    @property
    def kind(self) -> str:
        """`milvus:<index type>`, for stats and the manifest."""
        return f"milvus:{self.settings.milvus.index.lower()}"

    def _create(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field("date", DataType.VARCHAR, max_length=10)
        schema.add_field("source", DataType.VARCHAR, max_length=1024)
        # Pre-analysed words separated by spaces: the standard tokenizer only has to split them.
        schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        index_params = self.client.prepare_index_params()
        vector_params = {}
        if self.settings.milvus.index.upper() == "HNSW":
            vector_params = {"M": self.settings.hnsw_m, "efConstruction": self.settings.hnsw_ef_construction}
        index_params.add_index("vector", index_type=self.settings.milvus.index.upper(), metric_type="IP",
                               params=vector_params)
        # bm25s' defaults, so both lexical backends score alike.
        index_params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                               params={"bm25_k1": 1.5, "bm25_b": 0.75})
        # Strong consistency: a search right after a write sees it (the ingest-then-ask path).
        self.client.create_collection(self.collection, schema=schema, index_params=index_params,
                                      consistency_level="Strong")
        self.client.alter_collection_properties(self.collection, properties={OWNER_PROPERTY: self.owner})

    def _check_collection(self) -> None:
        """The collection must be this index's, with vectors of the model's dimension."""
        description = self.client.describe_collection(self.collection)
        owner = (description.get("properties") or {}).get(OWNER_PROPERTY, "")
        if owner != self.owner:
            raise MilvusStoreError(
                f"Milvus collection {self.collection!r} at {self.uri} belongs to another index "
                f"({owner or 'not created by newsrag'}); choose another store.milvus.collection", ErrorKind.CONFLICT)
        fields = {f["name"]: f for f in description["fields"]}
        stored = int(fields.get("vector", {}).get("params", {}).get("dim", self.dimension))
        if stored != self.dimension:
            raise MilvusStoreError(f"Milvus collection {self.collection!r} at {self.uri} holds vectors of dimension "
                                   f"{stored}, the embedding model gives {self.dimension}", ErrorKind.CONFLICT)

    # -- writing ------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray, records: list[StoreRecord] | None = None) -> None:
        """Upsert vectors with their date, source and lexical text."""
        if len(ids) == 0:
            return
        if records is None or len(records) != len(ids):
            raise ValueError("MilvusStore.add needs one StoreRecord per id")
        vectors = np.asarray(vectors, dtype=np.float32)
        texts = lexical_texts([r.text for r in records])
        for start in range(0, len(ids), BATCH):
            rows = [
                {"id": int(ids[i]), "vector": vectors[i].tolist(), "date": records[i].date or "",
                 "source": (records[i].source or "").lower()[:1024], "text": texts[i]}
                for i in range(start, min(start + BATCH, len(ids)))
            ]
            with self._errors("upsert"):
                self.client.upsert(self.collection, rows)

    def remove(self, ids: np.ndarray) -> None:
        """Delete these ids; unknown ids are ignored."""
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), BATCH):
            with self._errors("delete"):
                self.client.delete(self.collection, ids=ids[start:start + BATCH])

    def persisted(self, directory: Path) -> bool:
        return True  # every write is

    def save(self, directory: Path | None = None) -> None:
        """Milvus persists each write; flushing seals the growing segment on a server."""
        with self._errors("flush"):
            self.client.flush(self.collection)

    def close(self) -> None:
        """Close the client; the last store of a milvus-lite folder also stops its in-process server,
        which releases the folder's lock for other processes."""
        self.client.close()
        if self.lite_path and _LITE_USERS.get(self.lite_path):
            _LITE_USERS[self.lite_path] -= 1
            if not _LITE_USERS[self.lite_path]:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.lite_path)

    # -- reading ------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, filters=None, allowed=None) -> list[tuple[int, float]]:
        """Top-k (id, inner product) among the chunks matching `filters`, best first."""
        search_params = {"metric_type": "IP"}
        if self.settings.milvus.index.upper() == "HNSW":
            search_params["params"] = {"ef": max(self.settings.hnsw_ef_search, k)}
        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        with self._errors("search"):
            results = self.client.search(self.collection, [vector], limit=k, anns_field="vector",
                                         filter=filter_expression(filters), search_params=search_params)
        return [(int(hit["id"]), float(hit["distance"])) for hit in results[0]]

    def search_text(self, query: str, k: int, filters=None) -> list[tuple[int, float]]:
        """Top-k (id, BM25 score) by Milvus full-text search, best first."""
        analysed = lexical_texts([query])[0]
        if not analysed:
            return []
        with self._errors("text search"):
            results = self.client.search(self.collection, [analysed], limit=k, anns_field="sparse",
                                         filter=filter_expression(filters), search_params={"metric_type": "BM25"})
        # milvus-lite reports BM25 as a negated distance, a server as a positive score; order is best first.
        return [(int(hit["id"]), abs(float(hit["distance"]))) for hit in results[0] if hit["distance"]]

    def ids(self) -> np.ndarray:
        """Every stored id (one pass over the collection)."""
        found: list[int] = []
        with self._errors("query"):
            iterator = self.client.query_iterator(self.collection, batch_size=10000, filter="", output_fields=["id"])
            try:
                while batch := iterator.next():
                    found.extend(row["id"] for row in batch)
            finally:
                iterator.close()
        return np.sort(np.asarray(found, dtype=np.int64))

    all_ids = ids

    def count(self) -> int:
        """Number of stored vectors."""
        with self._errors("count"):
            rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])


def lexical_texts(texts: Iterable[str]) -> list[str]:
    """Each text as the BM25 words it stands for, space-separated and within Milvus' field size."""
    return [" ".join(words).encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", "ignore") for words in tokenize(list(texts))]
