"""The `rag` command: ingest, search, ask, timeline, watch, delete, stats, ui, serve and eval over an index directory.

A thin front end: every command builds Settings, opens the index and calls `rag/`. An error the user
can act on (a `rag.errors.RagError`) is one line on stderr and the exit code of its kind: 2 for a bad
setting, argument or missing index, 69 for a backend that is down (an LLM endpoint, Milvus), 75 for
a busy one; 1 means some files failed to ingest (the rest went in).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sqlite3
import sys
import textwrap
from pathlib import Path

from rag import timeframe
from rag.config import ConfigError, Settings
from rag.errors import RagError
from rag.generate import GENERATORS
from rag.index import NewsIndex
from rag.ingest import FieldMap
from rag.retrieve import Retriever
from rag.store import VECTOR_STORES
from rag.terminal import DraftView, safe_output
from rag.types import Answer, Hit, QueryError, SearchFilters


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--index", help="index directory (default: $RAG_INDEX or index/)")
    common.add_argument("--config", help="TOML config file (default: $RAG_CONFIG or ./rag.toml)")
    common.add_argument("--store", choices=VECTOR_STORES.names(), help="vector store (default: store.backend, faiss)")
    common.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="assignments",
                        help="any setting, after the config file and environment (repeatable), "
                             "e.g. --set store.milvus.uri=http://127.0.0.1:19530 --set retrieval.k=8")

    parser = argparse.ArgumentParser(prog="rag", description="Search and ask a news corpus, with citations.")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", parents=[common], help="add files or folders to the index")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--field", action="append", metavar="NAME=COLUMN",
                        help="read document field NAME from record column COLUMN (repeatable)")
    ingest.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: when stderr is a terminal)")
    ingest.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ingest.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="read, chunk and embed on Ray Data workers: a local runtime, or the cluster at ADDRESS")

    search = commands.add_parser("search", parents=[common], help="hybrid search; no QUERY starts a prompt")
    search.add_argument("query", nargs="?", metavar="QUERY")
    search.add_argument("--k", type=int, default=None, help="number of results (default retrieval.k)")
    add_filter_arguments(search)
    search.add_argument("--json", action="store_true", help="print one JSON object")

    ask = commands.add_parser("ask", parents=[common], help="answer a question with verified citations")
    ask.add_argument("question", nargs="?", metavar="QUESTION", help="omit for an interactive chat")
    ask.add_argument("--k", type=int, default=None, help="passages to retrieve (default answer.k)")
    ask.add_argument("--llm", choices=GENERATORS.names(), help="generator backend (default: llm.backend)")
    add_filter_arguments(ask)
    ask.add_argument("--json", action="store_true", help="print one JSON object")

    delete = commands.add_parser("delete", parents=[common], help="remove documents by id or source")
    delete.add_argument("doc_ids", nargs="*", metavar="DOC_ID")
    delete.add_argument("--source", help="remove every document of this source")

    ui = commands.add_parser("ui", parents=[common], help="open the chat UI in the browser (Gradio)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ui.add_argument("--insecure", action="store_true",
                    help="allow a non-loopback address without logins (server.ui_auth / RAG_SERVER_UI_AUTH)")

    serve = commands.add_parser("serve", parents=[common], help="the HTTP API (FastAPI; OpenAI-compatible chat)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback address without an API key (RAG_API_KEY)")

    evaluate = commands.add_parser("eval", parents=[common], help="measure retrieval and answer grounding")
    evaluate.add_argument("datasets", nargs="+", metavar="DATASET",
                          help="realtimeqa, clapnq, qags, or a JSONL file of questions (see eval/README.md)")
    evaluate.add_argument("--corpus", action="append", metavar="PATH", help="files or folders a JSONL set is about")
    evaluate.add_argument("--limit", type=int, help="at most N questions (summaries for qags) per data set")
    evaluate.add_argument("--llm", choices=GENERATORS.names(), help="generator backend (default: llm.backend)")
    evaluate.add_argument("--k", type=int, help="passages per answer (default answer.k)")
    evaluate.add_argument("--judge", default="builtin", help="builtin (default), nli:PATH or llm[:BACKEND]")
    evaluate.add_argument("--data", metavar="DIR", help="the public data folder (default $RAG_SHARED_DATA or ../shared/data)")
    evaluate.add_argument("--out", metavar="DIR", help="run folder (default eval/runs/TIMESTAMP)")
    evaluate.add_argument("--compare", metavar="RUN_DIR", help="print and report the deltas against an earlier run")
    evaluate.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)

    watch = commands.add_parser("watch", parents=[common], help="keep the index current from feeds and folders")
    watch.add_argument("sources", nargs="*", metavar="SOURCE",
                       help="RSS/Atom/JSON Feed URLs or folders to add (kept in the index); none: the ones kept")
    watch.add_argument("--once", action="store_true", help="poll each source one time and exit (for cron and tests)")
    watch.add_argument("--interval", type=float, metavar="SECONDS", help="poll interval of sources added now "
                       "(default watch.interval_seconds)")
    watch.add_argument("--list", action="store_true", help="list the watched sources and their last poll, then exit")
    watch.add_argument("--remove", action="append", default=[], metavar="ID_OR_URL",
                       help="stop watching a source (repeatable); what it brought in stays")
    watch.add_argument("--json", action="store_true", help="print results as JSON")

    timeline = commands.add_parser("timeline", parents=[common], help="the articles about a story, by date")
    timeline.add_argument("query", metavar="QUERY")
    timeline.add_argument("--k", type=int, default=None, help="passages to consider (default 40)")
    add_filter_arguments(timeline)
    timeline.add_argument("--json", action="store_true", help="print one JSON object")

    stats = commands.add_parser("stats", parents=[common], help="what the index holds")
    stats.add_argument("--json", action="store_true")
    return parser


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """--as-of/--since/--until/--source/--recent, shared by the commands that retrieve."""
    parser.add_argument("--as-of", metavar="DATE", dest="as_of",
                        help="ask as on DATE (default today): nothing dated later is used, and 'last week' "
                             "or 'in March' are read from it")
    parser.add_argument("--since", metavar="DATE", help="only articles dated on or after DATE")
    parser.add_argument("--until", metavar="DATE", help="only articles dated on or before DATE")
    parser.add_argument("--source", metavar="NAME", help="only articles from this source")
    parser.add_argument("--recent", action="store_true", help="favour recent articles")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rag` console script."""
    args = build_parser().parse_args(argv)
    with safe_output():  # nothing printed from a document or a model can drive the terminal
        return _run(args)


