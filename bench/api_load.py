"""Loopback load on the HTTP API: N concurrent clients for a fixed time against /v1/search and /v1/ask.

    python bench/api_load.py [--clients 8] [--seconds 60] [--index DIR]

Starts `rag serve` on 127.0.0.1 (extractive generator, so /v1/ask measures retrieval + verification
without an LLM) over the RealTime QA index that retrieval_latency.py builds (cached in bench/.cache;
seeds/ when the shared data is absent), then runs each endpoint for --seconds with --clients threads,
each sending requests back to back. Prints and writes bench/results/api_load.json: requests,
throughput, p50/p99 latency and errors (which must be 0). The load stays on loopback and is bounded
in time and client count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import QUESTIONS, ROOT, free_port, record, rtqa_index, wait_until_serving


def run_load(base: str, path: str, bodies: list[dict], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as session:
            i = offset
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                i += clients
                started = time.perf_counter()
                try:
                    response = session.post(path, json=body)
                    ok = response.status_code == 200
                    problem = None if ok else f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients, "seconds": round(wall, 1), "requests_ok": len(latencies), "errors": len(errors),
        "error_examples": errors[:3],
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * (len(ordered) - 1)))], 1) if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--index", help="index to serve (default: the RealTime QA bench index)")
    args = parser.parse_args()

    if args.index:
        index_dir, questions = Path(args.index), ["How many doses of Sputnik V were delivered?"]
    elif QUESTIONS.exists():
        settings, rows, _ = rtqa_index(400)
        index_dir, questions = settings.index_dir, [q["question_sentence"] for q in rows[:200]]
    else:
        index_dir = Path(tempfile.mkdtemp(prefix="load-")) / "index"
        subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(ROOT / "seeds"), "--index", str(index_dir)],
                       check=True, capture_output=True)
        questions = ["How many doses of Sputnik V were delivered?", "What did Mishustin say about trade turnover?"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_LLM_BACKEND": "extractive"}
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", str(index_dir), "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(base, server)
        documents = httpx.get(f"{base}/healthz").json()["documents"]
        search = run_load(base, "/v1/search", [{"query": q, "k": 5} for q in questions], args.clients, args.seconds)
        ask = run_load(base, "/v1/ask", [{"question": q} for q in questions], args.clients, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    record("api_load", {"index_documents": documents, "backend": "extractive", "search": search, "ask": ask})


if __name__ == "__main__":
    main()
