"""Reliability figures: kill -9 during ingest, a full disk, and mixed load with abandoned streams.

    python bench/reliability.py [--kills 20] [--articles 400] [--seconds 600] [--stores faiss milvus]

1. Kills: `rag ingest` of N articles is SIGKILLed at --kills random moments (each restart resumes
   the same ingest), for each store. After every kill the index must open, hold exactly the documents
   of the batches committed so far (every document with all its chunks, the vector store in step
   after repair), and answer a search; the last run must complete with every article.
2. Disk full: `rag ingest` under RLIMIT_FSIZE (files cannot grow past a few MB): it must fail with a
   clear one-line error (no traceback), and the index must still open with what was committed.
3. Mixed load on loopback for --seconds: `rag serve` (bundled model) with clients searching, asking,
   uploading and deleting, and others opening /v1/ask streams and hanging up after the first bytes.
   Counted: requests and statuses per route (5xx must be 0), p50/p99 latency per route, and the
   server's peak RSS (VmHWM) against its RSS after start-up.
Prints and writes bench/results/reliability.json. Uses RealTime QA articles from ../shared/data,
or synthetic articles when the shared data is absent.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import ARTICLES, RESULTS, ROOT, free_port, record, wait_until_serving

RAG = [sys.executable, "-m", "rag.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "RAG_LLM_THREADS": "1",
       "RAG_STORE_COMMIT_EVERY_DOCS": "4"}
ENV.pop("RAG_CONFIG", None)
PARTS = ["kills", "disk", "load"]
QUESTIONS = ["What did officials say about the economy?", "Who won the election?", "How many people were affected?",
             "What happened at the summit?", "Which company announced new products?"]


def corpus(folder: Path, n: int) -> Path:
    """N articles as one JSONL file (RealTime QA when present, synthetic otherwise)."""
    path = folder / "articles.jsonl"
    rows = []
    if ARTICLES.exists():
        with gzip.open(ARTICLES, "rt", encoding="utf-8") as handle:
            for line in handle:
                record_ = json.loads(line)
                if record_.get("text"):
                    rows.append({"id": record_["doc_id"], "title": record_["title"], "text": record_["text"],
                                 "date": record_.get("publish_date", "")})
                if len(rows) >= n:
                    break
    else:
        rows = [{"id": f"a{i}", "title": f"Report {i}", "text": " ".join(
            f"Officials in district {i} said on day {j} that {i * j} people were affected by floods." for j in range(60))}
            for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def committed_state(index_dir: Path, store: str) -> dict:
    """Open the index in a fresh process (as a user would) and report what it holds."""
    code = f"""
import json, sys
from rag.config import Settings
from rag.index import NewsIndex
from rag.retrieve import Retriever
s = Settings.load(env={{}}); s.index_dir = {str(index_dir)!r}; s.store.backend = {store!r}
with NewsIndex(s, writable=True, create=False) as index:  # a writer repairs the vector store from SQLite
    db = index.metadata.db
    docs = db.execute("SELECT count(*) FROM documents").fetchone()[0]
    chunks = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    partial = db.execute("SELECT count(*) FROM documents d WHERE n_chunks != (SELECT count(*) FROM chunks c WHERE c.doc_id = d.doc_id)").fetchone()[0]
    vectors = index.vectors.count()
    hits = Retriever(index).run("economy", k=3) if docs else []
