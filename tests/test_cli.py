"""The CLI through Typer's runner: help on every command, exit codes and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import cli_commands
from typer.testing import CliRunner

from rag.cli.main import app
from rag.errors import InputError, ModelError

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


@pytest.mark.parametrize(
    "command", [["ask", "Wer gründete DeepSeek?"], ["summarize", "a.txt"], ["eval", "--limit", "1"]]
)
@pytest.mark.parametrize("model", ["nope", "embeddinggemma-300m"])
def test_an_answer_model_that_is_none_is_an_input_error(command: list[str], model: str) -> None:
    """Exit 2 naming the answer models only (was exit 3 listing the embedding model, or naming a missing flag)."""
    result = runner.invoke(app, [*command, "--model", model], env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    from typing import get_args

    from rag.config import AnswerModel

    assert line == f"error: --model '{model}': use one of {', '.join(get_args(AnswerModel))}"
    assert "embeddinggemma" not in line.split("use one of")[1]


def test_search_without_index_says_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["--index-dir", str(tmp_path / "none"), "search", "Wer gründete DeepSeek?"])
    assert result.exit_code in (3, 4)  # no models here (3) or no index (4): either way a one-line fix
    assert "error:" in result.output and "rag " in result.output


def test_bad_setting_from_environment_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_THREADS", "0")
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code != 0
    assert "RAG_THREADS" in result.output or "threads" in result.output


def _gold(tmp_path: Path, *ids: str) -> Path:
    line = {"lang": "de", "question": "Wer gründete DeepSeek?", "answerable": True, "answer": "Liang",
            "must_contain_any": ["Liang"], "sources": ["a.txt"], "evidence": ["Liang"], "type": "fact"}  # fmt: skip
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps({**line, "id": i}) + "\n" for i in ids), encoding="utf-8")
    return path


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every answer model or retriever `rag eval` would load (none is loaded)."""
    from rag import wiring

    loaded: list[object] = []
    monkeypatch.setattr(wiring, "answerer", loaded.append)
    monkeypatch.setattr(wiring, "open_retriever", loaded.append)
    return loaded


@pytest.mark.parametrize("question", ["   ", "x" * 2001])
def test_ask_refuses_a_bad_question_before_any_model_loads(built: list[object], question: str) -> None:
    result = runner.invoke(app, ["ask", question])
    assert result.exit_code == 2 and "the question must have 1 to 2000 characters" in result.output
    assert built == []  # it loaded the answer model first (seconds) to say so


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001])
def test_search_refuses_a_bad_question_as_ask_does(built: list[object], question: str) -> None:
    """One check for both (it had its own for an empty question, with another message)."""
    search, ask = runner.invoke(app, ["search", question]), runner.invoke(app, ["ask", question])
    assert search.exit_code == ask.exit_code == 2 and search.stderr == ask.stderr, (search.output, ask.output)
    assert search.stderr.startswith("error: the question must have 1 to 2000 characters, got ")
    assert built == []


