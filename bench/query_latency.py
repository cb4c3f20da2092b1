"""One query's embedding time on OpenVINO, with and without padding a lone query to a 16-token shape bucket.

    python bench/query_latency.py [--queries 400] [--rounds 3]

OpenVINO re-prepares its kernels whenever an input's shape changes, and each question has its own
length. The encoder pads a lone text to a multiple of `shape_bucket` tokens so most queries share a
shape. Both settings are timed on the same loaded model, alternating which goes first each round, for
the runtime the CPU gets by default (bf16 where native) and for int8 weights on f32 (the default on a
CPU without bf16), over RealTime QA question sentences.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import load_questions, record

from rag.config import EmbeddingSettings
from rag.embedding import Embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    questions = [q["question_sentence"] for q in load_questions(args.queries)]
    figures = {"queries": len(questions), "rounds": args.rounds, "runtimes": {}}
    for precision, quantize in (("auto", "auto"), ("f32", "int8")):
        embedder = Embedder(EmbeddingSettings(backend="openvino", precision=precision, quantize=quantize))
        model = embedder.model
        if not hasattr(model, "shape_bucket"):
            raise SystemExit(f"openvino did not load here ({embedder.runtime}): nothing to measure")
        for question in questions[:30]:
            embedder.encode_query(question)
        timings = {1: [], 16: []}
        for number in range(args.rounds):
            for bucket in ((1, 16) if number % 2 == 0 else (16, 1)):
                model.shape_bucket = bucket
                for question in questions:
                    started = time.perf_counter()
                    embedder.encode_query(question)
                    timings[bucket].append((time.perf_counter() - started) * 1000)
        runtime = embedder.runtime
        figures["runtimes"]["/".join(runtime.values())] = {
            "runtime": runtime,
            **{f"bucket_{bucket}": {"p50_ms": round(float(np.percentile(ms, 50)), 2),
                                    "p95_ms": round(float(np.percentile(ms, 95)), 2)}
               for bucket, ms in timings.items()},
        }
    figures["target_p50_ms"] = 3
    record("query_latency", figures)


if __name__ == "__main__":
    main()
