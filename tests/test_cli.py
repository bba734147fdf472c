"""The CLI through Typer's runner: help on every command, exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import cli_commands
from typer.testing import CliRunner

from rag.cli.main import app

runner = CliRunner()


def test_every_command_has_help() -> None:
    assert ("models", "fetch") in cli_commands(app) and ("index",) in cli_commands(app)
    for cmd in cli_commands(app):
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
        assert "Usage" in result.output


def test_verify_with_no_models_fails_with_the_fix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--models-dir", str(tmp_path), "models", "verify"])
    assert result.exit_code == 3
    assert "run `rag models fetch" in result.output


def test_list_shows_roles_and_state(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--models-dir", str(tmp_path), "models", "list"])
    assert result.exit_code == 0
    assert "qwen2.5-coder-1.5b" in result.output and "missing" in result.output and "answers (default)" in result.output


def test_unknown_model_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--models-dir", str(tmp_path), "models", "fetch", "gpt-9"])
    assert result.exit_code == 3
    assert result.output.strip().startswith("error: unknown model 'gpt-9'")
    assert "Traceback" not in result.output


def test_search_without_index_says_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["--index-dir", str(tmp_path / "none"), "search", "Wer gründete DeepSeek?"])
    assert result.exit_code in (3, 4)  # no models here (3) or no index (4): either way a one-line fix
    assert "error:" in result.output and "rag " in result.output


def test_bad_setting_from_environment_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_THREADS", "0")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code != 0
    assert "RAG_THREADS" in result.output or "threads" in result.output
