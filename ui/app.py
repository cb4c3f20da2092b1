"""The Gradio chat UI: answers stream in with their cited quotes; a corpus tab uploads, lists and deletes
documents and manages watched feeds; a timeline tab shows a story's articles by date.

The UI is thin: every action goes through `rag.service.IndexService` (the same answer path, ingestion
and deletion as the CLI and the API) and `ui.render` (escaped text only). Chat and corpus events run
in separate Gradio queues, and the service answers from a snapshot while an upload is ingested, so
questions keep being answered during an upload.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no outside calls

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402

from rag import timeframe  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.api.limits import Limits  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.ingest import READERS  # noqa: E402
from rag.service import IndexService  # noqa: E402
from rag.types import Answer, SearchFilters  # noqa: E402
from ui.render import (  # noqa: E402
    CSS,
    SOURCES_PLACEHOLDER,
    answer_markdown,
    draft_markdown,
    error_markdown,
    markdown_text,
    sources_html,
    timeline_html,
)

DOCUMENT_COLUMNS = ["doc_id", "title", "date", "source", "chunks"]
UPLOAD_COLUMNS = ["file", "result", "added", "unchanged", "replaced", "chunks", "problems"]
FEED_COLUMNS = ["id", "url", "every (s)", "last poll", "status", "last error", "added", "replaced"]
PAGE_SIZE = 200
# A bug (anything not a RagError) while answering: the bubble says so instead of hanging on "▌", and
# the traceback goes to the server's log, not to the browser.
INTERNAL_ERROR = "⚠️ The answer failed with an internal error; the server's log has the details."

log = logging.getLogger(__name__)


def build_app(service: IndexService) -> gr.Blocks:
    """The Blocks app over a service."""
    settings = service.settings
    flag_unsupported = settings.answer.unsupported == "flag"
    limits = Limits(settings.server)

    def respond(message: str, chat: list, history: list, as_of, since: str, until: str, source: str, k: float,
                backend: str):
        question = (message or "").strip()
        if not question:
            yield "", chat, history, gr.skip()
            return
        try:
            limits.question(question, "the question")
        except RagError as exc:  # the same limit as the API's, with the same message
            chat = chat + [{"role": "user", "content": markdown_text(question[:200]) + "…"},
                           {"role": "assistant", "content": error_markdown(exc)}]
            yield "", chat, history, gr.skip()
            return
        chat = chat + [{"role": "user", "content": markdown_text(question)},
                       {"role": "assistant", "content": "▌"}]
        yield "", chat, history, SOURCES_PLACEHOLDER
        try:
            filters = SearchFilters((since or "").strip() or None, (until or "").strip() or None, (source or "").strip() or None)
            answerer = service.answerer(backend or None)
            draft, answer = "", None
            for item in answerer.stream(question, history=history, k=int(k), filters=filters,
                                        as_of=str(as_of or "").strip()[:10] or None):
                if isinstance(item, Answer):
                    answer = item
                else:
                    draft += item.text
                    chat[-1] = {"role": "assistant", "content": draft_markdown(draft)}
                    yield "", chat, history, gr.skip()
            texts = {c.doc_id: (service.documents.get(c.doc_id) or {}).get("text", c.quote)
                     for c in answer.citations}
            shown, sources = answer_markdown(answer, flag_unsupported), sources_html(answer, texts)
        except RagError as exc:
            chat[-1] = {"role": "assistant", "content": error_markdown(exc)}
            yield "", chat, history, SOURCES_PLACEHOLDER
            return
        except Exception:  # noqa: BLE001 - a bug: logged with its traceback, shown as a failed answer
            log.exception("answering a question failed: %r", question[:200])
            chat[-1] = {"role": "assistant", "content": INTERNAL_ERROR}
            yield "", chat, history, SOURCES_PLACEHOLDER
            return
        chat[-1] = {"role": "assistant", "content": shown}
        history = history + [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
        yield "", chat, history, sources

    def clear():
        return [], [], SOURCES_PLACEHOLDER

    def upload(files: list[str] | None, progress=gr.Progress()):
        rows = []
        paths = [Path(f) for f in (files or [])]
        for done, path in enumerate(paths):
            progress((done, len(paths)), desc=f"ingesting file {done + 1} of {len(paths)}")
            try:
                report = service.ingest([path])
            except RagError as exc:  # the index is locked by another writer, say
                raise gr.Error(exc.for_ui(), print_exception=False) from None
            problems = "; ".join(f"line {i.line}: {i.message}" if i.line else i.message for i in report.issues)
            result = "failed" if report.failed and not report.added + report.replaced else "ok"
            rows.append([path.name, result, report.added, report.unchanged + report.duplicates, report.replaced,
                         report.chunks, problems])
        summary = ("Ingested " + ", ".join(f"{markdown_text(row[0])} ({row[1]})" for row in rows) + "."
                   if rows else "Choose files to upload first.")
        return rows, summary, *list_documents(""), stats_markdown(), gr.update(choices=source_choices())

    def list_documents(query: str):
        documents, total = service.documents.page(limit=PAGE_SIZE, query=(query or "").strip())
        rows = [[d["doc_id"], d["title"], d["date"] or "", d["source"], d["n_chunks"]] for d in documents]
        shown = f"{len(rows)} of {total} document(s)" + (f" matching “{query.strip()}”" if query and query.strip() else "")
        return rows, shown

    def delete(doc_ids: str, query: str):
        wanted = [d for d in (doc_ids or "").replace(",", " ").split() if d]
        if not wanted:
            message = "Enter or select a document id to delete."
        else:
            try:
                deleted = service.documents.delete(wanted)
            except RagError as exc:
                raise gr.Error(exc.for_ui(), print_exception=False) from None
            missing = sorted(set(wanted) - set(deleted))
            message = f"Deleted {len(deleted)} document(s)." + (f" Not found: {', '.join(missing)}." if missing else "")
        return message, "", *list_documents(query), stats_markdown(), gr.update(choices=source_choices())

    def select_row(rows, event: gr.SelectData):
        return event.row_value[0] if event.row_value else ""

    def stats_markdown() -> str:
        stats = service.index.stats()
        sources = ", ".join(f"{markdown_text(name or '(none)')} ({count})" for name, count in stats["top_sources"].items())
        return (
            f"**{stats['documents']}** documents, **{stats['chunks']}** passages, {stats['files']} files; "
            f"dates {stats['first_date'] or '-'} to {stats['last_date'] or '-'}; "
            f"vector index {stats['vector_index']}, {stats['size_bytes'] / 1e6:.1f} MB on disk; "
            f"embedding model `{markdown_text(str(stats.get('embedding_model', '')))}`.\n\nSources: {sources or '-'}"
        )

    def source_choices() -> list[str]:
        return [""] + service.documents.sources()

    # -- watched feeds --------------------------------------------------------------------------
    def feed_rows() -> list[list]:
        import time

        rows = []
        for feed in service.watcher.sources.all():
            polled = time.strftime("%Y-%m-%d %H:%M", time.localtime(feed.last_poll)) if feed.last_poll else "never"
            rows.append([feed.id, feed.url, f"{feed.interval_seconds:g}", polled, feed.last_status or "-",
                         feed.last_error, feed.items_added, feed.items_replaced])
        return rows

    def poll_feed(url: str, query: str, add: bool = False):
        """Poll a watched feed now (after adding it, with `add`, so its articles show up at once)."""
        key = (url or "").strip()
        try:
            if add:
                key = service.watcher.add(key, from_client=True).id
            message = markdown_text(service.watcher.poll(key).line())
        except RagError as exc:
            message = error_markdown(exc)
        return message, feed_rows(), *list_documents(query), stats_markdown()

    def watch_feed(url: str, query: str):
        return poll_feed(url, query, add=True)

    def unwatch_feed(url: str):
        try:
            feed = service.watcher.remove((url or "").strip())
            message = f"Stopped watching {markdown_text(feed.url)}; its articles stay in the corpus."
        except RagError as exc:
            message = error_markdown(exc)
        return message, feed_rows()

    def select_feed(rows, event: gr.SelectData):
        return event.row_value[1] if event.row_value else ""

    # -- timeline -------------------------------------------------------------------------------
    def show_timeline(query: str, as_of):
        import pandas as pd

        query = (query or "").strip()
        empty = pd.DataFrame({"date": [], "articles": []})
        if not query:
            return empty, "", "Type what the story is about."
        try:
            limits.question(query, "the query")
            timeline = service.timeline(query, as_of=str(as_of or "").strip()[:10] or None)
        except RagError as exc:
            return empty, "", error_markdown(exc)
        days = pd.DataFrame({"date": [day for day, _ in timeline.per_day],
                             "articles": [count for _, count in timeline.per_day]})
        summary = (f"**{len(timeline.entries)}** article(s) about “{markdown_text(query)}”, oldest first"
                   + (f" (as of {timeline.as_of})" if timeline.as_of else "") + ".")
        return days, timeline_html(timeline), summary

    with gr.Blocks(title="News assistant", analytics_enabled=False) as app:
        gr.Markdown("## News assistant\nAnswers quote and cite the news passages they rest on, "
                    "or say that the corpus does not answer.")
        history = gr.State([])
        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(label="Conversation", height=480, allow_tags=False, elem_id="chat", latex_delimiters=[],
                                      feedback_options=None, buttons=["copy", "copy_all"])
                    question = gr.Textbox(placeholder="Ask about the news… (Enter to send)", show_label=False,
                                          elem_id="question", autofocus=True)
                    with gr.Row():
                        send = gr.Button("Send", variant="primary", elem_id="send")
                        new_chat = gr.Button("New conversation", elem_id="new-chat")
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="sources")
            with gr.Accordion("Options", open=False):
                with gr.Row():
                    # The day questions are asked as of: nothing dated later is used, "last week" counts back from it.
                    as_of = gr.DateTime(label="As of (empty: today)", include_time=False, type="string", elem_id="as-of")
                    since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", elem_id="since")
                    until = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", elem_id="until")
                    source = gr.Dropdown(source_choices(), value="", label="Source", allow_custom_value=True,
                                         elem_id="source")
                    k = gr.Slider(1, 10, value=settings.answer.k, step=1, label="Passages", elem_id="k")
                    backend = gr.Dropdown(service.available_backends(), value=settings.llm.backend,
                                          label="Generator", elem_id="backend")
        with gr.Tab("Corpus"):
            stats = gr.Markdown(stats_markdown(), elem_id="stats")
            with gr.Row():
                files = gr.File(file_count="multiple", label=f"Upload articles ({' '.join(READERS.names())}, or any of them .gz)",
                                elem_id="upload")
                with gr.Column():
                    ingest_button = gr.Button("Ingest", variant="primary", elem_id="ingest")
                    upload_summary = gr.Markdown(elem_id="upload-summary")
            upload_results = gr.Dataframe(headers=UPLOAD_COLUMNS, label="Per-file result", interactive=False,
                                          elem_id="upload-results", wrap=True)
            with gr.Row():
                doc_query = gr.Textbox(label="Search titles or exact id", elem_id="doc-query")
                refresh = gr.Button("Search", elem_id="doc-search")
            shown = gr.Markdown(elem_id="doc-count")
            documents = gr.Dataframe(headers=DOCUMENT_COLUMNS, label="Documents (newest first; select a row to delete it)",
                                     interactive=False, elem_id="documents", wrap=True)
            with gr.Row():
                delete_ids = gr.Textbox(label="Document id(s) to delete", elem_id="delete-ids")
                delete_button = gr.Button("Delete", variant="stop", elem_id="delete")
            delete_result = gr.Markdown(elem_id="delete-result")
            gr.Markdown("### Watched feeds\nRSS, Atom or JSON Feed URLs, polled in the background; new and "
                        "updated items are added to the corpus.")
            feeds = gr.Dataframe(value=feed_rows(), headers=FEED_COLUMNS, label="Feeds (select a row to poll or remove it)",
                                 interactive=False, elem_id="feeds", wrap=True)
            with gr.Row():
                feed_url = gr.Textbox(label="Feed URL", placeholder="https://example.org/rss.xml", elem_id="feed-url")
                feed_add = gr.Button("Watch", variant="primary", elem_id="feed-add")
                feed_poll = gr.Button("Poll now", elem_id="feed-poll")
                feed_remove = gr.Button("Stop watching", variant="stop", elem_id="feed-remove")
            feed_result = gr.Markdown(elem_id="feed-result")
        with gr.Tab("Timeline"):
            with gr.Row():
                timeline_query = gr.Textbox(label="Story", placeholder="e.g. Artemis moon rocket launch", scale=3,
                                            elem_id="timeline-query")
                timeline_as_of = gr.DateTime(label="As of (empty: today)", include_time=False, type="string",
                                             elem_id="timeline-as-of")
                timeline_go = gr.Button("Show timeline", variant="primary", elem_id="timeline-go")
            timeline_summary = gr.Markdown(elem_id="timeline-summary")
            timeline_plot = gr.BarPlot(x="date", y="articles", title="Articles per day", elem_id="timeline-plot",
                                       height=220)
            timeline_list = gr.HTML(elem_id="timeline")

        chat_inputs = [question, chat, history, as_of, since, until, source, k, backend]
        chat_outputs = [question, chat, history, sources]
        question.submit(respond, chat_inputs, chat_outputs, concurrency_id="chat", concurrency_limit=4)
        send.click(respond, chat_inputs, chat_outputs, concurrency_id="chat", concurrency_limit=4)
        new_chat.click(clear, None, [chat, history, sources], queue=False)
        chat.clear(clear, None, [chat, history, sources], queue=False)
        corpus_outputs = [documents, shown, stats, source]
        ingest_button.click(upload, files, [upload_results, upload_summary, *corpus_outputs],
                            concurrency_id="write", concurrency_limit=1)
        refresh.click(list_documents, doc_query, [documents, shown], queue=False)
        doc_query.submit(list_documents, doc_query, [documents, shown], queue=False)
        documents.select(select_row, documents, delete_ids, queue=False)
        delete_button.click(delete, [delete_ids, doc_query], [delete_result, delete_ids, *corpus_outputs],
                            concurrency_id="write", concurrency_limit=1)
        feed_outputs = [feed_result, feeds, documents, shown, stats]
        feed_add.click(watch_feed, [feed_url, doc_query], feed_outputs, concurrency_id="write", concurrency_limit=1)
        feed_poll.click(poll_feed, [feed_url, doc_query], feed_outputs, concurrency_id="write", concurrency_limit=1)
        feed_remove.click(unwatch_feed, feed_url, [feed_result, feeds], queue=False)
        feeds.select(select_feed, feeds, feed_url, queue=False)
        timeline_outputs = [timeline_plot, timeline_list, timeline_summary]
        timeline_go.click(show_timeline, [timeline_query, timeline_as_of], timeline_outputs, concurrency_id="chat")
        timeline_query.submit(show_timeline, [timeline_query, timeline_as_of], timeline_outputs, concurrency_id="chat")
        # On each page load: the documents, and the feeds as the background polls left them.
        app.load(lambda: (*list_documents(""), feed_rows()), None, [documents, shown, feeds], queue=False)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Load the index and the models, then serve the UI until interrupted.

    The Gradio app is mounted in a FastAPI app of our own, so the same Host allow-list and
    cross-site checks as the API's apply to every Gradio route (its /gradio_api/ calls included), and
    `server.ui_auth` logins (Gradio's auth) guard all of it.
    """
    import uvicorn
    from fastapi import FastAPI

    from rag.api.guard import guard

    service = IndexService(settings)
    service.generator()  # load the model now: the first question should not wait for it
    service.checker.tagger.warm()  # and the NER model the answer path uses
    timeframe.warm()  # and dateparser, which reads the questions' dates
    if settings.watch.enabled:
        service.watcher.start()  # poll the index's watched feeds and folders in the background
    blocks = build_app(service).queue(default_concurrency_limit=1)
    users = [tuple(pair.strip().split(":", 1)) for pair in settings.server.ui_auth.split(",") if pair.strip()]
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    guard(app, settings.server, host)
    app = gr.mount_gradio_app(app, blocks, path="/", auth=users or None, css=CSS, footer_links=[], show_error=True,
                              max_file_size=int(settings.server.max_upload_mb * 1024 * 1024))
    print(f"chat UI on http://{host}:{port}  (index {settings.index_dir}/, "
          f"{service.documents.counts()['documents']} documents, logins {'on' if users else 'off'})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
