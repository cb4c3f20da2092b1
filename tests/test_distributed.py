"""Distributed ingestion on a local Ray runtime limited to this machine's CPUs, against the
single-process path on the same files: same report, same chunks under the same ids, same vectors."""

import json
import os
import re

import numpy as np
import pytest

from conftest import SEEDS, run_cli
from rag.config import Settings
from rag.index import NewsIndex
from rag.ingest.pipeline import IngestPipeline
from rag.retrieve import candidates
from rag.retrieve import Retriever

if not os.environ.get("CI"):
    pytest.importorskip("ray", reason='Ray not installed: pip install -e ".[distributed]"')

from rag.ingest.distributed import RayIngestPipeline, start_ray  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime for the module, with the machine's CPUs and no more."""
    ray = start_ray(None)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def exact_embedder():
    """The packaged model computing in f32: bf16 (the default where the CPU runs it faster) rounds a
    text's vector differently with the batch it is encoded in (measured up to 2e-3 per element), and
    Ray's batches follow its block boundaries, not the single-process path's; f32 agrees to 1e-7."""
    from rag.config import EmbeddingSettings
    from rag.embedding import Embedder

    model = Embedder(EmbeddingSettings(threads=1, precision="f32"))
    model.model
    return model


def corpus(folder):
    """seeds/, three JSONL files (one with a malformed line, one with a duplicate article), a binary file."""
    folder.mkdir()
    (folder / "seed.txt").write_text(next(SEEDS.glob("*.txt")).read_text())
    words = "council budget river bridge school harbour election court market energy museum railway".split()
    for number in range(3):
        lines = []
        for i in range(12):
            body = "\n\n".join(" ".join(words[(i + p + j) % len(words)] for j in range(50)) + f" story {number}-{i} part {p}."
                               for p in range(3))
            lines.append(json.dumps({"id": f"f{number}-{i}", "title": f"Story {number}-{i}", "text": body,
                                     "date": f"2023-0{1 + number}-1{i % 10}", "source": "Wire"}))
        if number == 1:
            lines.insert(5, "{not json")
        if number == 2:  # the same article under another id: stored once
            lines.append(json.dumps({**json.loads(lines[0]), "id": "f2-copy"}))
        (folder / f"news-{number}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "scan.txt").write_bytes(b"\x00\x01binary")
    return folder


def ingest(pipeline, index_dir, embedder, paths, **options):
    settings = Settings.load(env={})
    settings.index_dir = index_dir
    for name, value in options.items():
        section, field = name.split("__")
        setattr(getattr(settings, section), field, value)
    with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
        return pipeline(index, progress=False).run(paths), settings


def stored(settings, embedder):
    index = NewsIndex(settings, embedder=embedder)
    try:
        rows = index.metadata.db.execute("SELECT id, chunk_id, doc_id, ordinal, start, end, n_tokens FROM chunks ORDER BY id").fetchall()
        return rows, index.metadata.vectors(index.metadata.chunk_ids(), index.dimension)
    finally:
        index.close()


def test_ray_ingest_equals_the_single_process_path(tmp_path, exact_embedder, ray_runtime):
    assert ray_runtime.cluster_resources()["CPU"] == os.cpu_count()  # limited to this machine
    embedder = exact_embedder
    files = corpus(tmp_path / "corpus")
    # batches that do not align; one embedding worker (two would only contend for these two cores);
    # the workers compute in f32 as the driver's model does (see exact_embedder)
    options = {"distributed__batch_docs": 5, "store__commit_every_docs": 7, "distributed__workers": 1,
               "embedding__precision": "f32"}
    single, single_settings = ingest(IngestPipeline, tmp_path / "single", embedder, [files], **options)
    ray, ray_settings = ingest(RayIngestPipeline, tmp_path / "ray", embedder, [files], **options)
    for report in (single, ray):
        assert report.added == 37 and report.duplicates == 1 and report.files == 5
    for field in ("added", "duplicates", "unchanged", "chunks", "tokens", "files", "failed"):
        assert getattr(ray, field) == getattr(single, field), field
    assert [(i.path, i.line, i.message) for i in ray.issues] == [(i.path, i.line, i.message) for i in single.issues]
    assert any("news-1.jsonl" in i.path and i.line == 6 for i in ray.issues)
    assert any("scan.txt" in i.path and "binary" in i.message for i in ray.issues)
    single_rows, single_vectors = stored(single_settings, embedder)
    ray_rows, ray_vectors = stored(ray_settings, embedder)
    assert ray_rows == single_rows and len(ray_rows) == single.chunks  # same chunks, same ids
    assert np.allclose(ray_vectors, single_vectors, atol=1e-5)
    # Unchanged files are skipped by the workers; a changed file replaces its documents.
    again, _ = ingest(RayIngestPipeline, tmp_path / "ray", embedder, [files], **options)
    assert again.files_unchanged == 3 and again.chunks == 0 and again.added == 0  # the seed and two clean JSONL files
    path = files / "news-0.jsonl"
    path.write_text(path.read_text().replace("story 0-3 part 1", "story 0-3 part 1 revised"))
    changed, _ = ingest(RayIngestPipeline, tmp_path / "ray", embedder, [files / "news-0.jsonl"], **options)
    assert (changed.replaced, changed.unchanged, changed.added) == (1, 11, 0)
    index = NewsIndex(ray_settings, embedder=embedder)
    try:
        assert "part 1 revised" in index.metadata.get_document("f0-3")["text"]
        (top, _), = candidates(index, embedder.encode_query("revised"), "revised", 3)[1]  # the one chunk with the new word
        assert index.metadata.chunks_by_id([top])[top].doc_id == "f0-3"
        assert index.metadata.counts()["chunks"] == len(index.vectors.ids())  # old chunks gone from FAISS too
    finally:
        index.close()


def test_ray_ingest_writes_to_milvus(tmp_path, embedder, ray_runtime):
    pytest.importorskip("pymilvus")
    report, settings = ingest(RayIngestPipeline, tmp_path / "index", embedder, [SEEDS], store__backend="milvus")
    assert report.added == 1 and report.chunks > 5
    index = NewsIndex(settings, embedder=embedder)
    try:
        assert index.vectors.count() == report.chunks
        assert "220,000" in Retriever(index).run("How many doses of Sputnik V were delivered?", k=1)[0].text
    finally:
        index.close()


def test_cli_ray_ingest_shows_progress_and_names_bad_files(tmp_path, ray_runtime):  # in-process: Ray started once
    files = corpus(tmp_path / "corpus")
    result = run_cli("ingest", str(files), "--index", str(tmp_path / "index"), "--ray", "--progress", timeout=600)
    assert result.returncode == 1  # some files and records failed; the rest went in
    assert "37 added, 1 unchanged" in result.stdout
    assert "error: " in result.stderr and "scan.txt: binary data" in result.stderr
    assert "news-1.jsonl:6: malformed JSON" in result.stderr
    assert "ingest (ray)" in result.stderr and re.search(r"\d+doc", result.stderr)  # the progress bar
    assert json.loads(run_cli("stats", "--index", str(tmp_path / "index"), "--json").stdout)["documents"] == 37
    search = json.loads(run_cli("search", "How many doses of Sputnik V were delivered?", "--index", str(tmp_path / "index"), "--json").stdout)
    assert "220,000" in search["hits"][0]["text"]
