"""Sources that disagree on the asked fact: the answer says so and cites both, by date; a faithful
reprint of the same figures is no disagreement. Real index, real model, default and extractive paths."""

from __future__ import annotations

import pytest

from rag.types import Document

ORIGINAL = ("The city council approved a new pedestrian bridge across the harbour on Monday. Construction is "
            "expected to cost 48 million euros and to take three years, the mayor said. The bridge will link the "
            "old town with the ferry terminal.")
OTHER = ("The regional transport authority opened a tender for 40 new electric buses on Tuesday. The buses will "
         "replace diesel vehicles on the harbour routes by 2026.")


def build(open_index, copy_text: str):
    from rag.ingest.pipeline import IngestPipeline

    index = open_index()
    IngestPipeline(index, progress=False).add_records([
        Document("bridge-copy", copy_text, "Harbour bridge approved", "2024-05-09", "Other Wire"),
        Document("bridge", ORIGINAL, "Harbour bridge approved", "2024-05-07", "City Wire"),
        Document("buses", OTHER, "Electric bus tender", "2024-05-08", "City Wire"),
    ])
    index.checkpoint()
    return index


@pytest.mark.parametrize("backend", ["extractive", "llamacpp"])
def test_a_changed_figure_in_another_source_is_reported_with_both_citations(open_index, backend):
    from rag.answer import Answerer
    from rag.generate import load_generator

    index = build(open_index, ORIGINAL.replace("48 million", "52 million"))
    answerer = Answerer(index, index.settings, generator=load_generator(index.settings, backend))
    answer = answerer.run("How much will the new pedestrian bridge across the harbour cost?")
    assert not answer.refused and answer.answer.startswith("The sources disagree:")
    assert answer.conflict is not None and set(answer.conflict["doc_ids"]) == {"bridge", "bridge-copy"}
    assert {"48 million euros", "52 million euros"} <= {v.strip() for v in answer.conflict["values"]} | {
        v.strip() + " euros" for v in answer.conflict["values"]}
    # Both cited, oldest first, each sentence with its date; the quotes are the documents' own text.
    assert [c.doc_id for c in answer.citations] == ["bridge", "bridge-copy"]
    assert answer.answer.index("2024-05-07") < answer.answer.index("48 million") < answer.answer.index("2024-05-09") \
        < answer.answer.index("52 million")
    for citation in answer.citations:
        text = index.metadata.get_document(citation.doc_id)["text"]
        assert text[citation.start:citation.end] == citation.quote
    assert answer.to_json()["conflict"]["doc_ids"] == answer.conflict["doc_ids"]


def test_a_faithful_reprint_is_no_disagreement(open_index):
    from rag.answer import Answerer
    from rag.generate import load_generator

    index = build(open_index, ORIGINAL)
    answerer = Answerer(index, index.settings, generator=load_generator(index.settings, "extractive"))
    answer = answerer.run("How much will the new pedestrian bridge across the harbour cost?")
    assert not answer.refused and answer.conflict is None and "48 million" in answer.answer
    assert not answer.answer.startswith("The sources disagree")
