"""One source of defaults: `Settings`. The stages build from it, the reference is generated from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.answer.pipeline import AnswerSettings
from rag.cli.main import app
from rag.config import Settings, default, load_settings, reference_markdown
from rag.errors import ConfigError
from rag.ingest.chunk import chunk_document
from rag.models.embed import SentenceTransformerEmbedder
from rag.models.generate import GenerationSettings, LlamaCppGenerator, OpenAIServerGenerator
from rag.retrieval.dense import build_dense
from rag.retrieval.retrieve import RetrievalSettings
from rag.retrieval.store import IndexConfig

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def test_the_configuration_reference_is_generated_from_settings() -> None:
    written = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    stale = "docs/configuration.md is stale: run `rag config docs --out docs/configuration.md`"
    assert written == reference_markdown(), stale
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
        assert f"`RAG_{name.upper()}`" in written


def test_stage_defaults_are_the_settings_defaults(settings: Settings) -> None:
    plain = Settings()  # the `settings` fixture cleared every RAG_* variable
    assert RetrievalSettings() == RetrievalSettings.from_settings(plain)
    assert AnswerSettings() == AnswerSettings.from_settings(plain)
    assert GenerationSettings().max_tokens == plain.max_tokens
    assert AnswerSettings().k == max(plain.top_k, plain.max_passages)


@pytest.mark.parametrize(
    ("function", "parameter", "field"),
    [
        (chunk_document, "max_tokens", "chunk_tokens"),
        (chunk_document, "overlap_sentences", "chunk_overlap_sentences"),
        (LlamaCppGenerator.__init__, "threads", "threads"),
        (LlamaCppGenerator.__init__, "n_ctx", "n_ctx"),
        (LlamaCppGenerator.__init__, "contexts", "llm_contexts"),
        (SentenceTransformerEmbedder.__init__, "batch_size", "embed_batch_size"),
        (SentenceTransformerEmbedder.__init__, "dtype", "embed_dtype"),
        (SentenceTransformerEmbedder.__init__, "device", "embed_device"),
        (OpenAIServerGenerator.__init__, "timeout", "llm_timeout"),
        (OpenAIServerGenerator.__init__, "max_retries", "llm_max_retries"),
        (build_dense, "exact_below", "faiss_exact_below"),
    ],
)
def test_constructor_defaults_come_from_settings(function: object, parameter: str, field: str) -> None:
    import inspect

    assert inspect.signature(function).parameters[parameter].default == default(field)  # type: ignore[arg-type]


def test_index_config_defaults_come_from_settings() -> None:
    config = IndexConfig("m", "0" * 64, 8, chunk_tokens=64, overlap_sentences=1)
    assert (config.faiss_type, config.exact_below) == (default("faiss_type"), default("faiss_exact_below"))


def test_config_show_names_where_each_value_came_from(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_API_KEY", "s3cret")
    result = runner.invoke(app, ["--threads", "3", "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["top_k"] == {"value": 7, "source": "RAG_TOP_K"}
    assert shown["threads"] == {"value": 3, "source": "--threads"}
    assert shown["rrf_k"] == {"value": default("rrf_k"), "source": "default"}
    assert shown["api_key"]["value"] == "***" and "s3cret" not in result.output
    assert set(shown) == set(Settings.model_fields)


def test_config_show_prints_the_models_folder_used(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset, RAG_MODELS_DIR means `$RAG_CACHE_DIR/models`; `config show` prints that folder, not null."""
    monkeypatch.delenv("RAG_MODELS_DIR", raising=False)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    shown = json.loads(runner.invoke(app, ["config", "show", "--json"]).output)["models_dir"]
    assert shown == {"value": str(tmp_path / "cache" / "models"), "source": "default"}
    assert str(tmp_path / "cache" / "models") in runner.invoke(app, ["config", "show"]).output
    flagged = runner.invoke(app, ["--models-dir", str(tmp_path / "m"), "config", "show", "--json"])
    assert json.loads(flagged.output)["models_dir"] == {"value": str(tmp_path / "m"), "source": "--models-dir"}


