"""Readers: every format from small fixtures written here, and every kind of bad input."""

import codecs
import gzip
import json

import pytest

from conftest import SEEDS, shared_data
from rag.ingest import FieldMap, iter_files, read_file
from rag.types import Document, IngestIssue


def read_all(path, fields=None):
    items = list(read_file(path, FieldMap.parse(fields)))
    return [i for i in items if isinstance(i, Document)], [i for i in items if isinstance(i, IngestIssue)]


def test_seed_dateline_gives_date_source_and_title():
    (doc,), issues = read_all(next(SEEDS.glob("*.txt")))
    assert not issues
    assert doc.date == "2022-02-23"
    assert doc.source == "AZERTAC"
    assert doc.title.startswith("President of the Republic of Azerbaijan Ilham Aliyev has viewed")
    assert doc.text.startswith("Moscow, February 23, AZERTAC\n\nPresident")
    assert "date 2022" not in doc.text
    assert "220,000 doses" in doc.text


def test_markdown_heading_is_the_title(tmp_path):
    path = tmp_path / "note.md"
    path.write_text("# Council passes budget\n\nThe council passed the budget on Monday.\n")
    (doc,), _ = read_all(path)
    assert doc.title == "Council passes budget"
    assert "passed the budget" in doc.text
    assert doc.doc_id.startswith("h")  # content hash: no id of its own


def test_html_main_text_title_date_without_boilerplate(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Bridge reopens - City Times</title>"
        '<meta property="article:published_time" content="2023-05-04T10:00:00Z">'
        '<meta property="og:site_name" content="City Times"></head><body>'
        "<nav>Home | World | Sports | Subscribe</nav><article><h1>Bridge reopens</h1>"
        "<p>The Elm Street bridge reopened on Tuesday after eight months of repairs costing $4.2 million.</p>"
        "<p>Traffic officials said the bridge now carries about 12,000 cars a day, up from 9,000 before.</p>"
        "</article><footer>Copyright 2023 City Times. All rights reserved.</footer></body></html>"
    )
    (doc,), issues = read_all(path)
    assert not issues
    assert doc.title == "Bridge reopens"
    assert doc.date == "2023-05-04"
    assert doc.source == "City Times"
    assert "$4.2 million" in doc.text and "12,000 cars" in doc.text
    assert "Subscribe" not in doc.text and "All rights reserved" not in doc.text


