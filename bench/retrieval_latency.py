"""Retrieval latency: the whole hybrid search at ~50k and at 1M real chunks, and vector search at 1M vectors.

    python bench/retrieval_latency.py [--questions 400] [--million 1000000] [--skip-million]
                                      [--hybrid-million 1000000] [--skip-real]

At ~50k chunks (the RealTime QA articles retrieved for the first 400 questions, embedded once and
cached in bench/.cache): 200 single queries through Retriever.run, query embedding included, with
the index type the configuration gives at that size, and the recall@10 of that index against exact
search; the same queries asked as of their question dates (a date bound on the search), with the
bound applied after the search (the default for a bound that keeps most documents) and before it. At 1M: synthetic clustered unit vectors (no text), FaissStore search only, recall@10 of
HNSW against exact (Flat) search.

Hybrid at 1M (--hybrid-million N): an index of N chunks of real news text, built once into
bench/.cache/rtqa_hybrid_N through NewsIndex (SQLite, FAISS HNSW, BM25 over every chunk, as `rag ingest`
stores them). All 19,266 RealTime QA articles give about 415k chunks, so the articles are stored again
under new ids and URLs until N is reached (BM25 posting lists then grow with the corpus, as they would).
Embedding 1M chunks would take ~80 minutes on 2 cores, so only the chunks the cached RealTime QA
indexes (bench/.cache/rtqa_*_openvino, 156k chunks) already embedded keep their real vectors; every other chunk gets a real vector of a random
embedded chunk plus noise (cosine ~0.85 to it), and each later copy its original's vector plus smaller
noise (cosine ~0.96). The queries are real questions embedded by the real model, and the search path is
Retriever.run, query embedding included, as `rag ask` uses it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import time
from dataclasses import replace

import numpy as np
from common import ARTICLES, RESULTS, ROOT, load_questions, record, require, rtqa_index

from rag.config import Settings, StoreSettings
from rag.ingest.base import FieldMap, document_from_record
from rag.evaluate.datasets import realtimeqa_day
from rag.index import NewsIndex
from rag import retrieve
from rag.retrieve import Retriever
from rag.store import FaissStore
from rag.types import Chunk, Document

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
    index.metadata.pin()  # a read-only snapshot, as rag.service serves queries from
    index.warm()
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


def _real_vectors() -> tuple[dict[tuple[str, int, int], np.ndarray], np.ndarray]:
    """Vectors the cached RealTime QA indexes hold, keyed by (doc_id, start, end), and all of them as a pool."""
    from rag.store.metadata import MetadataStore

    keyed: dict[tuple[str, int, int], np.ndarray] = {}
    for folder in sorted((ROOT / "bench" / ".cache").glob("rtqa_*_openvino")):
        database = folder / "metadata.sqlite"
        if not database.is_file():
            continue
        store = MetadataStore(database)
        for doc_id, start, end, vector in store.db.execute("SELECT doc_id, start, end, vector FROM chunks"):
            keyed[(doc_id, start, end)] = np.frombuffer(vector, dtype=np.float32)
        store.close()
    if not keyed:
        sys.exit("run `python bench/retrieval_latency.py` once first: it embeds the ~50k-chunk index this reuses")
    return keyed, np.stack(list(keyed.values()))


def _noisy(base: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """`base` plus isotropic noise of norm ~sigma, renormalised (cosine to base ~1/sqrt(1+sigma^2))."""
    noisy = base + rng.standard_normal(base.shape).astype(np.float32) * (sigma / np.sqrt(base.shape[-1]))
    return noisy / np.linalg.norm(noisy, axis=-1, keepdims=True)


def million_chunk_index(target: int) -> tuple[Settings, dict]:
    """The N-chunk real-text index described in the module docstring; built once and cached."""
    settings = Settings.load(env={k: v for k, v in os.environ.items() if k.startswith("RAG_EMBEDDING_")})
    settings.index_dir = ROOT / "bench" / ".cache" / f"rtqa_hybrid_{target}"
    info_path = settings.index_dir / "bench_build.json"
    if info_path.exists():
        return settings, json.loads(info_path.read_text())
    shutil.rmtree(settings.index_dir, ignore_errors=True)
    keyed, pool = _real_vectors()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    with NewsIndex(settings, writable=True, create=True) as index:
        originals: list[tuple[Document, list[Chunk], np.ndarray]] = []
        stored, real, copy = 0, 0, 0
        batch: list[Document] = []
        prepared: dict[str, tuple[list[Chunk], np.ndarray]] = {}

        def flush() -> None:
            if batch:
                index.add_documents(batch, prepared)
                batch.clear()
                prepared.clear()

        def store(document: Document, chunks: list[Chunk], vectors: np.ndarray) -> None:
            nonlocal stored
            batch.append(document)
            prepared[document.doc_id] = (chunks, vectors)
            stored += len(chunks)
            if len(batch) >= 500:
                flush()
                print(f"{stored:,} chunks stored, {time.perf_counter() - started:.0f} s", flush=True)

        with gzip.open(require(ARTICLES), "rt", encoding="utf-8") as source:
            for line in source:
                if stored >= target:
                    break
                try:
                    document = document_from_record(json.loads(line), FieldMap(), str(ARTICLES))
                except ValueError:
                    continue
                chunks = index.chunker.run(document)
                if not chunks:
                    continue
                vectors = np.empty((len(chunks), index.dimension), np.float32)
                for row, chunk in enumerate(chunks):
                    vector = keyed.get((document.doc_id, chunk.start, chunk.end))
                    real += vector is not None
                    vectors[row] = vector if vector is not None else _noisy(pool[rng.integers(len(pool))], 0.62, rng)
                originals.append((document, chunks, vectors))
                store(document, chunks, vectors)
        while stored < target and originals:  # the corpus again, under new ids and URLs
            copy += 1
            for document, chunks, vectors in originals:
                if stored >= target:
                    break
                doc_id = f"{document.doc_id}~{copy}"
                twin = replace(document, doc_id=doc_id, url=f"{document.url}#copy{copy}")
                twin_chunks = [replace(c, doc_id=doc_id, chunk_id=f"{doc_id}#{c.ordinal}") for c in chunks]
                store(twin, twin_chunks, _noisy(vectors, 0.3, rng))
        flush()
        counts = index.counts()  # documents with the same text as another are stored once
        print("building BM25 and saving FAISS...", flush=True)
    build = {"chunks": counts["chunks"], "documents": counts["documents"], "articles": len(originals),
             "copies_of_the_corpus": copy,
             "chunks_with_their_real_vector": real, "build_seconds": round(time.perf_counter() - started, 1)}
    info_path.write_text(json.dumps(build))
    return settings, build


def hybrid_million(target: int, n_questions: int) -> dict:
    """Retriever.run over the N-chunk real-text index: open time, hybrid p50/p95, the parts, recall."""
    import faiss

    settings, build = million_chunk_index(target)
    questions = load_questions(n_questions)
    queries = [q["question_sentence"] for q in questions][:QUERIES]
    days = [realtimeqa_day(q) for q in questions][:QUERIES]
    started = time.perf_counter()
    index = NewsIndex(settings)
    index.metadata.pin()  # a read-only snapshot, as rag.service serves queries from
    index.warm()
    open_seconds = time.perf_counter() - started
    retriever = Retriever(index)
    retriever.run(queries[0])
    retriever.run(queries[0], as_of=days[0])
    hybrid, as_of, dense_only, lexical_only, embedding = [], [], [], [], []
    for query in queries:
        started = time.perf_counter()
        retriever.run(query, k=10)
        hybrid.append((time.perf_counter() - started) * 1000)
    for query, day in zip(queries, days):
        started = time.perf_counter()
        retriever.run(query, k=10, as_of=day)
        as_of.append((time.perf_counter() - started) * 1000)
    query_vectors = []
    depth = settings.retrieval.candidates
    for query in queries:
        started = time.perf_counter()
        vector = index.embedder.encode_query(query)
        embedding.append((time.perf_counter() - started) * 1000)
        query_vectors.append(vector)
        started = time.perf_counter()
        index.vectors.search(vector, depth)
        dense_only.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        index.bm25.search(query, depth)
        lexical_only.append((time.perf_counter() - started) * 1000)
    # Recall@10 of HNSW against exact search over the same 1M vectors (read back from SQLite).
    ids = index.metadata.chunk_ids()
    exact = faiss.IndexFlatIP(index.dimension)
    for start in range(0, len(ids), 100000):
        exact.add(index.metadata.vectors(ids[start:start + 100000], index.dimension))
    _, truth = exact.search(np.stack(query_vectors), 10)
    recalls = [len({i for i, _ in index.vectors.search(v, 10)} & set(ids[t].tolist())) / 10
               for v, t in zip(query_vectors, truth)]
    figures = {
        **build,
        "vector_index": index.vectors.kind,
        "query_embedding": index.embedder.runtime,
        "open_and_load_seconds": round(open_seconds, 1),
        "hybrid_search_incl_query_embedding": percentiles(hybrid),
        "hybrid_search_as_of_question_date": percentiles(as_of),
        "query_embedding_only": percentiles(embedding),
        f"vector_search_only_top_{depth}": percentiles(dense_only),
        f"bm25_search_only_top_{depth}": percentiles(lexical_only),
        "recall_at_10_vs_exact": round(float(np.mean(recalls)), 4),
        "target_p95_ms": 30,
    }
    index.close()
    print(figures)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--skip-real", action="store_true", help="keep the real-corpus figures already recorded")
    parser.add_argument("--hybrid-million", type=int, default=0, metavar="N",
                        help="also measure the hybrid search over N chunks of real text (builds the index once, ~10 min at 1M)")
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
    if args.hybrid_million:
        figures["real_text_at_scale"] = hybrid_million(args.hybrid_million, args.questions)
    elif previous.exists() and "real_text_at_scale" in json.loads(previous.read_text()):
        figures["real_text_at_scale"] = json.loads(previous.read_text())["real_text_at_scale"]
    record("retrieval_latency", figures)


if __name__ == "__main__":
    main()