print(json.dumps({{"documents": docs, "chunks": chunks, "partial_documents": partial, "vectors": vectors, "hits": len(hits)}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def kills(folder: Path, articles: Path, total: int, n_kills: int, store: str, rng: random.Random) -> dict:
    index_dir = folder / f"index-{store}"
    trials, previous = [], 0
    for trial in range(n_kills):
        process = subprocess.Popen([*RAG, "ingest", str(articles), "--index", str(index_dir), "--store", store, "--no-progress"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=ENV)
        time.sleep(rng.uniform(10.0, 30.0))  # start-up (~12 s: imports, model load) then some batches
        finished = process.poll() is not None
        if not finished:
            process.send_signal(signal.SIGKILL)
        process.wait()
        state = committed_state(index_dir, store)
        if previous == 0 and "no index at" in " ".join(state.get("error", [])):  # killed before its first commit
            state = {"documents": 0, "chunks": 0, "partial_documents": 0, "vectors": 0, "hits": 0, "no_index_yet": True}
        ok = ("error" not in state and state["partial_documents"] == 0 and state["vectors"] == state["chunks"]
              and state["documents"] >= previous and (state["documents"] == 0 or state["hits"] > 0))
        previous = state.get("documents", previous)
        trials.append({"trial": trial, "killed": not finished, **state, "ok": ok})
        print(f"  {store} kill {trial + 1}: {state}", flush=True)
        if finished:
            break
    final = subprocess.run([*RAG, "ingest", str(articles), "--index", str(index_dir), "--store", store, "--no-progress"],
                           capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=3600)
    state = committed_state(index_dir, store)
    return {"kills": sum(t["killed"] for t in trials), "every_open_ok": all(t["ok"] for t in trials), "trials": trials,
            "resumed_exit_code": final.returncode, "final": state,
            "complete": state.get("documents") == total and state.get("partial_documents") == 0}


def disk_full(folder: Path, articles: Path) -> dict:
    index_dir = folder / "index-full"
    first = subprocess.run([*RAG, "ingest", str(articles), "--index", str(index_dir), "--no-progress"],
                           capture_output=True, text=True, cwd=ROOT, env={**ENV, "RAG_STORE_COMMIT_EVERY_DOCS": "4"},
                           timeout=3600, preexec_fn=lambda: _limit_file_size(3 * 1024 * 1024))
    state = committed_state(index_dir, "faiss")
    lines = [line for line in first.stderr.splitlines() if line.startswith("error")]
    return {"exit_code": first.returncode, "error_lines": lines[-3:], "traceback": "Traceback" in first.stderr,
            "index_after": state, "opens": "error" not in state and state.get("partial_documents") == 0}


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def mixed_load(folder: Path, articles: Path, seconds: float) -> dict:
    index_dir = folder / "index-load"
    subprocess.run([*RAG, "ingest", str(articles), "--index", str(index_dir), "--no-progress"], cwd=ROOT, env=ENV,
                   capture_output=True, timeout=3600, check=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(folder / "serve.log", "wb")
    server = subprocess.Popen([*RAG, "serve", "--index", str(index_dir), "--port", str(port)], stdout=log,
                              stderr=subprocess.STDOUT, cwd=ROOT, env={**ENV, "RAG_SERVER_BUSY_TIMEOUT_SECONDS": "30"})
    try:
        wait_until_serving(base, server, seconds=120)
        rss_start = rss_mb(server.pid, "VmRSS")
        results: dict[str, list] = {}
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds

        def note(route: str, status: int, elapsed: float) -> None:
            with lock:
                results.setdefault(route, []).append((status, elapsed))

        def searcher(n: int) -> None:
            with httpx.Client(base_url=base, timeout=120) as client:
                i = n
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    status = client.post("/v1/search", json={"query": QUESTIONS[i % len(QUESTIONS)], "k": 5}).status_code
                    note("POST /v1/search", status, time.perf_counter() - started)
                    i += 1

        def asker(n: int) -> None:
            with httpx.Client(base_url=base, timeout=300) as client:
                i = n
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    status = client.post("/v1/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]}).status_code
                    note("POST /v1/ask", status, time.perf_counter() - started)
                    i += 1

        def writer() -> None:
            with httpx.Client(base_url=base, timeout=300) as client:
                i = 0
                while time.perf_counter() < deadline:
                    doc_id = f"load-{i}"
                    started = time.perf_counter()
                    status = client.post("/v1/documents", json={"documents": [{"id": doc_id, "title": f"Load {i}",
                                                                               "text": f"Load test article {i}. " * 40}]}).status_code
                    note("POST /v1/documents", status, time.perf_counter() - started)
                    started = time.perf_counter()
                    status = client.delete(f"/v1/documents/{doc_id}").status_code
                    note("DELETE /v1/documents/{doc_id}", status, time.perf_counter() - started)
                    i += 1

        def abandoner() -> None:
            host, port_ = "127.0.0.1", port
            i = 0
            while time.perf_counter() < deadline:
                payload = json.dumps({"question": QUESTIONS[i % len(QUESTIONS)], "stream": True}).encode()
                started = time.perf_counter()
                try:
                    with socket.create_connection((host, port_), timeout=120) as sock:
                        sock.sendall(f"POST /v1/ask HTTP/1.1\r\nHost: {host}:{port_}\r\nContent-Type: application/json\r\n"
                                     f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                        head = sock.recv(64)
                    status = int(head.split()[1]) if head.startswith(b"HTTP/1.1") else 0
                except OSError:
                    status = 0
                note("POST /v1/ask (stream, abandoned)", status, time.perf_counter() - started)
                i += 1
                time.sleep(1.0)

        rss_samples: list[float] = []

        def sampler() -> None:  # the server's RSS every 30 s: bounded memory is a plateau, not a climb
            while time.perf_counter() < deadline:
                rss_samples.append(round(rss_mb(server.pid, "VmRSS"), 1))
                time.sleep(30)

        threads = ([threading.Thread(target=sampler)] + [threading.Thread(target=searcher, args=(n,)) for n in range(2)] +
                   [threading.Thread(target=asker, args=(n,)) for n in range(2)] +
                   [threading.Thread(target=writer), threading.Thread(target=abandoner)])
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        routes = {}
        for route, items in results.items():
            times = sorted(e * 1000 for _, e in items)
            statuses: dict[str, int] = {}
            for status, _ in items:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            routes[route] = {"requests": len(items), "statuses": statuses,
                             "p50_ms": round(statistics.median(times), 1),
                             "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 1)}
        five_xx = sum(n for r in routes.values() for s, n in r["statuses"].items() if s.startswith("5") or s == "0")
        return {"seconds": seconds, "routes": routes, "server_errors_or_failed_connections": five_xx,
                "rss_after_start_mb": round(rss_start, 1), "peak_rss_mb": round(rss_mb(server.pid, "VmHWM"), 1),
                "rss_every_30s_mb": rss_samples,
                # bounded = a plateau: growth over the second half of the run, once every route has warmed up
                "rss_growth_second_half_mb": round(rss_samples[-1] - rss_samples[len(rss_samples) // 2], 1) if rss_samples else None}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--stores", nargs="+", default=["faiss", "milvus"])
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    args = parser.parse_args()
    rng = random.Random(13)
    previous = RESULTS / "reliability.json"  # a run of some parts keeps the other parts' figures
    figures: dict = json.loads(previous.read_text()) if previous.exists() and set(args.parts) != set(PARTS) else {}
    for key in ("benchmark", "measured_at", "machine"):
        figures.pop(key, None)
    figures[f"articles_{'_'.join(args.parts)}"] = args.articles
    with tempfile.TemporaryDirectory(prefix="rag-reliability-") as scratch:
        folder = Path(scratch)
        articles = corpus(folder, args.articles)
        if "kills" in args.parts:
            figures["kills"] = {store: kills(folder, articles, args.articles, args.kills, store, rng) for store in args.stores}
        if "disk" in args.parts:
            figures["disk_full"] = disk_full(folder, articles)
        if "load" in args.parts:
            figures["mixed_load"] = mixed_load(folder, articles, args.seconds)
    record("reliability", figures)


if __name__ == "__main__":
    main()
