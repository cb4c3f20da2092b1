"""Embedding backends against torch fp32, in one run: drift, neighbours, speed, and the CPU's ceiling.

    python bench/embedding_backends.py [--chunks 2000] [--queries 400]

For each of torch fp32; openvino (bf16 where the CPU has it, and f32 as on a CPU without bf16), each
with its weights as they are and compressed to int8 by NNCF; onnx fp32 and onnx int8, on the same
RealTime QA chunks (chunked as the index chunks them) and questions:
- drift: cosine of each chunk vector to torch's (mean, min);
- neighbours: overlap of each question's top-10 chunks with torch's (mean over the questions);
- speed: chunks/s encoding every chunk (batches of embedding.batch_size), and one query's encode
  time (p50, p95), each backend measured in turn twice and averaged (this VM's speed drifts);
- the ceiling: measured float32 matmul GFLOP/s of this CPU and the model's FLOPs per token, so
  tokens/s achieved can be read against tokens/s possible.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from common import first_articles, load_questions, record

from rag.chunking import Chunker
from rag.config import Settings
from rag.embedding import Embedder
from rag.ingest.base import document_from_record
from rag.ingest import FieldMap

# (backend, quantize, precision); openvino's "auto" is bf16 where the CPU computes it natively.
BACKENDS = [("torch", "none", "auto"), ("openvino", "none", "auto"), ("openvino", "int8", "auto"),
            ("openvino", "none", "f32"), ("openvino", "int8", "f32"), ("onnx", "none", "auto"), ("onnx", "int8", "auto")]
TORCH = ("torch", "none", "auto")


def name(key: tuple[str, str, str]) -> str:
    return "/".join(key if key[2] != "auto" else key[:2])


def chunk_texts(n: int, embedder: Embedder) -> list[str]:
    chunker = Chunker(spans=embedder.spans)
    texts: list[str] = []
    for row in first_articles(n):  # far more articles than needed; stop at n chunks
        document = document_from_record(row, FieldMap(), origin="bench")
        texts += [chunker.embedding_text(c.title, c.text) for c in chunker.run(document)]
        if len(texts) >= n:
            return texts[:n]
    return texts


def matmul_gflops(threads: int) -> float:
    """float32 GEMM throughput (numpy's BLAS), the best of a few runs."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    a, b = np.random.rand(1024, 1024).astype(np.float32), np.random.rand(1024, 1024).astype(np.float32)
    a @ b
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * 1024**3 / best / 1e9


def model_flops_per_token(settings: Settings, embedder: Embedder, sequence: int) -> float:
    """2 x parameters of the transformer layers per token, plus attention's 4 x layers x hidden x sequence."""
    import json
    from pathlib import Path

    from rag.embedding import resolve_model_path

    config = json.loads((Path(resolve_model_path(settings.embedding.model)) / "config.json").read_text())
    hidden, layers, inner = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    per_layer = 4 * hidden * hidden + 2 * hidden * inner  # q, k, v, out projections and the two FFN matrices
    return 2 * layers * per_layer + 4 * layers * hidden * sequence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=400)
    args = parser.parse_args()

    settings = Settings.load(env={})
    embedders = {}
    for key in BACKENDS:
        config = settings.copy().embedding
        config.backend, config.quantize, config.precision = key
        embedders[key] = Embedder(config)
        embedders[key].encode(["warm up"])
    reference = embedders[TORCH]
    texts = chunk_texts(args.chunks, reference)
    questions = [q["question_sentence"] for q in load_questions(args.queries)]
    tokens = sum(len(reference.model.tokenizer(t, truncation=True, max_length=reference.max_tokens)["input_ids"])
                 for t in texts)

    vectors, query_vectors, seconds, query_ms = {}, {}, {k: [] for k in embedders}, {k: [] for k in embedders}
    for _ in range(2):  # interleaved rounds: a drift of the VM's speed hits every backend alike
        for key, embedder in embedders.items():
            started = time.perf_counter()
            vectors[key] = embedder.encode(texts)
            seconds[key].append(time.perf_counter() - started)
            timings = []
            for question in questions[:100]:
                started = time.perf_counter()
                embedder.encode_query(question)
                timings.append((time.perf_counter() - started) * 1000)
            query_ms[key] += timings
            query_vectors[key] = embedder.encode(questions)

    truth_top = np.argsort(-(query_vectors[TORCH] @ vectors[TORCH].T), axis=1)[:, :10]
    gflops = matmul_gflops(settings.embedding.threads or 0)
    flops = model_flops_per_token(settings, reference, int(tokens / len(texts)))
    results = {"chunks": len(texts), "queries": len(questions), "tokens": tokens,
               "matmul_gflops": round(gflops, 1), "model_flops_per_token": int(flops),
               "ceiling_tokens_per_second": round(gflops * 1e9 / flops), "backends": {}}
    torch_speed = len(texts) / statistics.mean(seconds[TORCH])
    for key, embedder in embedders.items():
        cosines = np.sum(vectors[key] * vectors[TORCH], axis=1)
        top = np.argsort(-(query_vectors[key] @ vectors[key].T), axis=1)[:, :10]
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, truth_top)])
        speed = len(texts) / statistics.mean(seconds[key])
        results["backends"][name(key)] = {
            "runtime": embedder.runtime,
            "mean_cosine": round(float(cosines.mean()), 5), "min_cosine": round(float(cosines.min()), 5),
            "top10_overlap": round(float(overlap), 4), "chunks_per_second": round(speed, 1),
            "speedup": round(speed / torch_speed, 2), "tokens_per_second": round(tokens / statistics.mean(seconds[key])),
            "query_ms_p50": round(statistics.median(query_ms[key]), 2),
            "query_ms_p95": round(float(np.percentile(query_ms[key], 95)), 2),
        }
        print(f"{name(key):17s} cos {cosines.mean():.5f} (min {cosines.min():.4f})  top-10 {overlap:.3f}  "
              f"{speed:6.1f} chunks/s ({speed / torch_speed:.2f}x)  query p50 {statistics.median(query_ms[key]):.2f} ms")
    print(f"matmul {gflops:.0f} GFLOP/s x {flops / 1e6:.1f} MFLOP/token -> ceiling {gflops * 1e9 / flops:,.0f} tokens/s")
    print(f"results: {record('embedding_backends', results)}")


if __name__ == "__main__":
    main()
