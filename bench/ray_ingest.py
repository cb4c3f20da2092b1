"""Single-process vs Ray-local ingestion of the same RealTime QA articles: throughput and overhead.

    python bench/ray_ingest.py [--articles 2000] [--files 8]

Both paths run as a user runs them, `rag ingest DIR` and `rag ingest DIR --ray`, each in its own
process on a fresh index, so model loading and (for Ray) starting the runtime and its workers count.
The fixed cost of each path is measured on a one-article input; steady-state throughput is the
articles / (wall time - fixed cost). The two indexes are then compared: same chunk rows and ids,
largest vector difference.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, first_articles, record

from rag.config import Settings
from rag.index import NewsIndex


def write_corpus(folder: Path, articles: list[dict], files: int) -> Path:
    folder.mkdir(parents=True)
    per_file = -(-len(articles) // files)
    for number, start in enumerate(range(0, len(articles), per_file)):
        with gzip.open(folder / f"part-{number:03d}.jsonl.gz", "wt", encoding="utf-8") as handle:
            for row in articles[start:start + per_file]:
                handle.write(json.dumps(row) + "\n")
    return folder


def timed_ingest(corpus: Path, index_dir: Path, ray: bool) -> tuple[float, dict]:
    command = [sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--index", str(index_dir), "--json", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("RAG_CONFIG", None)
    started = time.perf_counter()
    result = subprocess.run(command + (["--ray"] if ray else []), capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"ingest failed ({'ray' if ray else 'single'}):\n{result.stderr[-3000:]}")
    return seconds, json.loads(result.stdout)


def stored(index_dir: Path) -> tuple[list[tuple], np.ndarray]:
    settings = Settings.load(env={})
    settings.index_dir = index_dir
    index = NewsIndex(settings)
    rows = index.metadata.db.execute("SELECT id, chunk_id, doc_id, start, end FROM chunks ORDER BY id").fetchall()
    vectors = index.metadata.vectors(index.metadata.chunk_ids(), index.dimension)
    index.close()
    return rows, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    articles = first_articles(args.articles)
    figures: dict = {"articles": len(articles), "files": args.files}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        tiny = write_corpus(scratch / "tiny", articles[:1], 1)
        corpus = write_corpus(scratch / "corpus", articles, args.files)
        for name, ray in (("single", False), ("ray_local", True)):
            fixed, _ = timed_ingest(tiny, scratch / f"tiny-{name}", ray)
            wall, report = timed_ingest(corpus, scratch / f"index-{name}", ray)
            steady = wall - fixed
            figures[name] = {
                "wall_s": round(wall, 1), "fixed_cost_s": round(fixed, 1),
                "chunks": report["chunks"], "failed": report["failed"],
                "docs_per_s": round(len(articles) / wall, 3), "chunks_per_s": round(report["chunks"] / wall, 2),
                "steady_docs_per_s": round(len(articles) / steady, 3),
                "steady_chunks_per_s": round(report["chunks"] / steady, 2),
            }
            print(name, figures[name], flush=True)
        single_rows, single_vectors = stored(scratch / "index-single")
        ray_rows, ray_vectors = stored(scratch / "index-ray_local")
    figures["same_chunk_rows_and_ids"] = single_rows == ray_rows
    figures["max_abs_vector_difference"] = float(np.abs(single_vectors - ray_vectors).max())
    figures["ray_over_single_wall"] = round(figures["ray_local"]["wall_s"] / figures["single"]["wall_s"], 3)
    figures["ray_over_single_steady"] = round(
        figures["single"]["steady_chunks_per_s"] and figures["ray_local"]["steady_chunks_per_s"] / figures["single"]["steady_chunks_per_s"], 3)
    record("ray_ingest", figures)


if __name__ == "__main__":
    main()
