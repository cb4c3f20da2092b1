"""Index types for large corpora, measured at 1M vectors here: IVF-PQ with refinement (FAISS), and
the Milvus store (milvus-lite, in-process) at a smaller size. Feeds docs/SCALING.md.

    python bench/vector_scaling.py [--vectors 1000000] [--milvus-vectors 100000] [--lists 4096]

Vectors are the synthetic clustered 384-d unit vectors of retrieval_latency.py (HNSW and Flat at 1M
are measured there). For each index: build time (train + add), bytes per vector (the serialized
index / n), single-query latency, recall@10 against exact search. Last, the write path alone
(what the `--ray` driver does with chunks and vectors computed by workers), on FAISS and Milvus.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from common import record
from retrieval_latency import clustered_vectors, percentiles

from rag.config import StoreSettings

QUERIES = 200


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)])), 4)


def timed_queries(search, queries: np.ndarray) -> tuple[dict, list[list[int]]]:
    samples, found = [], []
    for query in queries:
        started = time.perf_counter()
        found.append(search(query))
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples), found


def ivf_pq(data: np.ndarray, queries: np.ndarray, truth: np.ndarray, lists: int) -> dict:
    """IVF lists + 48-byte PQ codes, the top k x k_factor re-ranked with 8-bit scalar-quantized vectors;
    searched at several operating points (lists probed, re-ranking depth)."""
    import faiss

    index = faiss.index_factory(data.shape[1], f"IVF{lists},PQ48,Refine(SQ8)", faiss.METRIC_INNER_PRODUCT)
    sample = data[np.random.default_rng(1).choice(len(data), min(len(data), 64 * lists), replace=False)]
    started = time.perf_counter()
    index.train(sample)
    trained = time.perf_counter() - started
    started = time.perf_counter()
    index.add(data)
    added = time.perf_counter() - started
    operating_points = []
    for nprobe, k_factor in ((32, 4), (128, 8), (512, 16)):
        faiss.extract_index_ivf(index).nprobe = nprobe
        index.k_factor = k_factor
        latency, found = timed_queries(lambda q: index.search(q.reshape(1, -1), 10)[1][0].tolist(), queries)
        operating_points.append({"nprobe": nprobe, "k_factor": k_factor, "search": latency,
                                 "recall_at_10_vs_exact": recall(found, truth)})
    size = len(faiss.serialize_index(index))
    return {"factory": f"IVF{lists},PQ48,Refine(SQ8)", "train_seconds": round(trained, 1), "add_seconds": round(added, 1),
            "bytes_per_vector": round(size / len(data), 1), "operating_points": operating_points}


def milvus_lite(data: np.ndarray, queries: np.ndarray, truth: np.ndarray, index_type: str) -> dict:
    """The MilvusStore itself on milvus-lite: upsert rate, search latency, recall."""
    from rag.store.base import StoreRecord
    from rag.store.milvus import MilvusStore

    with tempfile.TemporaryDirectory() as folder:
        settings = StoreSettings(backend="milvus")
        settings.milvus.index = index_type
        store = MilvusStore(f"{folder}/bench.db", data.shape[1], settings, owner="bench")
        records = [StoreRecord("2024-01-01", "wire", "")] * len(data)
        started = time.perf_counter()
        store.add(np.arange(len(data), dtype=np.int64), data, records)
        store.save()
        insert_seconds = time.perf_counter() - started
        store.search(queries[0], 10)  # the first search builds or loads the index
        latency, found = timed_queries(lambda q: [i for i, _ in store.search(q, 10)], queries)
        store.close()
    return {"index": index_type, "vectors": len(data), "insert_seconds": round(insert_seconds, 1),
            "insert_per_second": round(len(data) / insert_seconds, 1), "search": latency,
            "recall_at_10_vs_exact": recall(found, truth)}


def write_path(backend: str, documents: int = 1000) -> dict:
    """The single writer of `--ray`: chunks and vectors computed elsewhere, stored through
    NewsIndex.add_documents (SQLite + the vector store + BM25 at the end), timed alone."""
    from rag.config import Settings
    from rag.index import NewsIndex
    from rag.types import Document

    rng = np.random.default_rng(5)
    words = "council budget river bridge school harbour election court market energy museum railway storm".split()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.load(env={})
        settings.index_dir, settings.store.backend = f"{folder}/index", backend
        with NewsIndex(settings, writable=True, create=True) as index:
            index.create_empty()
            batches, chunks = [], 0
            for start in range(0, documents, 128):
                batch, prepared = [], {}
                for number in range(start, min(documents, start + 128)):
                    text = "\n\n".join(" ".join(rng.choice(words, 120)) + f" item {number}." for _ in range(20))
                    document = Document(f"doc-{number}", text, title=f"Story {number}", date="2024-01-01", source="Wire")
                    pieces = index.chunker.run(document)
                    vectors = rng.standard_normal((len(pieces), index.dimension)).astype(np.float32)
                    prepared[document.doc_id] = (pieces, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
                    batch.append(document)
                    chunks += len(pieces)
                batches.append((batch, prepared))
            started = time.perf_counter()
            for batch, prepared in batches:
                index.add_documents(batch, prepared)
            index.checkpoint()
            seconds = time.perf_counter() - started
    return {"backend": backend, "documents": documents, "chunks": chunks, "seconds": round(seconds, 1),
            "chunks_per_second": round(chunks / seconds, 1)}


def main() -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--milvus-vectors", type=int, default=100_000)
    parser.add_argument("--lists", type=int, default=4096, help="IVF lists (~sqrt(n) to 4 sqrt(n))")
    args = parser.parse_args()
    vectors = clustered_vectors(args.vectors + QUERIES, seed=3)
    data, queries = vectors[:args.vectors], vectors[args.vectors:]
    exact = faiss.IndexFlatIP(data.shape[1])
    exact.add(data)
    _, truth = exact.search(queries, 10)
    figures = {"vectors": args.vectors, "dimension": int(data.shape[1]), "queries": QUERIES,
               "faiss_threads": faiss.omp_get_max_threads()}
    figures["ivf_pq_refine"] = ivf_pq(data, queries, truth, lists=args.lists)
    print(figures["ivf_pq_refine"], flush=True)
    small = data[:args.milvus_vectors]
    small_exact = faiss.IndexFlatIP(data.shape[1])
    small_exact.add(small)
    _, small_truth = small_exact.search(queries, 10)
    figures["milvus_lite"] = [milvus_lite(small, queries, small_truth, kind) for kind in ("FLAT", "HNSW")]
    print(figures["milvus_lite"], flush=True)
    figures["driver_write_path"] = [write_path(backend) for backend in ("faiss", "milvus")]
    print(figures["driver_write_path"], flush=True)
    record("vector_scaling", figures)


if __name__ == "__main__":
    main()
