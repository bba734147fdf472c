"""The answer-or-refuse decision as measured by the eval harness: AUC, replayed thresholds, flip rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli.main import app
from rag.evaluation.decision import (
    auc,
    choose_threshold,
    choose_thresholds,
    flip_causes,
    flip_rate,
    replay,
    sweep,
)
from rag.evaluation.gold import GoldItem
from rag.evaluation.reports import decision_lines
from rag.evaluation.run import variant_items


def row(i: int, answerable: bool, p: float, correct: bool | None = None, refused: bool = False) -> dict:
    return {"id": f"q{i}", "lang": "de", "answerable": answerable, "answerable_p": p,
            "correct": correct if answerable else None, "refused": refused}  # fmt: skip


ROWS = [
    row(1, True, 0.95, True),
    row(2, True, 0.80, True),
    row(3, True, 0.40, False),  # low P and a wrong answer anyway
    row(4, True, 0.30, True),  # a right answer the check doubts
    row(5, False, 0.10),
    row(6, False, 0.35),
    row(7, False, 0.60),  # an unanswerable question the check lets through
    row(8, True, 0.90, False, refused=True),  # refused by the claim checks after generating
]


def test_auc_counts_the_ordered_pairs() -> None:
    # 5 answerable x 3 unanswerable = 15 pairs; out of order: (0.30 < 0.35), (0.30 < 0.60), (0.40 < 0.60)
    assert auc(ROWS) == pytest.approx(12 / 15)
    assert auc([r for r in ROWS if r["answerable"]]) is None


def test_replay_refuses_below_the_threshold_and_keeps_the_other_refusals() -> None:
    none = replay(ROWS, 0.0)
    assert none.correct == 3 / 5 and none.refusal_ok == 0 and none.false_refusal == 1 / 5
    half = replay(ROWS, 0.5)
    assert half.correct == 2 / 5 and half.refusal_ok == 2 / 3 and half.false_refusal == 3 / 5
    assert half.ok == (2 + 2) / 8


def test_the_chosen_threshold_is_the_middle_of_the_best_plateau() -> None:
    best = choose_threshold(ROWS)
    assert best.ok == max(o.ok for o in sweep(ROWS))
    plateau = [o.threshold for o in sweep(ROWS) if o.ok == best.ok]
    assert best.threshold == plateau[len(plateau) // 2]


def test_flip_rate_pairs_variants_with_their_question() -> None:
    original = [{"id": "a", "refused": False}, {"id": "b", "refused": True}]
    variants = [
        {"variant_of": "a", "refused": False},
        {"variant_of": "a", "refused": True},
        {"variant_of": "b", "refused": True},
        {"variant_of": "zzz", "refused": True},  # no original in this run: not counted
    ]
    assert flip_rate(original, variants) == pytest.approx(1 / 3)
    assert flip_rate(original, []) is None


def test_flip_causes_name_where_the_refusing_side_was_refused() -> None:
    """The side that refused tells: under its language's threshold (the check), refused with no P under it and
    nothing generated (a gate), or refused after generating (the answer's checks or the model)."""

    def row(id_: str, lang: str, refused: bool, p: float | None, tokens: int, of: str | None = None):
        return {"id": id_, "variant_of": of, "lang": lang, "refused": refused, "answerable_p": p,
                "completion_tokens": tokens, "answerable": True}  # fmt: skip

    original = [
        row("a", "de", False, 0.9, 8), row("b", "en", False, 0.9, 8), row("c", "en", True, 0.9, 15),
        row("d", "de", False, 0.7, 8), row("e", "en", True, 0.3, 0),
    ]  # fmt: skip
    variants = [
        row("a~1", "de", True, 0.6, 0, "a"),  # 0.6 < 0.62 (German): the check
        row("b~1", "en", True, 0.6, 0, "b"),  # 0.6 >= 0.57 (English), nothing generated: a gate
        row("c~1", "en", False, 0.9, 8, "c"),  # the original was refused after generating
        row("d~1", "de", False, 0.7, 8, "d"),  # the same decision: not a flip
        row("e~1", "en", False, 0.8, 9, "e"),  # the original was under the threshold
        row("x~1", "en", True, None, 0, "x"),  # no original: not counted
    ]
    thresholds = {"de": 0.62, "en": 0.57}
    causes = flip_causes(original, variants, thresholds.__getitem__)
    assert causes == {"check": 2, "gate": 1, "answer": 1}
    assert flip_rate(original, variants[:-1]) == pytest.approx(4 / 5)
    summary = {"check": True, "thresholds": thresholds, "auc": 0.8, "auc_by_lang": {"de": 0.8, "en": 0.8},
               "variants": 5, "flip_rate": 0.8, "flip_causes": causes}  # fmt: skip
    assert "under the threshold 2, a gate before the check 1, the answer's checks or the model 1" in decision_lines(
        summary
    )
    assert "came from" not in decision_lines({**summary, "flip_causes": {"check": 0, "gate": 0, "answer": 0}})
    from rag.config import Settings
    from rag.evaluation.run import decision_summary

    measured = decision_summary(original, variants, Settings(answerable_thresholds=thresholds))
    assert measured["flip_causes"] == {"check": 2, "gate": 1, "answer": 1} and measured["variants"] == 6


def test_variant_items_become_questions_of_their_own() -> None:
    item = GoldItem("k1", "de", "Wie viele GPUs?", True, "2.048", ("2.048",), ("a.txt",), ("2.048 GPUs",), "number",
                    extra={"variants": ["GPUs: wie viele?", "Wie viele GPUs? Danke!"]})  # fmt: skip
    asked = variant_items([item])
    assert [(v.id, v.question, v.extra) for v in asked] == [
        ("k1~1", "GPUs: wie viele?", {"variant_of": "k1"}),
        ("k1~2", "Wie viele GPUs? Danke!", {"variant_of": "k1"}),
    ]
    assert asked[0].must_contain_any == item.must_contain_any


def test_rag_eval_threshold_prints_the_sweep_and_the_best(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"rows": ROWS}))
    result = CliRunner().invoke(app, ["eval", "threshold", str(tmp_path)])
    assert result.exit_code == 0, result.output
    best = choose_threshold(ROWS)  # every row is German
    assert "AUC 0.800" in result.output and f"best for de: {best.threshold:.2f}" in result.output
    # every row is German: English keeps the current threshold, so the line printed is a valid setting
    assert f"""RAG_ANSWERABLE_THRESHOLDS='{{"de": {round(best.threshold, 2)}, "en": 0.57}}'""" in result.output
    assert "(en: the current threshold, no question in the reports)" in result.output


