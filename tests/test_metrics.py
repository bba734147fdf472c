"""Worked examples for the retrieval metrics."""

from __future__ import annotations

import doctest

import pytest

import rag.evaluation.retrieval_metrics
from rag.evaluation.retrieval_metrics import (
    evidence_hit,
    first_relevant_rank,
    mrr,
    normalise_whitespace,
    recall_at_k,
    summarise,
)


def test_docstring_examples() -> None:
    result = doctest.testmod(rag.evaluation.retrieval_metrics)
    assert result.attempted > 0
    assert result.failed == 0


def test_whitespace_runs_are_normalised_on_both_sides() -> None:
    chunk = "Deepseek benötigte für das Training\n von R1 nur 2.048\u00a0GPUs – deutlich weniger"
    assert evidence_hit(["Training von R1 nur   2.048 GPUs"], chunk)
    assert normalise_whitespace("\ta \n\n b\u00a0 c ") == "a b c"


def test_match_is_otherwise_exact() -> None:
    chunk = "Die Entwicklungskosten lagen bei lediglich 5,6 Millionen US-Dollar."
    assert evidence_hit(["5,6 Millionen"], chunk)
    assert not evidence_hit(["5.6 Millionen"], chunk)
    assert not evidence_hit(["5,6 millionen"], chunk)


def test_any_quote_counts_and_empty_quotes_never_hit() -> None:
    chunk = "Nvidia verlor 600 Milliarden Dollar."
    assert evidence_hit(["2.048 GPUs", "600 Milliarden"], chunk)
    assert not evidence_hit(["", "   "], chunk)


def test_first_relevant_rank() -> None:
    chunks = ["Hangzhou ist eine Stadt.", "nur 2.048 GPUs", "wieder nur 2.048 GPUs"]
    assert first_relevant_rank(["2.048 GPUs"], chunks) == 2
    assert first_relevant_rank(["Hangzhou"], chunks) == 1
    assert first_relevant_rank(["H800"], chunks) is None
    assert first_relevant_rank(["H800"], []) is None


def test_recall_at_k_worked_example() -> None:
    ranks = [1, 2, 4, None]
    assert recall_at_k(ranks, 1) == 0.25
    assert recall_at_k(ranks, 3) == 0.5
    assert recall_at_k(ranks, 4) == 0.75
    assert recall_at_k(ranks, 10) == 0.75


def test_mrr_worked_example() -> None:
    assert mrr([1, 2, 4, None]) == pytest.approx((1 + 0.5 + 0.25 + 0) / 4)
    assert mrr([None, None]) == 0.0


def test_no_rows_give_zero() -> None:
    assert recall_at_k([], 5) == 0.0
    assert mrr([]) == 0.0
    no_rows: list[dict[str, object]] = []
    assert summarise(no_rows)["overall"] == {
        "n": 0,
        "recall@1": 0.0,
        "recall@3": 0.0,
        "recall@5": 0.0,
        "recall@10": 0.0,
        "mrr": 0.0,
    }


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_ranks_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="1-based"):
        mrr([1, bad])  # type: ignore[list-item]


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k([1], 0)


def test_summarise_groups_and_skips_unanswerable() -> None:
    rows: list[dict[str, object]] = [
        {"lang": "de", "type": "number", "rank": 1},
        {"lang": "de", "type": "fact", "rank": 3},
        {"lang": "en", "type": "fact", "rank": None},
        {"lang": "en", "type": "cross_lingual", "rank": 2},
        {"lang": "en", "type": "unanswerable", "rank": None, "answerable": False},
    ]
    s = summarise(rows, ks=(1, 3))
    assert set(s) == {"overall", "by_lang", "by_type"}
    assert s["overall"] == {"n": 4, "recall@1": 0.25, "recall@3": 0.75, "mrr": pytest.approx(11 / 24)}
    assert s["by_lang"]["de"] == {"n": 2, "recall@1": 0.5, "recall@3": 1.0, "mrr": pytest.approx(2 / 3)}
    assert s["by_lang"]["en"] == {"n": 2, "recall@1": 0.0, "recall@3": 0.5, "mrr": 0.25}
    assert list(s["by_type"]) == ["cross_lingual", "fact", "number"]
    assert s["by_type"]["fact"]["recall@3"] == 0.5


def test_summarise_custom_keys_and_missing_key() -> None:
    rows = [{"lang": "de", "type": "fact", "rank": 1, "source": "a"}]
    assert set(summarise(rows, keys=("source",))) == {"overall", "by_source"}
    with pytest.raises(ValueError, match="'style'"):
        summarise(rows, keys=("style",))
