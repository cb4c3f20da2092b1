"""Chunking: paragraph-first, token-bounded, exact offsets, and the embedder's own limit."""

from conftest import SEEDS
from rag.chunking import Chunker, is_layout, paragraph_spans, sentence_spans
from rag.ingest import read_file
from rag.tokens import count_tokens
from rag.types import Document


def doc(text, title="T"):
    return Document(doc_id="d", text=text, title=title)


def check_offsets(document, chunks):
    for chunk in chunks:
        assert chunk.text == document.text[chunk.start:chunk.end]
        assert chunk.text == chunk.text.strip()
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))


def test_seed_chunks_are_bounded_with_exact_offsets():
    document = next(read_file(next(SEEDS.glob("*.txt"))))
    chunker = Chunker(max_tokens=180, min_tokens=40)
    chunks = chunker.run(document)
    check_offsets(document, chunks)
    assert all(count_tokens(c.text) <= 180 for c in chunks)
    # The dateline is a short paragraph: it is merged into the next one, not a chunk of its own.
    assert chunks[0].text.startswith("Moscow, February 23, AZERTAC\n\nPresident")
    assert all(c.title == document.title and c.date == "2022-02-23" and c.source == "AZERTAC" for c in chunks)
    assert chunks[0].chunk_id == f"{document.doc_id}#0"
    # Every word of the article is in some chunk, but for its layout lines ("Х Х Х", "-0-").
    covered = " ".join(c.text for c in chunks).split()
    text_lines = [line for line in document.text.splitlines() if not is_layout(line)]
    assert covered == " ".join(text_lines).split()
    assert not any("Х Х Х" in c.text or "-0-" in c.text for c in chunks)


def test_paragraph_per_chunk_when_paragraphs_are_mid_sized():
    paragraphs = [" ".join(f"Paragraph {i} sentence number {j} is here." for j in range(8)) for i in range(3)]
    document = doc("\n\n".join(paragraphs))
    chunks = Chunker(max_tokens=120, min_tokens=20).run(document)
    assert [c.text for c in chunks] == paragraphs


def test_long_paragraph_splits_at_sentence_boundaries():
    sentences = [f"Sentence {i} tells about the council vote of {i * 3} members in 2023." for i in range(40)]
    document = doc(" ".join(sentences))
    chunks = Chunker(max_tokens=60, min_tokens=10).run(document)
    check_offsets(document, chunks)
    assert len(chunks) > 5
    assert all(count_tokens(c.text) <= 60 for c in chunks)
    assert all(c.text.endswith("2023.") for c in chunks)  # no sentence cut in the middle


def test_run_on_sentence_splits_at_words_and_huge_token_is_cut():
    document = doc("word " * 500 + "x" * 3000)
    chunks = Chunker(max_tokens=50, min_tokens=5).run(document)
    check_offsets(document, chunks)
    assert all(c.n_tokens <= 50 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == document.text.replace(" ", "").strip()


def test_embedder_limit_is_respected_even_under_the_token_bound():
    # A stand-in for a model with a short sequence limit: at most 80 characters including the title.
    fits = lambda text: len(text) <= 80  # noqa: E731
    document = doc("The first sentence is here. " * 12, title="A title")
    chunks = Chunker(max_tokens=500, min_tokens=5, fits=fits, embed_title=True).run(document)
    check_offsets(document, chunks)
    assert all(len("A title\n" + c.text) <= 80 for c in chunks)


def test_short_paragraphs_merge_with_neighbours():
    document = doc("By Jane Doe\n\nWASHINGTON\n\n" + "The senate voted on the bill today after a long debate. " * 4
                   + "\n\nRead more.")
    chunks = Chunker(max_tokens=180, min_tokens=30).run(document)
    assert len(chunks) == 1
    assert chunks[0].text.startswith("By Jane Doe") and chunks[0].text.endswith("Read more.")


def test_single_newline_text_splits_per_line():
    assert paragraph_spans("one\ntwo\n") == [(0, 3), (4, 7)]
    assert paragraph_spans("a b\nc\n\nd") == [(0, 5), (7, 8)]


def test_no_sentence_ends_with_a_title_that_stands_before_a_name():
    text = ("The general spoke. Gen. Mark Milley said so. Officials met Dr. Who on Tuesday. "
            "She was known for Lt. Nyota Uhura. He lives on Main St. It rained.")
    sentences = [text[s:e] for s, e in sentence_spans(text, 0, len(text))]
    assert not any(s.endswith(("Gen.", "Dr.", "Lt.")) for s in sentences), sentences
    assert "It rained." in sentences and any(s.endswith("Main St.") for s in sentences)  # "St." may end one
    assert any("Gen. Mark Milley said so." in s for s in sentences) and any("Dr. Who on Tuesday." in s for s in sentences)


def test_layout_lines_are_neither_chunk_text_nor_sentences():
    for divider in ("Х Х Х", "* * *", "-0-", "###", "—"):
        assert is_layout(divider), divider
    for text in ("2022", "Thank you.", "AZERTAC", "It is 3+3."):
        assert not is_layout(text), text
    text = "He spoke first. It rained\n\nХ Х Х\n\nPresident Aliyev said: thank you. Then they left."
    sentences = [text[s:e] for s, e in sentence_spans(text, 0, len(text))]
    # blingfire alone glues the divider and the next line into one "sentence".
    assert sentences == ["He spoke first.", "It rained", "President Aliyev said: thank you.", "Then they left."]
    # Short paragraphs do not merge across a divider: it is a section break.
    document = doc("Short one.\n\n* * *\n\nShort two.")
    chunks = Chunker(max_tokens=180, min_tokens=40).run(document)
    assert [c.text for c in chunks] == ["Short one.", "Short two."]
    check_offsets(document, chunks)
