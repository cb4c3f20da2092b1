"""The Milvus vector store: agreement with FAISS on the seed corpus, filters inside Milvus, and the
server path (a Milvus gRPC server on 127.0.0.1 shared by several processes and indexes).

The server is milvus-lite's own `milvus-lite server`: it speaks the Milvus gRPC protocol, so the
client code is exactly the one a Milvus Standalone or Distributed deployment gets.
"""

import json
import re
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SEEDS, free_port, run_cli, serving, wait_for_port
from rag.config import Settings
from rag.store.milvus import MilvusStoreError
from rag.index import NewsIndex
from rag.ingest.pipeline import IngestPipeline
from rag.retrieve import Retriever, candidates
from rag.types import SearchFilters

if not os.environ.get("CI"):
    pytest.importorskip("pymilvus", reason='pymilvus not installed: pip install -e ".[milvus]"')

from rag.store.milvus import filter_expression  # noqa: E402

QUERIES = [
    "How many doses of Sputnik V were delivered?",
    "trade turnover between Russia and Azerbaijan",
    "What did the presidents say about the pandemic?",
    "PCR tests certified",
    "agreement on allied interaction",
    "gas pipeline",  # no BM25 match at all: dense alone
]


def build(directory, embedder, backend, **milvus):
    settings = Settings.load(env={})
    settings.index_dir = directory
    settings.store.backend = backend
    for name, value in milvus.items():
        setattr(settings.store.milvus, name, value)
    with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
        IngestPipeline(index, progress=False).run([SEEDS])
    return settings


def test_milvus_and_faiss_return_the_same_results_on_the_seed_corpus(tmp_path, embedder):
    faiss = NewsIndex(build(tmp_path / "faiss", embedder, "faiss"), embedder=embedder)
    milvus = NewsIndex(build(tmp_path / "milvus", embedder, "milvus"), embedder=embedder)
    local_bm25 = milvus.settings.copy()
    local_bm25.store.lexical = "local"
    milvus_local = NewsIndex(local_bm25, embedder=embedder)
    try:
        assert faiss.metadata.chunk_ids().tolist() == milvus.metadata.chunk_ids().tolist()  # same ids
        assert milvus.vectors.count() == len(faiss.metadata.chunk_ids())
        lexical_hits = 0
        for query in QUERIES:
            vector = embedder.encode_query(query)
            (dense_f, lexical_f), (dense_m, lexical_m) = (candidates(index, vector, query, 10) for index in (faiss, milvus))
            assert [i for i, _ in dense_f] == [i for i, _ in dense_m], query
            assert np.allclose([s for _, s in dense_f], [s for _, s in dense_m], atol=1e-5)
            # Milvus' BM25 keeps the (k1 + 1) factor that bm25s drops: same order, scores x2.5.
            assert [i for i, _ in lexical_f] == [i for i, _ in lexical_m], query
            assert np.allclose([s * 2.5 for _, s in lexical_f], [s for _, s in lexical_m], rtol=1e-3)
            lexical_hits += len(lexical_m)
            hybrid = [[h.chunk_id for h in Retriever(index).run(query, k=5)] for index in (faiss, milvus, milvus_local)]
            assert hybrid[0] == hybrid[1] == hybrid[2], query
        assert lexical_hits > 20  # the comparison was not vacuous
        first = Retriever(milvus).run(QUERIES[0], k=1)[0]
        assert "220,000" in first.text and first.source == "AZERTAC"
        for filters in (SearchFilters(since="2022-02-23", until="2022-02-23"), SearchFilters(source="azertac")):
            assert [h.chunk_id for h in Retriever(milvus).run(QUERIES[0], k=5, filters=filters)] == \
                [h.chunk_id for h in Retriever(faiss).run(QUERIES[0], k=5, filters=filters)]
        for filters in (SearchFilters(since="2022-02-24"), SearchFilters(until="2022-02-22"), SearchFilters(source="reuters")):
            assert Retriever(milvus).run(QUERIES[0], k=5, filters=filters) == []
    finally:
        for index in (faiss, milvus, milvus_local):
            index.close()


