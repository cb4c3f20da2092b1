"""Distributed ingestion on Ray Data: workers read, parse, chunk and embed; this process writes.

    files --(tasks: read + parse)--> document rows --(actors: chunk + embed, one model each)-->
        rows with chunks and vectors --(driver, in input order)--> the same per-file commit path as
        the single-process pipeline (IngestPipeline._ingest_items)

Order is preserved end to end, so documents reach the index in the order the single-process path
would store them: the same chunks get the same ids, and vectors agree within float tolerance. Only
the driver touches the index (SQLite ids, the writer lock, FAISS or Milvus), so the index's
guarantees (one transaction a batch, repair after a kill) are unchanged. Files whose bytes were
ingested before are skipped by the workers before any parsing; in a changed file, unchanged
documents are embedded by a worker and then recognised as unchanged by the driver (wasted work,
not wrong results).

Without an address a local Ray runtime starts with this machine's CPUs. With one (`auto`,
`ray://host:10001`), every node needs this package installed (the same virtual environment).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from itertools import groupby
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from rag.errors import ErrorKind, RagError

from rag.chunking import Chunker
from rag.config import Settings
from rag.cpus import usable_cpus
from rag.index import NewsIndex
from rag.ingest import FieldMap, iter_files, load_file, parse
from rag.ingest.pipeline import IngestPipeline, IngestReport, PreparedDocument
from rag.types import Chunk, Document, IngestIssue

BLOCK_BYTES = 1 << 20

# Row kinds flowing through the dataset. Rows are plain strings and bytes, so Arrow carries them.
FILE, UNCHANGED, FAILED, DOC, ISSUE = "file", "unchanged", "failed", "doc", "issue"


class DistributedError(RagError):
    """Ray is missing or the cluster cannot be reached."""

    kind = ErrorKind.UNAVAILABLE


def read_rows(item: dict, fields: FieldMap, recorded: dict[str, str], max_bytes: int | None = None,
              max_document_chars: int | None = None) -> list[dict]:
    """One file -> a header row (its hash, or why it failed, or that it is unchanged), then one row
    per document or record-level issue."""
    path, key = item["path"], item["key"]
    row = {"path": path, "key": key, "number": item["number"], "kind": FILE, "sha256": "", "payload": "", "line": -1}
    try:
        source = load_file(path, max_bytes)
    except ValueError as exc:
        return [{**row, "kind": FAILED, "payload": str(exc)}]
    if recorded.get(key) == source.sha256:
        return [{**row, "kind": UNCHANGED, "sha256": source.sha256}]
    rows = [{**row, "sha256": source.sha256}]
    for parsed in parse(source, fields, max_document_chars):
        if isinstance(parsed, IngestIssue):
            rows.append({**row, "kind": ISSUE, "payload": parsed.message,
                         "line": -1 if parsed.line is None else parsed.line})
        else:
            rows.append({**row, "kind": DOC, "payload": json.dumps(dataclasses.asdict(parsed))})
    return rows


class ChunkAndEmbed:
    """A Ray actor: the index's chunker and embedding model, loaded once, applied to row batches."""

    def __init__(self, settings: Settings, chunking: dict):
        from rag.embedding import Embedder

        embedding = dataclasses.replace(settings.embedding, threads=settings.distributed.cpus_per_worker)
        self.embedder = Embedder(embedding)
        self.chunker = Chunker(spans=self.embedder.spans, **chunking)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        """Add `chunks` (JSON) and `vectors` (float32 bytes) to each document row."""
        kinds = list(batch["kind"])
        chunks_of: dict[int, list[Chunk]] = {}
        for position, kind in enumerate(kinds):
            if kind == DOC:
                chunks_of[position] = self.chunker.run(Document(**json.loads(batch["payload"][position])))
        texts = [self.chunker.embedding_text(c.title, c.text) for chunks in chunks_of.values() for c in chunks]
        vectors = self.embedder.encode(texts, token_ids=[c.token_ids for chunks in chunks_of.values() for c in chunks])
        out = {name: list(values) for name, values in batch.items()}
        out["chunks"], out["vectors"] = [""] * len(kinds), [b""] * len(kinds)
        offset = 0
        for position, chunks in chunks_of.items():
            out["chunks"][position] = json.dumps([dataclasses.asdict(dataclasses.replace(c, token_ids=None)) for c in chunks])
            out["vectors"][position] = vectors[offset:offset + len(chunks)].tobytes()
            offset += len(chunks)
        return out


