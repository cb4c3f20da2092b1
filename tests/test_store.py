"""Vector and BM25 stores on their own: index type switch, recall, deletes, filters, persistence."""

import numpy as np

from rag.config import StoreSettings
from rag.store import BM25Index, FaissStore


def unit_vectors(n, d=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(vectors, ids, query, k):
    scores = vectors @ query
    return set(ids[np.argsort(-scores)[:k]].tolist())


def test_flat_until_threshold_then_hnsw_with_high_recall(tmp_path):
    settings = StoreSettings(ann_threshold=500, hnsw_m=16, hnsw_ef_construction=100, hnsw_ef_search=64)
    store = FaissStore(32, settings)
    vectors, ids = unit_vectors(2000), np.arange(10, 2010, dtype=np.int64)
    store.add(ids[:400], vectors[:400])
    assert store.kind == "flat"
    store.add(ids[400:], vectors[400:])
    assert store.kind == "hnsw" and store.count() == 2000
    queries = unit_vectors(50, seed=1)
    recall = np.mean([
        len({i for i, _ in store.search(q, 10)} & exact_top(vectors, ids, q, 10)) / 10 for q in queries
    ])
    assert recall >= 0.95
    path = tmp_path / "v.faiss"
    store.write(path)
    loaded = FaissStore.load(path, 32, settings)
    assert loaded.kind == "hnsw" and loaded.count() == 2000
    assert loaded.search(queries[0], 5) == store.search(queries[0], 5)


def test_flat_search_is_exact_and_removal_is_immediate():
    store = FaissStore(32, StoreSettings())
    vectors, ids = unit_vectors(300), np.arange(300, dtype=np.int64)
    store.add(ids, vectors)
    hits = store.search(vectors[7], 3)
    assert hits[0][0] == 7 and abs(hits[0][1] - 1.0) < 1e-5
    store.remove(np.array([7]))
    assert 7 not in {i for i, _ in store.search(vectors[7], 10)}
    assert store.count() == 299


def test_hnsw_tombstones_hide_deleted_and_rebuild_when_many():
    store = FaissStore(32, StoreSettings(ann_threshold=100, hnsw_m=16))
    vectors, ids = unit_vectors(400), np.arange(400, dtype=np.int64)
    store.add(ids, vectors)
    store.remove(np.array([5, 6]))
    assert store.tombstones == {5, 6} and store.count() == 398
    assert not {5, 6} & {i for i, _ in store.search(vectors[5], 20)}
    store.remove(np.arange(100, 200))  # > 20% dead: rebuilt without tombstones
    assert store.tombstones == set() and store.count() == 298 and store.index.ntotal == 298
    assert not set(range(100, 200)) & set(store.ids().tolist())


def test_filtered_search_returns_only_allowed_ids_and_finds_them_all():
    store = FaissStore(32, StoreSettings(ann_threshold=100))
    vectors, ids = unit_vectors(1000), np.arange(1000, dtype=np.int64)
    store.add(ids, vectors)
    allowed = np.array([3, 500, 999, 123456])  # an unknown id is ignored
    hits = store.search(vectors[0], 10, allowed=allowed)
    assert {i for i, _ in hits} == {3, 500, 999}
    assert store.search(vectors[0], 10, allowed=np.array([], dtype=np.int64)) == []


def test_bm25_ranks_by_terms_and_persists(tmp_path):
    texts = ["Vaccine doses were delivered to Azerbaijan.", "Trade turnover grew by 16 percent.",
             "The football final ended in a draw.", "Doses of the vaccine arrive next week."]
    index = BM25Index.build([10, 11, 12, 13], texts)
    hits = index.search("how many vaccine doses delivered", 3)
    assert hits[0][0] == 10 and {i for i, _ in hits} == {10, 13}
    assert index.search("zzzz qqqq", 3) == []
    assert [i for i, _ in index.search("vaccine doses", 3, allowed=np.array([13]))] == [13]
    index.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25")
    assert again.search("trade turnover", 1)[0][0] == 11
    index.save(tmp_path / "bm25")  # overwriting an existing folder works
    assert BM25Index.load(tmp_path / "bm25").chunk_ids.tolist() == [10, 11, 12, 13]


def test_pinned_filter_columns_agree_with_the_sql_filter(tmp_path):
    """A pinned snapshot filters from in-memory columns; every filter must keep exactly what SQL keeps
    (NULL and '' dates, inclusive bounds, NOCASE sources, non-ASCII sources, deleted documents)."""
    from itertools import product

    from rag.store.metadata import MetadataStore
    from rag.types import Chunk, Document

    path = tmp_path / "metadata.sqlite"
    writer = MetadataStore(path)
    dates = [None, "", "2022-01-01", "2022-06-16", "2022-06-17", "2023-12-31", "2024-02-29T10:00:00"]
    sources = ["CNN.com", "cnn.com", "Reuters", "Élysée", "élysée", ""]
    with writer.transaction():
        for n, (date, source) in enumerate(product(dates, sources)):
            document = Document(doc_id=f"d{n}", text="word " * 30, date=date, source=source)
            chunks = [Chunk(chunk_id=f"d{n}#{i}", doc_id=f"d{n}", ordinal=i, start=0, end=4, text="word", n_tokens=1)
                      for i in range(n % 3 + 1)]
            writer.insert_document(document, chunks, np.zeros((len(chunks), 4), np.float32))
        writer.delete_documents(["d3", "d17"])
    unpinned, pinned = MetadataStore(path), MetadataStore(path)
    pinned.pin()
    columns = pinned.chunk_documents()
    assert columns is not None and unpinned.chunk_documents() is None
    assert columns.chunk_ids.tolist() == unpinned.chunk_ids().tolist()
    bounds = [None, "2022-01-01", "2022-06-16", "2024-02-29", "2025-01-01"]
    candidates = unpinned.chunk_ids().tolist()[::2] + [10**9]  # an id no chunk has
    checked = 0
    for since, until, source, undated in product(bounds, bounds, [None, "cnn.com", "ÉLYSÉE", "élysée"], [False, True]):
        expected = sorted(unpinned.filtered_chunk_ids(since, until, source, undated).tolist())
        assert sorted(pinned.filtered_chunk_ids(since, until, source, undated).tolist()) == expected
        assert pinned.document_share(since, until, source, undated) == unpinned.document_share(since, until, source, undated)
        assert (pinned.matching_chunk_ids(candidates, since, until, source, undated)
                == unpinned.matching_chunk_ids(candidates, since, until, source, undated))
        checked += bool(expected)
    assert checked > 50  # most filters keep something: the comparison is not of empty lists
    writer.close(), unpinned.close(), pinned.close()