def _run(args) -> int:
    settings = None
    try:
        settings = Settings.load(args.config)
        if args.index:
            settings.index_dir = Path(args.index)
        if args.store:
            settings.update({"store": {"backend": args.store}}, origin="command line")
        for assignment in args.assignments:
            settings.set(assignment)
        return COMMANDS[args.command](args, settings)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, sqlite3.OperationalError) as exc:
        if not out_of_space(exc):
            raise
        where = f"{settings.index_dir}/" if settings else "the index"
        print(f"error: cannot write to {where}: the disk is full or a file size limit was reached "
              f"({exc}); everything committed before is kept, and the same command resumes once there is room",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def out_of_space(exc: BaseException) -> bool:
    """Whether a write failed for lack of room (a full disk, a quota, a file size limit)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    # SQLite reports a write it could not complete as "disk I/O error" or "database or disk is full"
    return any(text in str(exc) for text in ("disk I/O error", "disk is full"))


def cmd_ingest(args, settings: Settings) -> int:
    from rag.ingest.pipeline import IngestPipeline

    try:
        fields = FieldMap.parse(args.field)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    missing = [p for p in args.paths if not Path(p).exists()]
    existing = [p for p in args.paths if Path(p).exists()]
    with NewsIndex(settings, writable=True, create=True) as index:
        if args.ray is None:
            report = IngestPipeline(index, fields, progress=args.progress).run(existing)
        else:
            from rag.ingest.distributed import RayIngestPipeline

            report = RayIngestPipeline(index, fields, args.progress, address=args.ray or None).run(existing)
    for path in missing:
        report.issues.insert(0, _missing(path))
    for issue in report.issues:
        print(f"error: {issue}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(report.summary())
    return 1 if report.failed else 0


def _missing(path: str):
    from rag.types import IngestIssue

    return IngestIssue(path, "no such file or directory")


def cmd_search(args, settings: Settings) -> int:
    filters = SearchFilters(args.since, args.until, args.source)
    with NewsIndex(settings) as index:
        retriever = Retriever(index)
        if args.query is None:
            return _search_prompt(retriever, args, filters)
        hits = retriever.run(args.query, k=args.k, filters=filters, favour_recent=args.recent, as_of=args.as_of)
    if args.json:
        print(json.dumps({"query": args.query, "hits": [h.to_json() for h in hits]}, ensure_ascii=False))
    else:
        print(format_hits(hits))
    return 0


def _search_prompt(retriever: Retriever, args, filters: SearchFilters) -> int:
    """Interactive search: one query per line until EOF or `quit`."""
    counts = retriever.index.counts()
    print(f"Searching {counts['documents']} documents ({counts['chunks']} passages) in {retriever.index.directory}/."
          " Type a question, or 'quit'.")
    retriever.index.embedder.model  # load before the first question, not during it
    for query in prompt_lines("search> "):
        try:
            print(format_hits(retriever.run(query, k=args.k, filters=filters, favour_recent=args.recent, as_of=args.as_of)))
        except RagError as exc:
            print(f"error: {exc}")
    return 0


def prompt_lines(prompt: str):
    """Non-empty lines typed at `prompt`, until end of input or quit/exit."""
    while True:
        try:
            line = input(prompt).strip()
        except EOFError:
            print()
            return
        if line.lower() in ("quit", "exit", ":q"):
            return
        if line:
            yield line


def format_hits(hits: list[Hit]) -> str:
    """Readable results: rank, score, title, date, source, url, then the passage."""
    if not hits:
        return "No matching passages."
    blocks = []
    for hit in hits:
        head = f"{hit.rank}. [{hit.score:.4f}] {hit.title or hit.doc_id}" + (f" ({hit.byline})" if hit.byline else "")
        if hit.url:
            head += f"\n   {hit.url}"
        body = textwrap.fill(" ".join(hit.text.split()), width=100, initial_indent="   ", subsequent_indent="   ")
        blocks.append(f"{head}\n{body}")
    return "\n\n".join(blocks)


def cmd_ask(args, settings: Settings) -> int:
    from rag.answer import Answerer
    from rag.generate import load_generator

    filters = SearchFilters(args.since, args.until, args.source)
    with NewsIndex(settings) as index:
        answerer = Answerer(index, settings, generator=load_generator(settings, args.llm))
        if args.question is None:
            return _chat(answerer, args, filters)
        answer = _answer(answerer, args.question, [], args, filters, stream=not args.json)
    print(json.dumps(answer.to_json(), ensure_ascii=False) if args.json else format_answer(answer))
    return 0


def _answer(answerer, question: str, history: list[dict], args, filters: SearchFilters, stream: bool) -> Answer:
    """Run the answer path and return the verified answer; on a terminal the unverified draft shows
    while it streams (dimmed, labelled) and is erased before the answer is printed."""
    from rag.answer import collect

    events = answerer.stream(question, history=history, k=args.k, filters=filters, favour_recent=args.recent,
                             as_of=args.as_of)
    draft = DraftView(sys.stderr)
    try:
        return collect(events, draft.feed if stream else None)
    finally:
        draft.clear()


def _chat(answerer, args, filters: SearchFilters) -> int:
    """Interactive multi-turn chat: follow-up questions use the conversation."""
    counts = answerer.index.counts()
    print(f"Ask about {counts['documents']} documents in {answerer.index.directory}/ "
          f"({answerer.generator.backend}: {answerer.generator.model}). Type 'quit' to leave.")
    history: list[dict] = []
    for question in prompt_lines("ask> "):
        try:
            answer = _answer(answerer, question, history, args, filters, stream=True)
        except RagError as exc:
            print(f"error: {exc}")
            continue
        print(format_answer(answer) + "\n")
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
    return 0


def format_answer(answer: Answer) -> str:
    """The answer with [n] markers, then each source and its quote (or the closest passages)."""
    lines = [answer.answer, ""]
    if answer.timeframe and (answer.timeframe.expressions or answer.timeframe.favour_recent):
        lines.insert(1, f"(dates: {answer.timeframe.describe()})")
    if answer.refused:
        if answer.retrieved:
            lines.append("Closest passages:")
            lines.append(format_hits(answer.retrieved[:3]))
        return "\n".join(lines).rstrip()
    for citation in answer.citations:
        lines.append(f"[{citation.n}] {citation.heading()}" + (f" {citation.url}" if citation.url else ""))
        lines.append(textwrap.fill(f"\"{' '.join(citation.quote.split())}\"", width=100, initial_indent="    ",
                                   subsequent_indent="    "))
    return "\n".join(lines).rstrip()


def cmd_delete(args, settings: Settings) -> int:
    if not args.doc_ids and not args.source:
        raise QueryError("give DOC_ID... or --source NAME")
    with NewsIndex(settings, writable=True) as index:
        wanted = list(args.doc_ids) + (index.doc_ids_for_source(args.source) if args.source else [])
        deleted = index.delete_documents(wanted)
    unknown = sorted(set(args.doc_ids) - set(deleted))
    for doc_id in unknown:
        print(f"error: no document with id {doc_id!r}", file=sys.stderr)
    print(f"deleted {len(deleted)} document(s)")
    return 1 if unknown else 0


def cmd_ui(args, settings: Settings) -> int:
    if not settings.server.ui_auth and not _is_loopback(args.host) and not args.insecure:
        raise ConfigError(f"refusing to serve the UI on {args.host} without logins: set server.ui_auth "
                          "(or RAG_SERVER_UI_AUTH=user:password), bind 127.0.0.1, or pass --insecure")
    from ui.app import serve  # gradio takes seconds to import: only for this command

    _dump_stacks_on_signal()
    serve(settings, args.host, args.port)
    return 0


def cmd_serve(args, settings: Settings) -> int:
    if not settings.server.api_key and not _is_loopback(args.host) and not args.insecure:
        raise ConfigError(f"refusing to serve on {args.host} without an API key: set RAG_API_KEY "
                          "(or server.api_key), bind 127.0.0.1, or pass --insecure")
    import uvicorn

    from rag.api.app import create_app
    from rag.service import IndexService

    _dump_stacks_on_signal()
    service = IndexService(settings)
    service.generator()  # load the model before accepting requests
    service.checker.tagger.warm()  # and the NER model the answer path uses
    timeframe.warm()  # and dateparser, which reads the questions' dates
    if settings.watch.enabled:
        service.watcher.start()  # poll the index's watched feeds and folders in the background
    print(f"API on http://{args.host}:{args.port}  (docs at /docs, index {settings.index_dir}/, "
          f"{service.documents.counts()['documents']} documents, "
          f"auth {'on' if settings.server.api_key else 'off'})", flush=True)
    uvicorn.run(create_app(service, args.host), host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=5)
    return 0


def _dump_stacks_on_signal() -> None:
    """`kill -USR1 PID` prints every thread's Python stack to the server's stderr: a server that seems
    stuck shows where, without a debugger (no-op where the platform has no SIGUSR1)."""
    import faulthandler
    import signal

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_eval(args, settings: Settings) -> int:
    from datetime import datetime

    from rag.evaluate import evaluate
    from rag.evaluate.report import format_comparison

    out = Path(args.out or Path("eval") / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S"))
    try:
        results = evaluate(
            args.datasets, settings, out, data_dir=Path(args.data) if args.data else None,
            corpus=[Path(p) for p in args.corpus or []], limit=args.limit, llm=args.llm,
            index=Path(args.index) if args.index else None, judge_spec=args.judge,
            compare_dir=Path(args.compare) if args.compare else None, k=args.k,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, result in results["datasets"].items():
        print(f"{name}: {json.dumps(result['metrics'], ensure_ascii=False)}")
        for error in result.get("errors", []):
            print(f"  question {error['id']} failed: {error['error']}", file=sys.stderr)
    if "comparison" in results:
        print(format_comparison(results["comparison"]))
    print(f"results: {out / 'results.json'}  report: {out / 'report.html'}")
    return 0


def cmd_stats(args, settings: Settings) -> int:
    with NewsIndex(settings) as index:
        stats = index.stats()
    if args.json:
        print(json.dumps(stats, ensure_ascii=False))
        return 0
    print(f"index:      {stats['index']}")
    print(f"documents:  {stats['documents']}  chunks: {stats['chunks']}  files: {stats['files']}")
    print(f"dates:      {stats['first_date'] or '-'} .. {stats['last_date'] or '-'}")
    runtime = ", ".join(str(value) for value in stats["embedding_runtime"].values() if value != "none")
    print(f"model:      {stats['embedding_model']} ({stats['dimension']}-d, built on {runtime})")
    store = stats["store"]
    where = f"{store['uri']}, collection {store['collection']}" if store["backend"] == "milvus" else store["file"]
    print(f"vectors:    {stats['vector_index']} ({where}); BM25: {stats['lexical']}")
    print(f"size:       {stats['size_bytes'] / 1e6:.1f} MB")
    top = ", ".join(f"{name or '(none)'} {n}" for name, n in stats["top_sources"].items())
    print(f"sources:    {top or '-'}")
    return 0


def cmd_watch(args, settings: Settings) -> int:
    import time

    from rag.watch import SourceList

    if args.list or args.remove:
        sources = SourceList(settings.index_dir)
        for key in args.remove:
            removed = sources.remove(key)
            print(f"stopped watching {removed.url} ({removed.id}); its documents stay in the index")
        rows = [s.public() for s in sources.all()] if args.list else []
        if args.list and args.json:
            print(json.dumps({"sources": rows}, ensure_ascii=False))
        elif args.list:
            for row in rows:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["last_poll"])) if row["last_poll"] else "never"
                print(f"{row['id']}  {row['url']}\n    every {row['interval_seconds']:g} s; last poll {when} "
                      f"({row['last_status'] or '-'}); {row['items_added']} added, {row['items_replaced']} replaced"
                      + (f"; last error: {row['last_error']}" if row["last_error"] else ""))
            if not rows:
                print("no watched sources (add one: rag watch URL_OR_FOLDER)")
        return 0
    # Before the index and the model are opened (a new index folder would be created for nothing).
    if not (args.sources or settings.watch.sources.strip() or SourceList(settings.index_dir).all()):
        raise QueryError("nothing to watch: give a feed URL or folder (or set watch.sources)")

    from rag.service import IndexService
    from rag.watch import Watcher

    watcher = Watcher(IndexService(settings))
    for url in args.sources:
        source = watcher.add(url, args.interval)
        print(f"watching {source.url} ({source.id}) every {source.interval_seconds:g} s", file=sys.stderr)
    if args.once:
        results = watcher.poll_all()
        if args.json:
            print(json.dumps({"results": [dataclasses.asdict(r) for r in results]}, ensure_ascii=False))
        else:
            print("\n".join(r.line() for r in results))
        return 1 if any(r.status == "error" for r in results) else 0
    print(f"watching {len(watcher.sources.all())} source(s) into {settings.index_dir}/; Ctrl-C stops", file=sys.stderr)
    try:
        watcher.run_forever()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_timeline(args, settings: Settings) -> int:
    from rag.timeline import TimelineBuilder

    filters = SearchFilters(args.since, args.until, args.source)
    with NewsIndex(settings) as index:
        timeline = TimelineBuilder(index).run(args.query, k=args.k, filters=filters, as_of=args.as_of)
    print(json.dumps(timeline.to_json(), ensure_ascii=False) if args.json else timeline.format())
    return 0


COMMANDS = {"ingest": cmd_ingest, "search": cmd_search, "ask": cmd_ask, "delete": cmd_delete, "stats": cmd_stats, "ui": cmd_ui,
            "serve": cmd_serve, "eval": cmd_eval, "watch": cmd_watch, "timeline": cmd_timeline}

if __name__ == "__main__":
    sys.exit(main())
