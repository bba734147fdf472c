"""`rag eval` as a user runs it: from any folder, with careless flags and broken files; no model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli.main import app
from rag.errors import StorageError

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def reports_to(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records the --out folder `rag eval` would write to, and stops the run there (before any model loads)."""
    from rag.cli import eval as eval_cli

    chosen: list[Path] = []

    def stop(out: Path) -> None:
        chosen.append(out)
        raise StorageError("stopped before the models load")

    monkeypatch.setattr(eval_cli, "_writable_folder", stop)
    return chosen


def test_eval_from_another_folder_uses_the_projects_gold_file_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reports_to: list[Path]
) -> None:
    # The defaults were relative to the working folder: from elsewhere, "gold file not found: eval/gold.jsonl".
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["eval", "--ids", "q001"], env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 7 and "stopped before the models load" in result.output, result.output
    assert reports_to == [ROOT / "eval" / "reports" / "latest"]
    assert not (tmp_path / "eval").exists()


def test_a_missing_gold_file_is_named_in_full_with_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["eval", "--gold", "mine.jsonl"], env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: gold file not found: {tmp_path / 'mine.jsonl'}; pass one with --gold FILE (docs/gold-format.md)"
    )


def _gold(tmp_path: Path, questions: dict[str, str], **fields: object) -> Path:
    base = {"lang": "de", "answerable": True, "answer": "2.048", "must_contain_any": ["2.048"], "sources": ["a.txt"],
            "evidence": ["2.048 GPUs"], "type": "number"}  # fmt: skip
    gold = tmp_path / "gold.jsonl"
    lines = [{**base, "id": i, "question": q, **fields.get(i, {})} for i, q in questions.items()]  # type: ignore[dict-item]
    gold.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return gold