def test_filter_expressions_escape_values_and_exclude_undated_chunks_from_ranges():
    expression = filter_expression(SearchFilters(since="2021-01-01", until="2021-12-31", source='Le "Monde" \\ AFP'))
    assert expression == ('date >= "2021-01-01" and date != "" and date <= "2021-12-31" '
                          'and source == "le \\"monde\\" \\\\ afp"')
    assert filter_expression(SearchFilters()) == "" and filter_expression(None) == ""


def test_milvus_stores_date_source_and_text_and_filters_undated(tmp_path, embedder):
    records = [
        {"id": "dated", "title": "Harbour works", "text": "The harbour crane was repaired by the port authority.",
         "date": "2023-05-01", "source": "Port News"},
        {"id": "undated", "title": "Harbour crane", "text": "The harbour crane stood idle for a week without repairs."},
    ]
    corpus = tmp_path / "news.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
    settings = Settings.load(env={})
    settings.index_dir, settings.store.backend = tmp_path / "index", "milvus"
    with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
        IngestPipeline(index, progress=False).run([corpus])
    index = NewsIndex(settings, embedder=embedder)
    try:
        retriever = Retriever(index)
        assert {h.doc_id for h in retriever.run("harbour crane", k=5)} == {"dated", "undated"}
        assert {h.doc_id for h in retriever.run("harbour crane", k=5, filters=SearchFilters(until="2030-01-01"))} == {"dated"}
        assert {h.doc_id for h in retriever.run("harbour crane", k=5, filters=SearchFilters(source="PORT NEWS"))} == {"dated"}
        rows = index.vectors.client.query(index.vectors.collection, filter="", output_fields=["date", "source", "text"])
        stored = {(r["date"], r["source"]) for r in rows}
        assert stored == {("2023-05-01", "port news"), ("", "")}
        # The text is kept pre-analysed (stemmed, no stop words) so any Milvus analyzer ranks like bm25s.
        assert any("repair" in r["text"].split() and "the" not in r["text"].split() for r in rows)
    finally:
        index.close()


def test_a_new_index_refuses_a_collection_that_holds_another_index(tmp_path, embedder):
    shared = str(tmp_path / "shared.db")
    build(tmp_path / "first", embedder, "milvus", uri=shared)
    settings = Settings.load(env={})
    settings.index_dir, settings.store.backend, settings.store.milvus.uri = tmp_path / "second", "milvus", shared
    with pytest.raises(MilvusStoreError, match="belongs to another index"):
        with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
            IngestPipeline(index, progress=False).run([SEEDS])
    settings.store.milvus.collection = "second_index"
    with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
        report = IngestPipeline(index, progress=False).run([SEEDS])
    assert report.added == 1


def test_a_milvus_server_url_serves_several_processes_and_indexes(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "milvus-data"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, server, "the Milvus server")
        store = ["--store", "milvus", "--set", f"store.milvus.uri={uri}"]
        first = run_cli("ingest", str(SEEDS), "--index", str(tmp_path / "a"), *store)
        assert first.returncode == 0, first.stderr
        assert not (tmp_path / "a" / "milvus.db").exists()  # the vectors went to the server
        hits = json.loads(run_cli("search", QUERIES[0], "--index", str(tmp_path / "a"), "--json", *store).stdout)["hits"]
        assert "220,000" in hits[0]["text"]
        refused = run_cli("ingest", str(SEEDS), "--index", str(tmp_path / "b"), *store)
        assert refused.returncode == 2 and "belongs to another index" in refused.stderr
        second = run_cli("ingest", str(SEEDS), "--index", str(tmp_path / "c"), *store, "--set", "store.milvus.collection=news_c")
        assert second.returncode == 0, second.stderr
        manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
        assert manifest["store"] == {"backend": "milvus", "uri": uri, "collection": "news_c"}
        removed = run_cli("delete", "--source", "azertac", "--index", str(tmp_path / "c"), *store, "--set", "store.milvus.collection=news_c")
        assert removed.returncode == 0 and "deleted 1 document(s)" in removed.stdout
        still = json.loads(run_cli("search", QUERIES[0], "--index", str(tmp_path / "a"), "--json", *store).stdout)["hits"]
        assert "220,000" in still[0]["text"]  # the other collection is untouched
    finally:
        server.terminate()
        server.wait(timeout=20)
    down = run_cli("search", QUERIES[0], "--index", str(tmp_path / "a"), "--store", "milvus", "--set", f"store.milvus.uri={uri}", timeout=120)
    assert down.returncode == 69 and re.search(r"Milvus [a-z -]+ failed .* at http://127.0.0.1", down.stderr) and "Traceback" not in down.stderr