def test_rag_eval_threshold_pools_several_runs(tmp_path: Path) -> None:
    """Two tuning sets (gold, dev) are one pool: the threshold is chosen over all their questions."""
    first, second = tmp_path / "gold", tmp_path / "dev"
    for folder, rows in ((first, ROWS[: len(ROWS) // 2]), (second, ROWS[len(ROWS) // 2 :])):
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps({"rows": rows}))
    result = CliRunner().invoke(app, ["eval", "threshold", str(first), str(second)])
    assert result.exit_code == 0, result.output
    assert f"AUC 0.800 over {len(ROWS)} questions" in result.output
    assert f"best for de: {choose_threshold(ROWS).threshold:.2f}" in result.output


def test_rag_eval_threshold_needs_the_probabilities(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(json.dumps({"rows": [{**ROWS[0], "answerable_p": None}]}))
    result = CliRunner().invoke(app, ["eval", "threshold", str(tmp_path)])
    assert result.exit_code == 2 and "answerable_p" in result.output


@pytest.mark.parametrize(
    "rows",
    [[], [{**ROWS[0], "refused": True, "answerable_p": None}]],  # no questions; one refused by a gate before the check
    ids=["no-rows", "no-probability"],
)
def test_rag_eval_threshold_without_any_probability_says_how_to_get_one(tmp_path: Path, rows: list) -> None:
    # It printed "AUC None" through a float format: a TypeError traceback.
    (tmp_path / "report.json").write_text(json.dumps({"rows": rows}))
    result = CliRunner().invoke(app, ["eval", "threshold", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "no question with a P(answerable)" in result.output and "--answerable-threshold 0" in result.output


def test_rag_eval_threshold_on_one_class_prints_no_auc(tmp_path: Path) -> None:
    answerable = [r for r in ROWS if r["answerable"]]  # no unanswerable question: AUC has no value
    (tmp_path / "report.json").write_text(json.dumps({"rows": answerable}))
    result = CliRunner().invoke(app, ["eval", "threshold", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"AUC - over {len(answerable)} questions" in result.output and "de: 5 questions, AUC -" in result.output


def test_thresholds_per_language_replay_each_language_on_its_own() -> None:
    english = [{**r, "id": r["id"] + "e", "lang": "en", "answerable_p": r["answerable_p"] / 2} for r in ROWS]
    both = ROWS + english
    chosen = choose_thresholds(both)
    assert chosen["de"].threshold == choose_threshold(ROWS).threshold
    assert chosen["en"].ok == choose_threshold(english).ok
    per_language = replay(both, {"de": chosen["de"].threshold, "en": chosen["en"].threshold})
    assert per_language.ok >= max(replay(both, o.threshold).ok for o in sweep(both))


def test_rag_eval_variants_without_variants_fails_before_answering(tmp_path: Path, monkeypatch) -> None:
    # The check used to come after every question was answered, losing a long run's answers.
    from rag import wiring

    gold = tmp_path / "gold.jsonl"
    item = json.loads(Path("eval/dev.jsonl").read_text(encoding="utf-8").splitlines()[0])
    item.pop("variants", None)
    gold.write_text(json.dumps(item, ensure_ascii=False) + "\n", encoding="utf-8")
    built = []
    monkeypatch.setattr(wiring, "answerer", lambda settings: built.append(settings))
    result = CliRunner().invoke(app, ["eval", "--gold", str(gold), "--variants", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "`variants` field" in result.output
    assert built == [] and not (tmp_path / "r").exists()


def test_rag_eval_with_variants_writes_its_report_and_flip_causes(app_settings, tmp_path: Path, monkeypatch) -> None:
    # The whole command with fake models: a mend once passed the root settings where the pipeline's were
    # expected, and every `rag eval` crashed after answering its last question, losing the run.
    from fakes import FakeGenerator, fake_answerer

    from rag import wiring

    monkeypatch.setattr(wiring, "answerer", lambda s: fake_answerer(s, FakeGenerator()))
    gold = tmp_path / "gold.jsonl"
    item = {"id": "f1", "lang": "de", "question": "Wie viele GPUs nutzte DeepSeek?", "answerable": True,
            "answer": "2.048", "must_contain_any": ["2.048"], "sources": ["a.txt"], "evidence": ["2.048 GPUs"],
            "type": "number", "variants": ["GPUs: wie viele nutzte DeepSeek?"]}  # fmt: skip
    gold.write_text(json.dumps(item, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "r"
    args = ["--index-dir", str(app_settings.index_dir), "eval", "--gold", str(gold), "--variants", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in report["rows"]] == ["f1"] and [r["variant_of"] for r in report["variant_rows"]] == ["f1"]
    decision = report["decision"]
    assert decision["variants"] == 1 and set(decision["flip_causes"]) == {"check", "gate", "answer"}
    assert sum(decision["flip_causes"].values()) == round(decision["flip_rate"] * decision["variants"])


class _Refusing:
    """The fake Answerer, but a question with "OVERFLOW" in it is an InputError, as a prompt over the context is."""

    def __init__(self, answerer: object) -> None:
        self.answerer = answerer
        self.retriever = answerer.retriever  # type: ignore[attr-defined]

    def __call__(self, question: str, **kwargs: object) -> object:
        from rag.errors import InputError

        if "OVERFLOW" in question:
            raise InputError("the prompt has 4290 tokens, over the model's context of 2048")
        return self.answerer(question, **kwargs)  # type: ignore[operator]


def test_rag_eval_keeps_the_other_answers_when_one_question_fails(app_settings, tmp_path: Path, monkeypatch) -> None:
    # The first InputError ended the run: every answer given before it was lost, and no report was written.
    from fakes import FakeGenerator, fake_answerer

    from rag import wiring

    monkeypatch.setattr(wiring, "answerer", lambda s: _Refusing(fake_answerer(s, FakeGenerator())))
    base = {"lang": "de", "answerable": True, "answer": "2.048", "must_contain_any": ["2.048"], "sources": ["a.txt"],
            "evidence": ["2.048 GPUs"], "type": "number"}  # fmt: skip
    questions = {"f1": "Wie viele GPUs nutzte DeepSeek?", "f2": "OVERFLOW GPUs?", "f3": "Wie viele GPUs?"}
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({**base, "id": i, "question": q}) + "\n" for i, q in questions.items()))
    out = tmp_path / "r"
    args = ["--index-dir", str(app_settings.index_dir), "eval", "--gold", str(gold), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "1 question(s) not answered" in result.output and "f2: the prompt has 4290 tokens" in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in report["rows"]] == ["f1", "f3"] and [e["id"] for e in report["errors"]] == ["f2"]
    assert "the prompt has 4290 tokens" in (out / "report.md").read_text(encoding="utf-8")
