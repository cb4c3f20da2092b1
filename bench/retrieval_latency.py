"""Retrieval latency: the whole hybrid search at ~50k real chunks, and vector search at 1M vectors.

    python bench/retrieval_latency.py [--questions 400] [--million 1000000] [--skip-million]

At ~50k chunks (the RealTime QA articles retrieved for the first 400 questions, embedded once and
cached in bench/.cache): 200 single queries through Retriever.run, query embedding included, with
the index type the configuration gives at that size, and the recall@10 of that index against exact
search; the same queries asked as of their question dates (a date bound on the search), with the
bound applied after the search (the default for a bound that keeps most documents) and before it. At 1M: synthetic clustered unit vectors (no text), FaissStore search only, recall@10 of
HNSW against exact (Flat) search.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import RESULTS, record, rtqa_index

from rag.config import StoreSettings
from rag.evaluate.datasets import realtimeqa_day
from rag.index import NewsIndex
from rag import retrieve
from rag.retrieve import Retriever
from rag.store import FaissStore

QUERIES = 200


def percentiles(samples_ms: list[float]) -> dict:
    """p50/p95/max in milliseconds."""
    values = np.asarray(samples_ms)
    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2)}


def real_corpus(n_questions: int, query_backend: str | None = None) -> dict:
    settings, questions, build = rtqa_index(n_questions)
    settings.store.ann_threshold = 20000  # the default: HNSW at this size
    if query_backend:  # runtimes of one model are declared compatible: query a cached index with another
        settings.embedding.backend = query_backend
    index = NewsIndex(settings)
    retriever = Retriever(index)
    queries = [q["question_sentence"] for q in questions][:QUERIES]
    days = [realtimeqa_day(q) for q in questions][:QUERIES]
    retriever.run(queries[0])  # load the model and caches outside the timing
    retriever.run(queries[0], as_of=days[0])  # and dateparser's
    hybrid, dense_only, as_of, pre_filtered = [], [], [], []
    for query in queries:
        started = time.perf_counter()
        retriever.run(query, k=10)
        hybrid.append((time.perf_counter() - started) * 1000)
    # Asked as of each question's date: most of the corpus is older, so the bound is applied after an
    # unfiltered search (rag.retrieve._post_filtered); and the same with every matching id listed first.
    for samples, share in ((as_of, retrieve.POST_FILTER_SHARE), (pre_filtered, 2.0)):
        default, retrieve.POST_FILTER_SHARE = retrieve.POST_FILTER_SHARE, share
        for query, day in zip(queries, days):
            started = time.perf_counter()
            retriever.run(query, k=10, as_of=day)
            samples.append((time.perf_counter() - started) * 1000)
        retrieve.POST_FILTER_SHARE = default
    # Recall of the vector index against exact search over the same vectors.
    ids = index.metadata.chunk_ids()
    vectors = index.metadata.vectors(ids, index.dimension)
    recalls = []
    for query in queries:
        vector = index.embedder.encode_query(query)
        started = time.perf_counter()
        found = {i for i, _ in index.vectors.search(vector, 10)}
        dense_only.append((time.perf_counter() - started) * 1000)
        exact = set(ids[np.argsort(-(vectors @ vector))[:10]].tolist())
        recalls.append(len(found & exact) / 10)
    return {
        "chunks": int(len(ids)),
        "articles": build["articles"],
        "vector_index": index.vectors.kind,
        "query_embedding": index.embedder.runtime,
        "hybrid_search_incl_query_embedding": percentiles(hybrid),
        "hybrid_search_as_of_question_date": percentiles(as_of),
        "hybrid_search_as_of_question_date_ids_listed_first": percentiles(pre_filtered),
        "vector_search_only": percentiles(dense_only),
        "recall_at_10_vs_exact": round(float(np.mean(recalls)), 4),
        "target_p95_ms": 50,
    }


def clustered_vectors(n: int, dimension: int = 384, clusters: int = 2000, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: closer to real embeddings than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dimension)).astype(np.float32)
    out = np.empty((n, dimension), dtype=np.float32)
    for start in range(0, n, 100000):
        stop = min(n, start + 100000)
        block = centres[rng.integers(0, clusters, stop - start)] + 0.6 * rng.standard_normal((stop - start, dimension)).astype(np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def million(n: int) -> dict:
    import faiss

    vectors = clustered_vectors(n + QUERIES)
    data, queries = vectors[:n], vectors[n:]
    ids = np.arange(n, dtype=np.int64)
    settings = StoreSettings(ann_threshold=0)
    store = FaissStore(384, settings)
    started = time.perf_counter()
    store.add(ids, data)
    build_seconds = time.perf_counter() - started
    exact = faiss.IndexFlatIP(384)
    exact.add(data)
    _, truth = exact.search(queries, 10)
    samples, recalls = [], []
    for query, true_ids in zip(queries, truth):
        started = time.perf_counter()
        found = store.search(query, 10)
        samples.append((time.perf_counter() - started) * 1000)
        recalls.append(len({i for i, _ in found} & set(true_ids.tolist())) / 10)
    flat_samples = []
    for query in queries[:50]:
        started = time.perf_counter()
        exact.search(query.reshape(1, -1), 10)
        flat_samples.append((time.perf_counter() - started) * 1000)
    return {
        "vectors": n,
        "vector_index": store.kind,
        "hnsw": {"m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction, "ef_search": settings.hnsw_ef_search},
        "build_seconds": round(build_seconds, 1),
        "vector_search": percentiles(samples),
        "recall_at_10_vs_exact": round(float(np.mean(recalls)), 4),
        "exact_flat_search_50_queries": percentiles(flat_samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--skip-real", action="store_true", help="keep the real-corpus figures already recorded")
    parser.add_argument("--query-backend", help="embed the queries with this runtime (default: the one that built "
                                                "the cached index, RAG_EMBEDDING_BACKEND)")
    args = parser.parse_args()
    previous = RESULTS / "retrieval_latency.json"
    if args.skip_real and previous.exists():
        figures = {"real_corpus": json.loads(previous.read_text())["real_corpus"]}
    else:
        figures = {"real_corpus": real_corpus(args.questions, args.query_backend)}
        print(figures)
    if not args.skip_million:
        figures["synthetic"] = million(args.million)
    elif previous.exists() and "synthetic" in json.loads(previous.read_text()):
        figures["synthetic"] = json.loads(previous.read_text())["synthetic"]  # kept as recorded
    record("retrieval_latency", figures)


if __name__ == "__main__":
    main()