def test_ids_that_leave_a_follow_up_without_its_first_question_are_refused(
    tmp_path: Path, reports_to: list[Path]
) -> None:
    # The follow-up was asked with no chat history ("Und wie teuer war es?" about nothing) and scored as usual.
    gold = _gold(tmp_path, {"f1": "Wie viele GPUs?", "f2": "Und wie teuer?"}, f2={"follow_up_of": "f1"})
    result = runner.invoke(app, ["eval", "--gold", str(gold), "--ids", "f2"], env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 2, result.output
    assert "--ids: f2 follows up f1; add the first question to --ids too" in result.output
    assert reports_to == []
    result = runner.invoke(app, ["eval", "--gold", str(gold), "--ids", "f2,f1"], env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 7 and len(reports_to) == 1, result.output


@pytest.mark.parametrize(
    "content",
    [
        {"modes": {"fused": {"summary": {}, "rows": []}}},  # the retrieval.json of --retrieval-only
        [1, 2],
        {"rows": [{"id": "q1"}], "summary": {"overall": {}, "by_lang": {}}},
        {"rows": "none", "summary": {}},
    ],
    ids=["retrieval-json", "a-list", "rows-without-fields", "rows-not-a-list"],
)
@pytest.mark.parametrize("command", ["threshold", "compare"])
def test_a_json_file_that_is_no_eval_report_is_a_one_line_error(tmp_path: Path, content: object, command: str) -> None:
    # `rag eval threshold|compare` on it ended in a KeyError or TypeError traceback, exit 1.
    path = tmp_path / "retrieval.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    result = runner.invoke(app, ["eval", command, *[str(path)] * (2 if command == "compare" else 1)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {path} is not a report of `rag eval`"), result.output


def test_compare_needs_a_summary_but_threshold_does_not(tmp_path: Path) -> None:
    row = {"id": "q1", "lang": "de", "answerable": True, "refused": False, "correct": True, "answerable_p": 0.9}
    (tmp_path / "report.json").write_text(json.dumps({"rows": [row]}), encoding="utf-8")
    assert runner.invoke(app, ["eval", "threshold", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["eval", "compare", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2 and "a summary of overall, by_lang" in result.output, result.output


class _Interrupted:
    """The fake Answerer, but Ctrl-C arrives while a question with "STOP" in it is answered."""

    def __init__(self, answerer: object) -> None:
        self.answerer = answerer
        self.retriever = answerer.retriever  # type: ignore[attr-defined]
        self.asked: list[str] = []

    def __call__(self, question: str, **kwargs: object) -> object:
        self.asked.append(question)
        if "STOP" in question:
            raise KeyboardInterrupt
        return self.answerer(question, **kwargs)  # type: ignore[operator]


@pytest.mark.parametrize("variants", [False, True])
def test_ctrl_c_keeps_the_answers_given_so_far(
    app_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variants: bool
) -> None:
    # Ctrl-C an hour into a run ended it with "Aborted!": no report, every answer lost.
    from fakes import FakeGenerator, fake_answerer

    from rag import wiring

    built: list[_Interrupted] = []

    def answerer(settings: object) -> _Interrupted:
        built.append(_Interrupted(fake_answerer(settings, FakeGenerator())))
        return built[-1]

    monkeypatch.setattr(wiring, "answerer", answerer)
    questions = {"f1": "Wie viele GPUs nutzte DeepSeek?", "f2": "STOP GPUs?", "f3": "Wie viele GPUs?"}
    gold = _gold(tmp_path, questions, f1={"variants": ["GPUs: wie viele?"]})
    out = tmp_path / "r"
    args = ["--index-dir", str(app_settings.index_dir), "eval", "--gold", str(gold), "--out", str(out)]
    result = runner.invoke(app, args + ["--variants"] * variants)
    assert result.exit_code == 130, result.output
    assert "interrupted: the reports hold the 1 of 3 questions answered" in result.output
    assert built[0].asked == ["Wie viele GPUs nutzte DeepSeek?", "STOP GPUs?"]  # no variants after Ctrl-C
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in report["rows"]] == ["f1"] and report["interrupted"] is True
    assert report["summary"]["overall"]["n"] == 1
    assert "(interrupted with Ctrl-C: the scores cover only these)" in (out / "report.md").read_text(encoding="utf-8")


def test_the_threshold_setting_printed_for_one_language_is_a_valid_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reports of German questions only printed RAG_ANSWERABLE_THRESHOLDS='{"de": 0.44}', which the
    # settings refuse ("no threshold for en").
    import re

    from rag.config import Settings, default

    rows = [
        {"id": f"q{i}", "lang": "de", "answerable": i % 2 == 0, "answerable_p": i / 10, "refused": False,
         "correct": True if i % 2 == 0 else None}
        for i in range(1, 9)
    ]  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps({"rows": rows}), encoding="utf-8")
    result = runner.invoke(app, ["eval", "threshold", str(tmp_path)], env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 0, result.output
    (value,) = re.findall(r"RAG_ANSWERABLE_THRESHOLDS='(.*?)'", result.output)
    monkeypatch.setenv("RAG_ANSWERABLE_THRESHOLDS", value)
    assert Settings().answerable_thresholds["en"] == default("answerable_thresholds")["en"]


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--modes", "dense"], "--modes: no effect without --retrieval-only"),
        (["--retrieval-only", "--variants"], "--variants: no effect with --retrieval-only"),
        (["--retrieval-only", "--answerable-threshold", "0"], "--answerable-threshold: no effect with"),
        (["--retrieval-only", "--k", "3", "--model", "qwen2.5-coder-0.5b"], "--model, --k: no effect with"),
        (["--retrieval-only", "--modes", ""], "--modes '': use one or more of"),
    ],
)
def test_a_flag_the_run_does_not_use_is_an_error_not_ignored(
    tmp_path: Path, reports_to: list[Path], flags: list[str], needle: str
) -> None:
    # `rag eval --modes dense` answered from fused retrieval, and --retrieval-only dropped --variants, without a word.
    gold = _gold(tmp_path, {"f1": "Wie viele GPUs?"}, f1={"variants": ["GPUs?"]})
    result = runner.invoke(app, ["eval", "--gold", str(gold), *flags], env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 2 and needle in result.output, result.output
    assert reports_to == []


def test_compare_says_when_the_reports_hold_different_questions(tmp_path: Path) -> None:
    # A `--limit 10` run compared with a full one printed its deltas as if they were over the same questions.
    from rag.evaluation.scoring import aggregate

    def row(i: int) -> dict[str, object]:
        return {
            "id": f"q{i}",
            "lang": "de",
            "type": "fact",
            "answerable": True,
            "refused": False,
            "correct": i % 2 == 0,
        }

    for name, rows in (("a", [row(i) for i in range(1, 5)]), ("b", [row(i) for i in range(1, 3)])):
        (tmp_path / name).mkdir()
        report = {"rows": rows, "summary": aggregate(rows)}
        (tmp_path / name / "report.json").write_text(json.dumps(report), encoding="utf-8")
    result = runner.invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("note: 2 question(s) only in A, 0 only in B: the rates are over different sets")
    result = runner.invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "a")])
    assert result.exit_code == 0 and "note:" not in result.output, result.output


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--rebuild"], "--rebuild"), (["--prune", "corpus"], "PATHS, --prune"), (["--watch"], "--watch")],
)
def test_index_stats_with_a_flag_it_would_ignore_is_an_error(tmp_path: Path, flags: list[str], named: str) -> None:
    # `rag index --stats --rebuild` printed the statistics, rebuilt nothing and exited 0.
    args = ["--index-dir", str(tmp_path / "index"), "index", "--stats", *flags]
    result = runner.invoke(app, args, env={"RAG_ENV_FILE": ""})
    assert result.exit_code == 2, result.output
    assert f"error: --stats only prints statistics, {named} would do nothing; drop --stats" in result.output


