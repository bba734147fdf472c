"""One source of defaults: `Settings`. The stages build from it, the reference is generated from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.answer.pipeline import AnswerSettings
from rag.cli.main import app
from rag.config import Settings, default, reference_markdown
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


def test_the_tests_read_no_dotenv() -> None:
    import os

    assert os.environ.get("RAG_ENV_FILE") == ""


def test_the_answer_model_id_clients_see(settings: Settings, tmp_path: Path) -> None:
    assert settings.answer_model_id == settings.answer_model
    remote = settings.model_copy(update={"llm_url": "http://gpu:8000/v1", "llm_model": "Qwen/Qwen2.5-7B-Instruct"})
    assert remote.answer_model_id == "Qwen/Qwen2.5-7B-Instruct"
    assert remote.model_copy(update={"llm_model": None}).answer_model_id == settings.answer_model
