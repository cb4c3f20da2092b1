"""Shared fixtures: one real embedding model per test session, fresh index directories, corpus files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `rag` command line in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("RAG_CONFIG", None)
    return subprocess.run([*RAG, *args], capture_output=True, text=True, cwd=ROOT, env=full_env, timeout=timeout)


def shared_data(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared evaluation data not present: {path}")
    return path