def test_jsonl_records_with_field_names_and_errors_by_line(tmp_path):
    path = tmp_path / "news.jsonl"
    lines = [
        json.dumps({"id": "a1", "title": "One", "body": "First story text.", "published": "2024/01/02", "url": "https://www.example.com/a"}),
        "{not json",
        json.dumps({"id": "a2", "title": "No text here"}),
        "",
        json.dumps({"doc_id": "a3", "content": "Third story.", "date": "Tue, 10 Jun 2003 04:00:00 GMT", "source": "Wire"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    docs, issues = read_all(path)
    assert [d.doc_id for d in docs] == ["a1", "a3"]
    assert docs[0].date == "2024-01-02" and docs[0].source == "example.com" and docs[0].text == "First story text."
    assert docs[1].date == "2003-06-10" and docs[1].source == "Wire"
    assert [(i.line, i.path) for i in issues] == [(2, str(path)), (3, str(path))]
    assert "malformed JSON" in issues[0].message
    assert "no text" in issues[1].message
    assert str(issues[0]).startswith(f"{path}:2: ")


def test_json_array_and_wrapped_object(tmp_path):
    array = tmp_path / "a.json"
    array.write_text(json.dumps([{"id": 1, "text": "Alpha."}, {"id": 2, "text": ""}, "junk"]))
    docs, issues = read_all(array)
    assert [d.doc_id for d in docs] == ["1"]
    assert [i.message.split(":")[0] for i in issues] == ["record 2", "record 3"]
    wrapped = tmp_path / "b.json"
    wrapped.write_text(json.dumps({"articles": [{"id": "x", "text": "Beta."}], "count": 1}))
    docs, _ = read_all(wrapped)
    assert [d.text for d in docs] == ["Beta."]


def test_csv_with_field_override_and_long_fields(tmp_path):
    path = tmp_path / "news.csv"
    long_text = "word " * 40000  # over csv's default 128 kB field limit
    path.write_text(f'headline,article,when\n"Big, quoted title","{long_text}",2022-03-01\nEmpty,,2022-03-02\n')
    docs, issues = read_all(path, ["text=article", "title=headline", "date=when"])
    assert len(docs) == 1 and docs[0].title == "Big, quoted title" and docs[0].date == "2022-03-01"
    assert len(docs[0].text) > 150000
    assert issues[0].line == 3 and "no text" in issues[0].message and "article" in issues[0].message


def test_unknown_field_override_is_rejected():
    with pytest.raises(ValueError, match="--field 'texte=x'"):
        FieldMap.parse(["texte=x"])


RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Daily Wire Feed</title>
<item><title>Port strike ends</title><link>https://news.example.org/port</link><guid>port-1</guid>
<pubDate>Mon, 06 Mar 2023 08:00:00 GMT</pubDate>
<description>&lt;p&gt;Dock workers returned on Monday.&lt;/p&gt;&lt;p&gt;The strike lasted 12 days.&lt;/p&gt;</description></item>
<item><title>Empty</title><link>https://news.example.org/empty</link><description></description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom News</title>
<entry><title>Rates held</title><id>urn:rates</id><link href="https://atom.example.net/rates"/>
<updated>2024-07-31T12:00:00Z</updated><content type="html">&lt;p&gt;The bank held rates at 5.25%.&lt;/p&gt;</content></entry>
</feed>"""


def test_rss_feed_entries(tmp_path):
    path = tmp_path / "feed.rss"
    path.write_text(RSS)
    docs, issues = read_all(path)
    assert len(docs) == 1
    doc = docs[0]
    assert (doc.doc_id, doc.title, doc.date, doc.source, doc.url) == (
        "port-1", "Port strike ends", "2023-03-06", "Daily Wire Feed", "https://news.example.org/port")
    assert doc.text == "Dock workers returned on Monday.\n\nThe strike lasted 12 days."
    assert len(issues) == 1 and "entry 2" in issues[0].message


def test_atom_feed_as_xml(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_text(ATOM)
    (doc,), _ = read_all(path)
    assert doc.doc_id == "urn:rates" and doc.date == "2024-07-31" and "5.25%" in doc.text


def test_xml_that_is_not_a_feed(tmp_path):
    path = tmp_path / "data.xml"
    path.write_text("<?xml version='1.0'?><root><a>1</a></root>")
    docs, issues = read_all(path)
    assert not docs and "no RSS or Atom entries" in issues[0].message


def test_gzip_of_each_kind(tmp_path):
    path = tmp_path / "news.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"id": "g1", "text": "Zipped story."}\n'))
    (doc,), _ = read_all(path)
    assert doc.doc_id == "g1"
    page = tmp_path / "feed.rss.gz"
    page.write_bytes(gzip.compress(RSS.encode()))
    docs, _ = read_all(page)
    assert docs[0].title == "Port strike ends"
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(b"not gzip at all")
    _, issues = read_all(broken)
    assert "not a valid gzip file" in issues[0].message


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        ("latin1.txt", "first line\nsecond line caf\xe9\n".encode("latin-1"), "line 2: invalid UTF-8"),
        ("empty.jsonl", b"", "empty file"),
        ("blank.md", b"  \n\n \n", "empty file"),
        ("notes.docx", b"PK\x03\x04", "unsupported file type '.docx'"),
        ("noext", b"hello", "unsupported file type '(none)'"),
    ],
)
def test_bad_files_are_reported_by_name(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    docs, issues = read_all(path)
    assert not docs
    assert len(issues) == 1 and issues[0].path == str(path) and message in issues[0].message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_with_a_byte_order_mark_are_text(tmp_path, encoding):
    """What Windows editors save as "Unicode": NUL bytes, but text; the same article as in UTF-8."""
    article = "Harbour reopens\n\nThe harbour reopened on Monday after the storm, officials in Gdańsk said.\n"
    data = article.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    (tmp_path / "wide.txt").write_bytes(data)
    (tmp_path / "plain.txt").write_text(article, encoding="utf-8")
    wide, issues = read_all(tmp_path / "wide.txt")
    plain, _ = read_all(tmp_path / "plain.txt")
    assert not issues and (wide[0].title, wide[0].text) == (plain[0].title, plain[0].text)
    (tmp_path / "broken.txt").write_bytes(codecs.BOM_UTF16_LE + "line one\nline two".encode("utf-16-le") + b"\x00\xd8x\x00")
    _, issues = read_all(tmp_path / "broken.txt")
    assert "line 2: invalid UTF-16" in issues[0].message


def test_folders_are_walked_recursively_skipping_hidden(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.txt").write_text("x")
    (tmp_path / "top.md").write_text("y")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.txt").write_text("z")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])]
    assert found == ["a/b/deep.txt", "top.md"]


def test_realtimeqa_articles_read_as_they_are():
    path = shared_data("realtimeqa/articles_2022_2024.jsonl.gz")
    docs, issues = read_all(path)
    assert len(docs) == 19266 and not issues
    assert all(d.doc_id and d.text for d in docs)
    dated = [d for d in docs if d.date]
    assert len(dated) > 0.9 * len(docs) and all(len(d.date) == 10 for d in dated)
    assert docs[1].source == "cnn.com" and docs[1].url.startswith("https://www.cnn.com/")
