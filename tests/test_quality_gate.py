"""CI quality gate: the real default models on a fixed subset of the gold set must stay above the floors.

Floors live in eval/floors.json, set a little below measured results (docs/experiments.md);
raise them as the system improves. Needs `make index` (the Makefile's `test` target runs it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import RagError
from rag.evaluation.gold import load_gold

pytestmark = pytest.mark.real_models
ROOT = Path(__file__).resolve().parent.parent
FLOORS = json.loads((ROOT / "eval" / "floors.json").read_text())


@pytest.fixture(scope="module")
def gate_report():
    from rag import wiring
    from rag.evaluation.run import evaluate_answers, evaluate_retrieval

    items = [i for i in load_gold(ROOT / "eval" / "gold.jsonl") if i.id in set(FLOORS["subset"])]
    assert len(items) == len(FLOORS["subset"]), "every gate id must be in eval/gold.jsonl"
    try:
        answerer = wiring.answerer(Settings())
    except RagError as exc:
        pytest.fail(f"{exc} (the gate needs `make index`)", pytrace=False)
    retrieval = evaluate_retrieval(answerer.retriever, load_gold(ROOT / "eval" / "gold.jsonl"), ["fused"])
    report = evaluate_answers(answerer, items)
    report["retrieval"] = retrieval["modes"]["fused"]["summary"]["overall"]
    return report


@pytest.mark.parametrize("measure", sorted(FLOORS["answers"]))
def test_answer_measure_above_floor(gate_report, measure: str) -> None:
    value = gate_report["summary"]["overall"][measure]
    floor = FLOORS["answers"][measure]
    if measure == "false_refusal":
        assert value <= floor, f"{measure} = {value:.3f} > ceiling {floor}"
    else:
        assert value >= floor, f"{measure} = {value:.3f} < floor {floor}"


@pytest.mark.parametrize("measure", sorted(FLOORS["retrieval"]))
def test_retrieval_measure_above_floor(gate_report, measure: str) -> None:
    assert gate_report["retrieval"][measure] >= FLOORS["retrieval"][measure]
