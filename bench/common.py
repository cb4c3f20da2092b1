"""Helpers shared by the benchmarks: data paths, machine facts, and the results file."""

from __future__ import annotations

import gzip
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
SHARED_DATA = Path(os.environ.get("RAG_SHARED_DATA", ROOT.parent / "shared" / "data"))
ARTICLES = SHARED_DATA / "realtimeqa" / "articles_2022_2024.jsonl.gz"
QUESTIONS = SHARED_DATA / "realtimeqa" / "questions_2022_2024.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def require(path: Path) -> Path:
    """Exit with a clear message when the shared data is absent."""
    if not path.exists():
        sys.exit(f"benchmark needs {path} (the shared evaluation data); set RAG_SHARED_DATA to its folder")
    return path


def first_articles(n: int) -> list[dict]:
    """The first n RealTime QA articles as raw records."""
    with gzip.open(require(ARTICLES), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in islice(handle, n)]


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


LOAD_AT_START = _load()  # when the benchmark process started, before it loaded the machine itself


def machine() -> dict:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "load_1min_at_start": LOAD_AT_START, "load_1min_at_end": _load()}


def record(name: str, figures: dict) -> Path:
    """Print the figures and write them to bench/results/NAME.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), **figures}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    print(f"written to {path.relative_to(ROOT)}")
    return path


def load_questions(n: int, offset: int = 0) -> list[dict]:
    """RealTime QA questions [offset, offset+n) that have retrieved articles."""
    with open(require(QUESTIONS), encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [q for q in rows[offset:offset + n] if q["retrieved_doc_ids"]]


def rtqa_index(n_questions: int, offset: int = 0):
    """An index of the articles retrieved for these questions, pooled; built once and cached.

    Returns (settings, questions, build_figures). The cache lives in bench/.cache (git-ignored) and is
    keyed by the question range, so repeated benchmark runs skip the embedding.
    """
    import time

    from rag.config import Settings
    from rag.index import NewsIndex
    from rag.ingest.pipeline import IngestPipeline

    questions = load_questions(n_questions, offset)
    wanted = {doc_id for q in questions for doc_id in q["retrieved_doc_ids"]}
    # The embedding runtime may be chosen (RAG_EMBEDDING_BACKEND...) to compare runtimes; nothing else.
    settings = Settings.load(env={k: v for k, v in os.environ.items() if k.startswith("RAG_EMBEDDING_")})
    embedding = settings.embedding
    runtime = "_".join([embedding.backend] + [embedding.quantize] * (embedding.quantize not in ("auto", "none"))
                       + [embedding.precision] * (embedding.precision != "auto"))
    settings.index_dir = ROOT / "bench" / ".cache" / f"rtqa_{offset}_{n_questions}_{runtime}"
    info_path = settings.index_dir / "bench_build.json"
    if info_path.exists():
        return settings, questions, json.loads(info_path.read_text())
    corpus = settings.index_dir.parent / f"rtqa_{offset}_{n_questions}.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(require(ARTICLES), "rt", encoding="utf-8") as source, open(corpus, "w", encoding="utf-8") as out:
        for line in source:
            if json.loads(line)["doc_id"] in wanted:
                out.write(line)
    started = time.perf_counter()
    with NewsIndex(settings, writable=True, create=True) as index:
        report = IngestPipeline(index, progress=True).run([corpus])
    build = {"articles": report.added, "chunks": report.chunks, "build_seconds": round(time.perf_counter() - started, 1)}
    corpus.unlink()
    info_path.write_text(json.dumps(build))
    return settings, questions, build


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(base: str, server: subprocess.Popen, seconds: float = 300) -> None:
    """Return once `base`/healthz answers 200; exit if the server dies or is not up within `seconds`."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            sys.exit("rag serve did not start")
        time.sleep(0.5)