def test_ask_names_no_speed_for_an_answer_nothing_was_generated_for(
    app_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal before the model wrote anything was shown with "0.0 tok/s"."""
    from dataclasses import replace

    from fakes import fake_answerer

    from rag import wiring

    floor = {"min_dense_score": 0.1}

    def answerer(s, index=None, defer_model=False):
        a = fake_answerer(s)
        a.settings = replace(a.settings, **floor)
        return a

    monkeypatch.setattr(wiring, "answerer", answerer)
    ask = ["--index-dir", str(app_settings.index_dir), "ask", "Wie viele GPUs nutzte DeepSeek?"]
    answered = runner.invoke(app, ask)
    assert answered.exit_code == 0 and " tok/s" in answered.stderr, answered.output
    floor["min_dense_score"] = 1.0  # no passage is relevant enough: refused before generating
    refused = runner.invoke(app, ask)
    assert refused.exit_code == 0 and "(refused, first sentence" in refused.stderr, refused.output
    assert "tok/s" not in refused.stderr


def test_ask_with_an_unknown_doc_or_empty_dates_fails_before_the_models_load(
    app_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It loaded the answer model (seconds) before the retriever refused the id or the dates; now the index,
    opened once and handed on, refuses them with the retriever's own message, and a known id still reaches
    the answer model."""
    from fakes import fake_answerer

    from rag import wiring
    from rag.retrieval.filters import make_filter

    built: list[str] = []
    handed: list[object] = []
    opened: list[object] = []
    open_index = wiring.open_index
    monkeypatch.setattr(wiring, "open_index", lambda s: opened.append(open_index(s)) or opened[-1])
    monkeypatch.setattr(
        wiring,
        "answerer",
        lambda s, index=None, defer_model=False: (
            built.append("answerer") or handed.append((index, len(opened))) or fake_answerer(s)
        ),
    )
    monkeypatch.setattr(wiring, "generator", lambda s: built.append("generator"))
    monkeypatch.setattr(wiring, "embedder", lambda s: built.append("embedder"))
    ask = ["--index-dir", str(app_settings.index_dir), "ask", "Wie viele GPUs nutzte DeepSeek?", "--doc", "a.txt"]
    result = runner.invoke(app, [*ask, "--doc", "nope.txt", "--doc", "nix.txt"])
    assert result.exit_code == 2 and built == [], result.output
    with pytest.raises(InputError) as caught:  # what the loaded retriever says of the same filter
        fake_answerer(app_settings).retriever.rows_for(make_filter(["a.txt", "nope.txt", "nix.txt"]))
    assert result.stderr == f"error: {caught.value}\n"
    assert "'nope.txt', 'nix.txt'" in result.stderr and "'a.txt'" not in result.stderr
    later = runner.invoke(app, [*ask[:4], "--since", "2999-01-01"])
    assert later.exit_code == 2 and "2999-01-01" in later.stderr and built == [], later.output
    opened.clear()
    known = runner.invoke(app, [*ask, "--json"])
    assert known.exit_code == 0 and built == ["answerer"], known.output
    assert handed == [(opened[0], 1)]  # the index checked is handed on: opened once before the answerer


def test_ask_loads_the_answer_model_only_when_it_writes(app_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A question the relevance floor refuses waited for llama.cpp's load (2 s warm, 20 s from a cold disk)."""
    from fakes import FakeGenerator

    from rag import wiring
    from rag.models import fetch

    loads: list[object] = []
    monkeypatch.setattr(wiring, "preload_language_models", lambda: None)
    monkeypatch.setattr(fetch, "require", lambda folder, name: folder / name)  # present and whole
    monkeypatch.setattr(wiring, "_llama", lambda s, path: loads.append(path) or FakeGenerator())
    ask = ["--index-dir", str(app_settings.index_dir), "ask", "Wie viele GPUs nutzte DeepSeek?"]
    monkeypatch.setenv("RAG_MIN_DENSE_SCORE", "1.0")  # no passage is relevant enough
    refused = runner.invoke(app, ask)
    assert refused.exit_code == 0 and "(refused, first sentence" in refused.stderr, refused.output
    assert loads == []
    monkeypatch.setenv("RAG_MIN_DENSE_SCORE", "0.1")
    answered = runner.invoke(app, ask)
    assert answered.exit_code == 0 and "refused" not in answered.stderr, answered.output
    assert len(loads) == 1  # once, though the check and the answer both use it


def test_ask_names_a_damaged_answer_model_before_answering(app_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap file check still runs before the question does; only llama.cpp's load waits."""
    from rag import wiring
    from rag.models import fetch

    def damaged(folder: Path, name: str) -> Path:
        raise ModelError(f"{folder / name} is damaged; run `rag models fetch --force {name}`")

    monkeypatch.setattr(wiring, "preload_language_models", lambda: None)
    monkeypatch.setattr(fetch, "require", damaged)
    monkeypatch.setattr(wiring, "open_retriever", lambda *a, **k: pytest.fail("retrieved before the model check"))
    result = runner.invoke(app, ["--index-dir", str(app_settings.index_dir), "ask", "Wer gründete DeepSeek?"])
    assert result.exit_code == ModelError.exit_code and "is damaged" in result.stderr, result.output


def test_ctrl_c_is_exit_130_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag import wiring

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(wiring, "answerer", interrupted)
    result = runner.invoke(app, ["ask", "Wer gründete DeepSeek?"])
    assert result.exit_code == 130 and result.stderr.strip() == "interrupted"


@pytest.mark.parametrize("retrieval_only", [False, True])
@pytest.mark.parametrize(
    ("ids", "needle"),
    [("nope", "no question with id 'nope'"), ("q1, nope ,q9", "'nope', 'q9'"), (",", "give question")],
)
def test_eval_with_unknown_ids_fails_before_any_model_loads(
    tmp_path: Path, built: list[object], ids: str, needle: str, retrieval_only: bool
) -> None:
    # Unknown ids were dropped: `--ids nope` loaded the model, wrote an empty report and exited 0.
    out = tmp_path / "r"
    args = ["eval", "--gold", str(_gold(tmp_path, "q1", "q2")), "--ids", ids, "--out", str(out)]
    result = runner.invoke(app, args + ["--retrieval-only"] * retrieval_only)
    assert result.exit_code == 2 and needle in result.output, result.output
    assert built == [] and not out.exists()


@pytest.mark.parametrize("retrieval_only", [False, True])
def test_eval_to_an_unwritable_out_fails_before_any_model_loads(
    tmp_path: Path, built: list[object], retrieval_only: bool
) -> None:
    # It was found when the reports were written, after every question was answered (exit 74, nothing kept).
    (tmp_path / "notadir").write_text("a file")
    args = ["eval", "--gold", str(_gold(tmp_path, "q1")), "--out", str(tmp_path / "notadir" / "sub")]
    result = runner.invoke(app, args + ["--retrieval-only"] * retrieval_only)
    assert result.exit_code == 7, result.output
    assert "cannot write the reports to --out" in result.output and "notadir" in result.output
    assert built == []


def test_serve_on_a_port_in_use_is_one_line_naming_it_before_serving_is_said() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--host", "127.0.0.1", "--port", str(port)])
    assert result.exit_code == 2 and "serving on" not in result.output
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in result.output and "--port" in result.output
