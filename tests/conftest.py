"""Shared fixtures: one real embedding model per test session, fresh index directories, corpus files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `make test` runs two workers on these 2-core machines: each gets one core, so llama.cpp runs one
# thread in the tests and in the servers and CLIs they start (its default, a thread per core, would
# put 4 spinning threads on 2 cores).
os.environ.setdefault("RAG_LLM_LLAMACPP_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data"
RAG = [sys.executable, "-m", "rag.cli"]


@pytest.fixture(scope="session")
def embedder():
    """The real packaged all-MiniLM-L6-v2, loaded once."""
    from rag.config import EmbeddingSettings
    from rag.embedding import Embedder

    model = Embedder(EmbeddingSettings(threads=1))
    model.model  # load now so tests time their own work only
    return model


@pytest.fixture
def settings(tmp_path):
    """Settings pointing at a fresh index directory, ignoring any rag.toml or RAG_* of the caller."""
    from rag.config import Settings

    config = Settings.load(env={})
    config.index_dir = tmp_path / "index"
    config.embedding.threads = 1
    config.llm.llamacpp.threads = 1
    return config


@pytest.fixture
def open_index(settings, embedder):
    """Factory: open the test's index (writable by default) with the shared model."""
    from rag.index import NewsIndex

    opened = []

    def factory(writable: bool = True, create: bool = True, config=None):
        index = NewsIndex(config or settings, writable=writable, create=create, embedder=embedder)
        opened.append(index)
        return index

    yield factory
    for index in opened:
        try:
            index.close()
        except Exception:  # already closed by the test
            pass


@pytest.fixture
def ingest(open_index):
    """Factory: ingest paths into the test's index and return the report (index closed afterwards)."""
    from rag.ingest import FieldMap
    from rag.ingest.pipeline import IngestPipeline

    def run(*paths, fields=None):
        index = open_index()
        try:
            return IngestPipeline(index, FieldMap.parse(fields), progress=False).run(paths)
        finally:
            index.close()

    return run


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    """A private copy of seeds/ that a test may modify."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, process: bool = False,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real `rag` command line: in this process (its `main()`, with the given environment,
    stdin and captured stdout/stderr), or with `process=True` in a subprocess, where the process
    boundary is what a test is about (exit status of a real process, kill -9, one smoke test per
    command). In-process calls skip the seconds of importing torch and loading models again."""
    if process:
        full_env = {**os.environ, **(env or {})}
        full_env.pop("RAG_CONFIG", None)
        return subprocess.run([*RAG, *args], capture_output=True, text=True, cwd=ROOT, env=full_env, timeout=timeout,
                              input=input)
    return run_cli_in_process(list(args), env or {}, input)


def run_cli_in_process(args: list[str], env: dict, stdin: str | None) -> subprocess.CompletedProcess:
    """`rag ARGS` through rag.cli.main in this process, as a CompletedProcess."""
    import contextlib
    import io
    import traceback

    from rag.cli import main

    saved_env, saved_stdin, saved_cwd = dict(os.environ), sys.stdin, os.getcwd()
    os.environ.update(env)
    os.environ.pop("RAG_CONFIG", None)
    out, err = io.StringIO(), io.StringIO()
    sys.stdin = io.StringIO(stdin or "")
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exit_:  # argparse
                code = exit_.code if isinstance(exit_.code, int) else 1
            except Exception:  # what an uncaught error would print and exit with
                traceback.print_exc()
                code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(["rag", *args], code, out.getvalue(), err.getvalue())


def shared_data(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared evaluation data not present: {path}")
    return path


def seed_index(directory: Path, embedder) -> Path:
    """An index of seeds/ at `directory`, built in-process with the session's model (for server tests)."""
    from rag.config import Settings
    from rag.index import NewsIndex
    from rag.ingest.pipeline import IngestPipeline

    settings = Settings.load(env={})
    settings.index_dir = directory
    with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
        IngestPipeline(index, progress=False).run([SEEDS])
    return directory


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    """Return once 127.0.0.1:`port` accepts connections; fail the test if `process` exits first or
    `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode} before listening on port {port}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"{what} not listening on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def serving(command: str, index_dir: Path, folder: Path, ready_path: str = "/", env: dict | None = None,
            processes: list | None = None):
    """`rag COMMAND --index INDEX_DIR` on a free loopback port; yields its base URL (no trailing /).
    `processes`, where given, holds the server's Popen while it runs (to signal it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [command, "--index", str(index_dir), "--port", str(port)]
    with running_server(args, base + ready_path, folder / f"{command}.log", env=env) as process:
        if processes is not None:
            processes.append(process)
        yield base
        if processes is not None:
            processes.remove(process)


@contextmanager
def running_server(args: list[str], ready_url: str, log_path: Path, env: dict | None = None, timeout: float = 240):
    """Start `rag ARGS` (a real server on 127.0.0.1), wait until `ready_url` answers 200, stop it by PID after."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    full_env.pop("RAG_CONFIG", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*RAG, *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=full_env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=5) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def llama_server():
    """A real OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1 with the bundled model."""
    from rag.llm.llamacpp import bundled_model_path

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", bundled_model_path(), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "llama_cpp.server")
    except BaseException:  # pytest.fail raises outside Exception
        process.kill()
        raise
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