def test_the_api_serves_a_milvus_index_through_writes_and_deletes(tmp_path, embedder):
    import httpx

    index_dir = build(tmp_path / "index", embedder, "milvus").index_dir
    env = {"RAG_STORE_BACKEND": "milvus", "RAG_API_KEY": "milvus-test-key", "RAG_LLM_BACKEND": "extractive"}
    with serving("serve", index_dir, tmp_path, "/healthz", env) as base:
        with httpx.Client(base_url=base, headers={"Authorization": "Bearer milvus-test-key"}, timeout=120) as client:
            assert client.get("/v1/stats").json()["vector_index"] == "milvus:autoindex"
            records = {"documents": [
                {"id": "crane-news", "title": "Harbour expands", "text": "The harbour of Port Elsewhere added 12 new cranes in May.",
                 "date": "2022-05-03", "source": "Port Gazette"}]}
            assert client.post("/v1/documents", json=records).json()["report"]["added"] == 1
            query = {"query": "new cranes in the harbour of Port Elsewhere", "k": 3}
            assert client.post("/v1/search", json=query).json()["hits"][0]["doc_id"] == "crane-news"
            filtered = client.post("/v1/search", json={**query, "source": "azertac"}).json()["hits"]
            assert filtered and all(h["source"] == "AZERTAC" for h in filtered)
            answer = client.post("/v1/ask", json={"question": "How many new cranes did the harbour of Port Elsewhere add?"}).json()
            assert not answer["refused"] and "12 new cranes" in answer["citations"][0]["quote"]
            assert client.delete("/v1/documents/crane-news").status_code == 200
            assert "crane-news" not in [h["doc_id"] for h in client.post("/v1/search", json=query).json()["hits"]]


def test_a_milvus_lite_folder_held_by_one_process_is_a_clear_error_for_another(tmp_path, embedder):
    settings = build(tmp_path / "index", embedder, "milvus")
    holder = NewsIndex(settings, embedder=embedder)
    holder.vectors  # this process now runs the folder's in-process server
    try:
        other = run_cli("search", QUERIES[0], "--index", str(settings.index_dir), "--store", "milvus", process=True)
        assert other.returncode == 2 and "one process at a time" in other.stderr and "Traceback" not in other.stderr
    finally:
        holder.close()  # the last store of the folder stops its server and frees the folder
    freed = run_cli("search", QUERIES[0], "--index", str(settings.index_dir), "--store", "milvus", "--json")
    assert freed.returncode == 0 and "220,000" in json.loads(freed.stdout)["hits"][0]["text"]


def test_a_reader_repairs_a_store_left_behind_and_skips_the_scan_when_in_step(tmp_path, embedder, monkeypatch):
    from rag.store.milvus import MilvusStore

    settings = build(tmp_path / "index", embedder, "milvus")
    writer = NewsIndex(settings, writable=True, embedder=embedder)
    lost = writer.metadata.chunk_ids()[:3]
    writer.vectors.remove(lost)  # as if the process died between a SQLite commit and the Milvus upsert
    writer.metadata.set_state("store_write_pending", "1")
    writer.close()
    reader = NewsIndex(settings, embedder=embedder)
    try:
        assert set(lost.tolist()) <= set(reader.vectors.ids().tolist())  # repaired from SQLite
        assert reader.metadata.get_state("store_write_pending") == "0"
    finally:
        reader.close()

    def no_scan(self):
        raise AssertionError("an index in step with SQLite must open without listing every id")

    monkeypatch.setattr(MilvusStore, "all_ids", no_scan)
    in_step = NewsIndex(settings, embedder=embedder)
    try:
        assert "220,000" in Retriever(in_step).run(QUERIES[0], k=1)[0].text
    finally:
        in_step.close()