def test_config_show_as_text_and_a_bad_value_is_one_line(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    text = runner.invoke(app, ["config", "show"])
    assert text.exit_code == 0 and "top_k" in text.output and "(default)" in text.output
    monkeypatch.setenv("RAG_TOP_K", "0")
    bad = runner.invoke(app, ["config", "show"])
    assert bad.exit_code == 2 and "RAG_TOP_K" in bad.output


def test_config_docs_writes_the_reference(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    result = runner.invoke(app, ["config", "docs", "--out", str(out)])
    assert result.exit_code == 0 and out.read_text(encoding="utf-8") == reference_markdown()


def test_settings_from_a_dotenv_file(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag beats the environment, which beats the file; `config show` names the file; secrets stay hidden."""
    env_file = tmp_path / "prod.env"
    env_file.write_text("RAG_TOP_K=9\nRAG_RRF_K=11\nRAG_LLM_API_KEY=sk-from-file\nOTHER=1\n", encoding="utf-8")
    monkeypatch.setenv("RAG_ENV_FILE", str(env_file))
    monkeypatch.setenv("RAG_RRF_K", "12")
    assert (Settings().top_k, Settings().rrf_k, Settings().llm_api_key) == (9, 12, "sk-from-file")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["top_k"] == {"value": 9, "source": f"RAG_TOP_K in {env_file}"}
    assert shown["rrf_k"]["source"] == "RAG_RRF_K"
    assert shown["llm_api_key"]["value"] == "***" and "sk-from-file" not in result.output


def test_dotenv_in_the_working_folder(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_ENV_FILE")
    monkeypatch.chdir(tmp_path)
    assert Settings().top_k == default("top_k")  # no .env: defaults
    (tmp_path / ".env").write_text("RAG_TOP_K=0\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2 and "RAG_TOP_K='0' (in .env)" in result.output
    (tmp_path / ".env").write_text("RAG_TOP_K=7\n", encoding="utf-8")
    assert Settings().top_k == 7


@pytest.mark.parametrize(
    ("variable", "value", "example"),
    [
        ("RAG_ANSWERABLE_THRESHOLDS", "notjson", '{"de": 0.8, "en": 0.7}'),
        ("RAG_RETRY_MIN_P", "{", '{"de": 0.88, "en": 0}'),
        ("RAG_CORS_ORIGINS", "[bad", '["https://a.example"]'),
        ("RAG_CORS_ORIGINS", "https://a.example", '["https://a.example"]'),  # the easy mistake: no JSON list
        ("RAG_ANSWERABLE_THRESHOLDS", "[0.5]", '{"de": 0.8, "en": 0.7}'),  # JSON, but not an object
    ],
)
@pytest.mark.parametrize("where", ["environment", "dotenv"])
def test_a_malformed_json_setting_is_one_line_with_the_right_form(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, example: str,
    where: str,
) -> None:  # fmt: skip
    # pydantic-settings parsed these before validation: a 60-line SettingsError traceback and exit 1, every command.
    if where == "dotenv":
        env_file = tmp_path / "bad.env"
        env_file.write_text(f"{variable}={value}\n", encoding="utf-8")
        monkeypatch.setenv("RAG_ENV_FILE", str(env_file))
    else:
        monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: invalid setting {variable}={value!r}") and example in result.output
    assert (f"(in {tmp_path / 'bad.env'})" in result.output) == (where == "dotenv")


def test_json_settings_from_text_and_from_values(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CORS_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("RAG_ANSWERABLE_THRESHOLDS", '{"de": 0.5, "en": 0.4}')
    loaded = load_settings()
    assert loaded.cors_origins == ["https://a.example"] and loaded.answerable_thresholds == {"de": 0.5, "en": 0.4}
    assert load_settings(**loaded.model_dump()) == loaded  # how `answer_settings` rebuilds them with flags applied
    monkeypatch.setenv("RAG_ANSWERABLE_THRESHOLDS", '{"de": 2, "en": 0.4}')
    with pytest.raises(ConfigError, match=r'RAG_ANSWERABLE_THRESHOLDS\["de"\]=2: Input should be less than'):
        load_settings()


def test_a_missing_env_file_is_an_error(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # It used to be read as "no file": a typo in the name quietly ran on the defaults.
    monkeypatch.setenv("RAG_ENV_FILE", str(tmp_path / "prod.env"))
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2 and f"RAG_ENV_FILE='{tmp_path / 'prod.env'}': no such file" in result.output


def test_an_unknown_rag_variable_is_an_error_naming_the_close_one(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read silently as nothing, ``RAG_APIKEY`` would leave the API without its key."""
    monkeypatch.setenv("RAG_APIKEY", "s3cret")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2 and "unknown setting RAG_APIKEY (did you mean RAG_API_KEY?)" in result.output
    monkeypatch.delenv("RAG_APIKEY")
    env_file = tmp_path / "prod.env"
    env_file.write_text("RAG_TOP_K=9\nrag_zzz=1\nOTHER=1\n", encoding="utf-8")  # not RAG_*: not ours to judge
    monkeypatch.setenv("RAG_ENV_FILE", str(env_file))
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2 and "unknown setting RAG_ZZZ;" in result.output and "OTHER" not in result.output
    env_file.write_text("RAG_TOP_K=9\nOTHER=1\n", encoding="utf-8")
    assert runner.invoke(app, ["config", "show"]).exit_code == 0


def test_the_tests_read_no_dotenv() -> None:
    import os

    assert os.environ.get("RAG_ENV_FILE") == ""


def test_the_answer_model_id_clients_see(settings: Settings, tmp_path: Path) -> None:
    assert settings.answer_model_id == settings.answer_model
    remote = settings.model_copy(update={"llm_url": "http://gpu:8000/v1", "llm_model": "Qwen/Qwen2.5-7B-Instruct"})
    assert remote.answer_model_id == "Qwen/Qwen2.5-7B-Instruct"
    assert remote.model_copy(update={"llm_model": None}).answer_model_id == settings.answer_model


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"RAG_INDEX_DIR": ""}, "RAG_INDEX_DIR='': Value error, empty; name a folder"),
        (["--index-dir", "README.md"], {}, "--index-dir='README.md': Value error, is a file; name a folder"),
        ([], {"RAG_CORPUS_DIR": " "}, "RAG_CORPUS_DIR=' ': Value error, empty"),
    ],
)
def test_a_folder_setting_that_is_empty_or_a_file_is_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], message: str
) -> None:
    """Empty, it meant the working folder ("no index in ."); a file gave "cannot create the index lock"."""
    monkeypatch.chdir(ROOT)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, [*args, "config", "show"])
    assert result.exit_code == 2 and message in result.output
