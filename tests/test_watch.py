"""Watched feeds and folders against a real HTTP server on 127.0.0.1: what is stored after each poll."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from conftest import run_cli, shared_data
from feedserver import FeedServer, Route, article_page, atom, rss

FLOOD = ("Heavy rain flooded the river valley on Tuesday, and the regional council said 1,200 homes were "
         "evacuated overnight. Emergency crews reinforced the levees near the old mill with sandbags.")
BRIDGE = ("The city council approved a new pedestrian bridge across the harbour on Monday. Construction is "
          "expected to cost 48 million euros and to take three years, the mayor said.")
BRIDGE_UPDATED = BRIDGE.replace("48 million", "52 million") + " Opponents said the budget had already grown."
ARTICLE = ["The national library reopened its reading room after a two-year renovation, the director announced "
           "on Wednesday at a ceremony attended by the culture minister.",
           "The renovation cost 19 million euros and added 300 desks, a digitisation workshop and a rooftop "
           "garden that is open to the public on weekends.",
           "Visitors queued from early morning; the library said 4,000 people came through the doors on the "
           "first day, twice the number it had expected."]
TRAIN = ("A new night train linking the capital with the coast made its first journey on Friday, carrying "
         "240 passengers in sleeping cars. The operator plans three departures a week until September.")


@pytest.fixture
def service(settings, embedder):
    from rag.service import IndexService

    settings.watch.timeout_seconds = 2.0
    return IndexService(settings, embedder=embedder)


def stored(service) -> dict[str, dict]:
    rows, _ = service.documents.page(limit=100)
    return {row["doc_id"]: service.documents.get(row["doc_id"]) for row in rows}


def test_feed_polls_store_new_and_updated_items_and_respect_validators(service):
    from rag.watch import Watcher

    with FeedServer() as server:
        first = [
            {"guid": "urn:loopback:flood", "title": "Valley flooded", "date": "Tue, 07 May 2024 08:00:00 GMT",
             "link": server.url("/news/flood"), "content": f"<p>{FLOOD}</p>"},
            {"guid": "urn:loopback:library", "title": "Library reopens", "date": "Wed, 08 May 2024 09:00:00 GMT",
             "link": server.url("/news/library"), "summary": "The library reopened."},
        ]
        server.routes["/feed.rss"] = Route(rss(first), etag='"v1"')
        server.routes["/news/library"] = Route(article_page("Library reopens", ARTICLE), content_type="text/html")
        watcher = Watcher(service)
        source = watcher.add(server.url("/feed.rss"), 60)

        # Poll 1: both items; the summary-only one gets its article page, extracted without the page chrome.
        result = watcher.poll(source.id)
        assert (result.status, result.added, result.articles_fetched) == ("updated", 2, 1), result
        documents = stored(service)
        assert set(documents) == {"urn:loopback:flood", "urn:loopback:library"}
        library = documents["urn:loopback:library"]
        assert "19 million euros" in library["text"] and "Home | World" not in library["text"]
        assert library["date"] == "2024-05-08" and library["source"] == "Loopback News"
        assert library["url"] == server.url("/news/library")
        feed_request = dict(server.requests)["/feed.rss"]
        assert feed_request["user-agent"].startswith("newsrag-watch/") and "if-none-match" not in feed_request

        # Poll 2: unchanged feed -> a conditional GET answered 304; nothing fetched or stored again.
        requests_before = len(server.requests)
        result = watcher.poll(source.id)
        assert result.status == "not modified" and result.added == result.replaced == 0
        assert server.requests[requests_before:] and server.requests[-1][1].get("if-none-match") == '"v1"'
        assert server.paths()[requests_before:] == ["/feed.rss"]

        # Poll 3: one item updated under the same guid, one new, one unchanged.
        changed = [dict(first[0]), dict(first[1]),
                   {"guid": "urn:loopback:bridge", "title": "Bridge approved", "date": "Thu, 09 May 2024 10:00:00 GMT",
                    "link": server.url("/news/bridge"), "content": f"<p>{BRIDGE}</p>"}]
        changed[0]["content"] = f"<p>{FLOOD} Updated: the river peaked at 6.2 metres on Wednesday night.</p>"
        server.routes["/feed.rss"] = Route(rss(changed), etag='"v2"')
        result = watcher.poll(source.id)
        assert (result.added, result.replaced, result.unchanged) == (1, 1, 1), result
        assert result.articles_fetched == 0  # the unchanged summary item is not fetched again
        documents = stored(service)
        assert len(documents) == 3 and "6.2 metres" in documents["urn:loopback:flood"]["text"]

        # The state is in the index folder: a new watcher (a restarted server) resumes with the validators.
        restarted = Watcher(service)
        kept = restarted.sources.get(source.id)
        assert kept.etag == '"v2"' and kept.items_added == 3 and kept.items_replaced == 1
        assert restarted.poll(source.id).status == "not modified"
        assert len(stored(service)) == 3

        # Search finds the new article with its date, as any ingested one.
        hits = service.search("pedestrian bridge harbour cost", k=1, as_of="2024-05-10")
        assert hits and hits[0].doc_id == "urn:loopback:bridge" and hits[0].date == "2024-05-09"


def test_feed_errors_back_off_and_harm_nothing(service):
    from rag.watch import Watcher

    with FeedServer() as server:
        server.routes["/feed.rss"] = Route(rss([{"guid": "urn:t:1", "title": "Night train", "date": "Fri, 10 May 2024 06:00:00 GMT",
                                                  "link": server.url("/t1"), "content": f"<p>{TRAIN}</p>"}]))
        watcher = Watcher(service)
        source = watcher.add(server.url("/feed.rss"), 30)
        assert watcher.poll(source.id).added == 1

        # A 500: an error, recorded, with the next poll pushed back; the stored document stays.
        server.routes["/feed.rss"] = Route(b"oops", status=500, content_type="text/plain")
        before = time.time()
        result = watcher.poll(source.id)
        assert result.status == "error" and "HTTP 500" in result.error
        state = watcher.sources.get(source.id)
        assert state.failures == 1 and "HTTP 500" in state.last_error
        assert before + 30 <= state.next_poll <= time.time() + 60 + 1  # interval x 2^1, jittered to [0.5, 1]
        result = watcher.poll(source.id)
        assert watcher.sources.get(source.id).failures == 2
        assert watcher.sources.get(source.id).next_poll >= before + 60  # backs off further

        # Malformed, slow, too large: each a one-line error; nothing stored is lost.
        server.routes["/feed.rss"] = Route(b"<html><body>not a feed at all</body></html>", content_type="text/html")
        assert "not an RSS, Atom or JSON Feed" in watcher.poll(source.id).error
        server.routes["/feed.rss"] = Route(rss([]), delay=4.0)
        started = time.monotonic()
        assert "within 2 s" in watcher.poll(source.id).error
        assert time.monotonic() - started < 3.9
        watcher.settings.max_feed_mb = 0.001
        server.routes["/feed.rss"] = Route(rss([{"guid": f"urn:big:{n}", "title": "x", "date": "Fri, 10 May 2024 06:00:00 GMT",
                                                  "content": TRAIN} for n in range(10)]), gzip=True)
        assert "1,000 bytes" in watcher.poll(source.id).error
        watcher.settings.max_feed_mb = 10.0
        assert list(stored(service)) == ["urn:t:1"]

        # A 429 with Retry-After is honoured.
        server.routes["/feed.rss"] = Route(b"", status=429, headers={"Retry-After": "3600"})
        watcher.poll(source.id)
        assert watcher.sources.get(source.id).next_poll >= time.time() + 3590

        # Recovery resets the failure count and schedules at the interval.
        server.routes["/feed.rss"] = Route(rss([{"guid": "urn:t:1", "title": "Night train", "date": "Fri, 10 May 2024 06:00:00 GMT",
                                                  "link": server.url("/t1"), "content": f"<p>{TRAIN}</p>"}]))
        result = watcher.poll(source.id)
        assert result.status == "not modified" and result.unchanged == 1
        state = watcher.sources.get(source.id)
        assert state.failures == 0 and state.last_error == "" and state.next_poll <= time.time() + 31


def test_redirect_gzip_json_feed_and_article_fallback(service):
    from rag.watch import Watcher

    with FeedServer() as server:
        # A redirect to a JSON Feed; an Atom feed sent gzip-compressed; an article page that is missing.
        json_feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Loopback JSON",
                     "items": [{"id": "https://127.0.0.1/bridge", "url": server.url("/bridge"), "title": "Bridge approved",
                                "date_published": "2024-05-09T10:00:00Z", "content_html": f"<p>{BRIDGE}</p>"},
                               {"id": "https://127.0.0.1/gone", "url": server.url("/gone"), "title": "Library reopens",
                                "date_published": "2024-05-08T10:00:00Z",
                                "summary": "The national library reopened its reading room after a renovation."}]}
        server.routes["/old-feed"] = Route(status=301, location="/feed.json", content_type="text/plain")
        server.routes["/feed.json"] = Route(json.dumps(json_feed).encode(), content_type="application/feed+json")
        server.routes["/atom.xml"] = Route(atom([{"guid": "tag:loopback,2024:flood", "title": "Valley flooded",
                                                   "date": "2024-05-07T08:00:00Z", "content": f"<p>{FLOOD}</p>"}]),
                                           content_type="application/atom+xml", gzip=True)
        watcher = Watcher(service)
        moved = watcher.add(server.url("/old-feed"), 60)
        zipped = watcher.add(server.url("/atom.xml"), 60)

        result = watcher.poll(moved.id)
        assert (result.status, result.added, result.articles_fetched) == ("updated", 2, 1), result
        assert any("/gone" in p and "kept the summary" in p for p in result.problems)
        documents = stored(service)
        assert documents["https://127.0.0.1/gone"]["text"].startswith("The national library reopened")
        assert documents["https://127.0.0.1/bridge"]["date"] == "2024-05-09"
        assert server.paths()[:2] == ["/old-feed", "/feed.json"]

        result = watcher.poll(zipped.id)
        assert result.added == 1 and "1,200 homes" in stored(service)["tag:loopback,2024:flood"]["text"]
        assert dict(server.requests)["/atom.xml"]["accept-encoding"].startswith("gzip")


def test_a_source_removed_by_another_process_stays_removed(tmp_path):
    from rag.watch.sources import SourceList, UnknownSourceError

    server_side, command_line = SourceList(tmp_path), SourceList(tmp_path)
    feed, _ = server_side.add("http://127.0.0.1:9/feed.rss", 60)
    assert [s.id for s in command_line.all()] == [feed.id]  # sees what the other added
    command_line.remove(feed.id)
    polled = dataclasses.replace(feed, polls=1)
    server_side.update(polled)  # a poll that finished after the removal does not bring it back
    assert server_side.all() == [] and SourceList(tmp_path).all() == []
    with pytest.raises(UnknownSourceError):
        server_side.get(feed.id)


def test_article_links_to_private_addresses_are_refused_for_public_feeds():
    from rag.watch.fetch import FetchError, Fetcher, is_private

    assert is_private("http://127.0.0.1:9/x") and is_private("http://localhost/") and is_private("http://10.1.2.3/")
    assert is_private("http://169.254.169.254/latest/meta-data") and not is_private("http://8.8.8.8/feed")
    fetcher = Fetcher(2.0, "test")
    with pytest.raises(FetchError, match="private or loopback"):
        fetcher.get("http://127.0.0.1:9/secret", 1000, allow_private=False)
    with pytest.raises(FetchError, match="only http and https"):
        fetcher.get("file:///etc/passwd", 1000)


def test_folder_source_and_cli_watch_once(tmp_path, settings, seed_copy):
    """`rag watch SOURCE --once` in a real process: a folder and a feed, listed and removed after."""
    index = tmp_path / "watched"
    with FeedServer() as server:
        server.routes["/feed.rss"] = Route(rss([{"guid": "urn:t:train", "title": "Night train",
                                                  "date": "Fri, 10 May 2024 06:00:00 GMT", "content": f"<p>{TRAIN}</p>"}]))
        done = run_cli("watch", str(seed_copy), server.url("/feed.rss"), "--once", "--index", str(index), process=True)
        assert done.returncode == 0, done.stderr
        assert "updated: 1 added" in done.stdout and f"{server.url('/feed.rss')}: updated: 1 added" in done.stdout
        again = run_cli("watch", "--once", "--index", str(index))
        assert again.returncode == 0 and "not modified: 0 added" in again.stdout
        listed = run_cli("watch", "--list", "--json", "--index", str(index))
        sources = json.loads(listed.stdout)["sources"]
        assert {s["kind"] for s in sources} == {"folder", "feed"} and all(s["last_status"] for s in sources)
        feed = next(s for s in sources if s["kind"] == "feed")
        assert feed["items_added"] == 1 and feed["polls"] == 2
        removed = run_cli("watch", "--remove", feed["id"], "--index", str(index))
        assert removed.returncode == 0 and "stays in the index" in removed.stdout.replace("stay ", "stays ")
        stats = json.loads(run_cli("stats", "--json", "--index", str(index)).stdout)
        assert stats["documents"] == 2  # the seed article and the train item
        bad = run_cli("watch", "ftp://example.org/feed", "--once", "--index", str(index))
        assert bad.returncode == 2 and "only http(s) feeds and local folders" in bad.stderr


def test_realtimeqa_articles_as_a_summary_feed_with_article_pages(service):
    """Twelve RealTime QA articles (read where they lie) served as an RSS feed of summaries, each linking
    to an HTML page of the article: every item is stored with the page's full text, title and date."""
    import gzip
    import html as html_lib
    from email.utils import format_datetime
    from datetime import datetime, timezone
    from itertools import islice

    from rag.watch import Watcher

    path = shared_data("realtimeqa/articles_2022_2024.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        articles = [a for a in (json.loads(line) for line in islice(handle, 200))
                    if a.get("publish_date") and 2000 < len(a.get("text", "")) < 12000][:12]
    assert len(articles) == 12
    with FeedServer() as server:
        items = []
        for n, article in enumerate(articles):
            paragraphs = [html_lib.escape(p) for p in article["text"].split("\n") if p.strip()]
            server.routes[f"/story/{n}"] = Route(article_page(html_lib.escape(article["title"]), paragraphs),
                                                 content_type="text/html; charset=utf-8")
            day = datetime.strptime(article["publish_date"], "%Y/%m/%d").replace(tzinfo=timezone.utc)
            items.append({"guid": f"urn:rtqa:{article['doc_id']}", "title": html_lib.escape(article["title"]),
                          "date": format_datetime(day, usegmt=True), "link": server.url(f"/story/{n}"),
                          "summary": html_lib.escape(article["text"][:200])})
        server.routes["/rtqa.rss"] = Route(rss(items, title="RealTime QA replay"))
        watcher = Watcher(service)
        result = watcher.poll(watcher.add(server.url("/rtqa.rss"), 60).id)
        assert (result.added, result.articles_fetched, result.problems) == (12, 12, []), result
        documents = stored(service)
        for article in articles:
            document = documents[f"urn:rtqa:{article['doc_id']}"]
            assert document["date"] == article["publish_date"].replace("/", "-")
            longest = max(article["text"].split("\n"), key=len)
            assert " ".join(longest.split()) in " ".join(document["text"].split())  # the page, not the summary
            assert len(document["text"]) > 0.8 * len(article["text"].strip())