def test_config_docs_to_an_unwritable_out_is_a_storage_error_naming_the_flag(tmp_path: Path) -> None:
    # It was the catch-all exit 74, which the README's list of exit codes does not have.
    result = runner.invoke(app, ["config", "docs", "--out", str(tmp_path)])
    assert result.exit_code == 7, result.output
    assert result.output.startswith(f"error: cannot write --out {tmp_path}: Is a directory")
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / f".{tmp_path.name}.partial").exists()


def test_threshold_warns_about_a_report_made_with_a_threshold(tmp_path: Path) -> None:
    # Its refusals stay refusals in every replay; only a run whose every answer had P >= 0.5 was noted.
    rows = [
        {"id": "q1", "lang": "de", "answerable": True, "answerable_p": 0.4, "refused": False, "correct": True},
        {"id": "q2", "lang": "de", "answerable": False, "answerable_p": 0.2, "refused": True, "correct": None},
    ]
    for name, used in (("with", {"de": 0.3, "en": 0.3}), ("without", {"de": 0.0, "en": 0.0})):
        (tmp_path / name).mkdir()
        report = {"rows": rows, "decision": {"check": True, "thresholds": used}}
        (tmp_path / name / "report.json").write_text(json.dumps(report), encoding="utf-8")
    result = runner.invoke(app, ["eval", "threshold", str(tmp_path / "with")])
    assert result.exit_code == 0, result.output
    assert 'was made with thresholds {"de": 0.3, "en": 0.3}: below them the sweep is wrong' in result.output
    assert "--answerable-threshold 0" in result.output
    result = runner.invoke(app, ["eval", "threshold", str(tmp_path / "without")])
    assert result.exit_code == 0 and "note:" not in result.output, result.output


def test_evidence_no_indexed_passage_holds_is_named_before_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    """A quote from text the cleaner drops ("3 Minuten Lesezeit") or with a typo scored as a retrieval miss,
    silently."""
    from rag.cli.eval import _warn_evidence_nowhere
    from rag.evaluation.gold import parse_gold_line
    from rag.evaluation.run import evidence_nowhere
    from rag.types import Chunk

    base = {"lang": "de", "answer": "x", "must_contain_any": ["x"], "sources": ["a.txt"], "type": "fact"}
    lines = [
        {**base, "id": "q1", "question": "Wie viele GPUs?", "answerable": True, "evidence": ["nur 2.048  GPUs"]},
        {**base, "id": "q2", "question": "Lesezeit?", "answerable": True, "evidence": ["3 Minuten Lesezeit"]},
        {**base, "id": "q3", "question": "Wie viele Mitarbeiter?", "answerable": False, "evidence": [],
         "must_contain_any": [], "sources": [], "answer": ""},
    ]  # fmt: skip
    items = [parse_gold_line(json.dumps(line)) for line in lines]
    chunks = [Chunk("a.txt#0", "a.txt", "A", 0, 30, "DeepSeek nutzte nur 2.048\nGPUs.", 6)]
    assert evidence_nowhere(items, chunks) == ["q2"]
    _warn_evidence_nowhere(["q2"])
    assert "warning: no indexed passage holds the evidence of q2" in capsys.readouterr().err