class RayIngestPipeline(IngestPipeline):
    """IngestPipeline whose reading, chunking and embedding run on Ray Data workers."""

    label = "ingest (ray)"

    def __init__(self, index: NewsIndex, fields: FieldMap | None = None, progress: bool | None = None,
                 address: str | None = None):
        super().__init__(index, fields, progress)
        self.address = address if address is not None else index.settings.distributed.ray_address

    def _ingest_all(self, paths: Iterable[str | Path], report: IngestReport, bar, started: float) -> None:
        """Every file through the Ray dataset; rows come back in input order, file by file."""
        # `number` tells apart consecutive files with the same path (a path named twice is read twice).
        files = [{"path": str(p), "key": str(p.resolve()), "number": n} for n, p in enumerate(iter_files(paths))]
        if not files:
            return
        ray = start_ray(self.address)
        settings = self.index.settings.distributed
        self.index.create_empty()  # the manifest fixes the chunking the workers must use
        chunker = self.index.chunker
        chunking = {"max_tokens": chunker.max_tokens, "min_tokens": chunker.min_tokens, "embed_title": chunker.embed_title}
        workers = settings.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // settings.cpus_per_worker)
        pool = ray.data.ActorPoolStrategy(size=workers)
        dataset = (
            ray.data.from_items(files, override_num_blocks=min(len(files), 1024))
            # Parsing is light next to embedding: it takes no CPU slot from the embedding workers.
            .flat_map(read_rows, fn_kwargs={"fields": self.fields, "recorded": self.index.metadata.file_hashes(),
                                            "max_bytes": self.index.settings.ingest.max_file_bytes,
                                            "max_document_chars": self.index.settings.ingest.max_document_chars},
                      num_cpus=0)
            .map_batches(ChunkAndEmbed, fn_constructor_kwargs={"settings": self.index.settings, "chunking": chunking},
                         batch_size=settings.batch_docs, compute=pool, num_cpus=settings.cpus_per_worker,
                         batch_format="numpy")
        )
        for _, rows in groupby(dataset.iter_rows(), key=lambda row: row["number"]):
            self._ingest_rows(rows, report, bar, started)

    def _ingest_rows(self, rows: Iterator[dict], report: IngestReport, bar, started: float) -> None:
        """One file's rows, header first, through the single-process path's per-file logic."""
        report.files += 1
        header = next(rows)
        if header["kind"] == FAILED:
            report.issues.append(IngestIssue(header["path"], header["payload"]))
        elif not self._unchanged(header["key"], header["sha256"], report, bar):  # the workers' skip, confirmed
            self._ingest_items(header["key"], header["sha256"], map(prepared_item, rows), report, bar, started)


def prepared_item(row: dict) -> IngestIssue | PreparedDocument:
    """A worker's row back as what IngestPipeline consumes."""
    if row["kind"] == ISSUE:
        return IngestIssue(row["path"], row["payload"], None if row["line"] < 0 else int(row["line"]))
    chunks = [Chunk(**c) for c in json.loads(row["chunks"])]
    vectors = np.frombuffer(row["vectors"], dtype=np.float32)
    return PreparedDocument(Document(**json.loads(row["payload"])), chunks, vectors)


def start_ray(address: str | None):
    """Join the cluster at `address`, or start a local runtime on this machine's CPUs."""
    try:
        import ray
    except ImportError as exc:
        raise DistributedError('--ray needs Ray Data: pip install -e ".[distributed]"') from exc
    if not ray.is_initialized():
        options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
        for attempt in (1, 2):  # a local runtime's first start can time out on a busy machine: once more
            try:
                if address:
                    ray.init(address=address, **options)
                else:
                    ray.init(num_cpus=usable_cpus(), **options)
                break
            except Exception as exc:  # ConnectionError, RuntimeError, ValueError from a bad address
                ray.shutdown()
                if address or attempt == 2:
                    raise DistributedError(f"cannot start or reach Ray at {address or 'a local runtime'}: {exc}") from exc
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # documents reach the index in input order
    context.enable_progress_bars = False  # the pipeline's own bar counts documents
    # Small blocks: one large file (a 19k-article .jsonl.gz) becomes many blocks spread over all
    # embedding workers instead of one block that one worker embeds alone.
    context.target_max_block_size = BLOCK_BYTES
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.data")
    return ray
