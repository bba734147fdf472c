"""Sanity of the answer measures: hand-made answers move each measure the right way."""

from __future__ import annotations

from rag.evaluation.gold import GoldItem
from rag.evaluation.scoring import aggregate, score
from rag.types import Answer, Citation, Document

ARTICLE = "Deepseek benötigte für das Training von R1 nur 2.048 GPUs. Das war billig."
DOCS = {
    "a.txt": Document("a.txt", "A", "a.txt", ARTICLE, "h"),
    "b.txt": Document("b.txt", "B", "b.txt", "Nvidia verlor 600 Milliarden Dollar.", "h2"),
}
ITEM = GoldItem(
    "q1", "de", "Wie viele GPUs?", True, "2.048", ("2.048", "2048"), ("a.txt",), ("nur 2.048 GPUs",), "number"
)
UNANSWERABLE = GoldItem("q2", "en", "How many employees?", False, "", (), (), (), "unanswerable")
GOOD = Citation(1, "a.txt", "A", "a.txt#0", 0, 58, ARTICLE[0:58])
WRONG = Citation(2, "b.txt", "B", "b.txt#0", 0, 36, "Nvidia verlor 600 Milliarden Dollar.")


def answer(text: str, *, lang: str = "de", refused: bool = False, citations=()) -> Answer:
    return Answer("q", text, lang, refused, citations=tuple(citations))


def test_correct_answer_with_right_citation() -> None:
    row = score(ITEM, answer("DeepSeek nutzte 2.048 GPUs [1].", citations=[GOOD]), DOCS)
    assert row["correct"] and row["citation_precision"] == 1.0 and row["citation_recall"]
    assert row["citations_resolve"] and row["lang_match"] and row["false_refusal"] is False


def test_correct_answer_with_wrong_citation_loses_precision_and_recall() -> None:
    row = score(ITEM, answer("DeepSeek nutzte 2.048 GPUs [2].", citations=[WRONG]), DOCS)
    assert row["correct"] and row["citation_precision"] == 0.0 and row["citation_recall"] is False
    mixed = score(ITEM, answer("DeepSeek nutzte 2.048 GPUs [1][2].", citations=[GOOD, WRONG]), DOCS)
    assert mixed["citation_precision"] == 0.5 and mixed["citation_recall"]


def test_a_citation_marker_is_no_part_of_the_answer_scored() -> None:
    eight = GoldItem("q3", "de", "Wie viele Labore?", True, "8", ("8",), ("a.txt",), (), "number")
    assert score(eight, answer("Es sind viele Labore [8].", citations=[GOOD]), DOCS)["correct"] is False
    assert score(eight, answer("Es sind 8 Labore [1].", citations=[GOOD]), DOCS)["correct"] is True


def test_a_gold_number_is_no_part_of_a_longer_number() -> None:
    """Substring matching scored "Im Jahr 2018" right for the gold number "8" (dev d058)."""
    eight = GoldItem("q5", "de", "Wie viele Labore?", True, "8", ("8",), ("a.txt",), (), "number")
    assert score(eight, answer("Im Jahr 2018 waren es 80 Labore [1].", citations=[GOOD]), DOCS)["correct"] is False
    assert score(eight, answer("Es waren 8 Labore [1].", citations=[GOOD]), DOCS)["correct"] is True
    year = GoldItem("q6", "de", "Wann?", True, "2023", ("2023",), ("a.txt",), (), "fact")
    assert score(year, answer("Gegründet am 17.07.2023 [1].", citations=[GOOD]), DOCS)["correct"] is True
    # Words stay stems, as the gold sets write them ("lob" for "lobte", "top" for "topped").
    praise = GoldItem("q7", "de", "Wer lobte?", True, "Lob", ("lob",), ("b.txt",), (), "fact")
    assert score(praise, answer("Altman lobte DeepSeek [1].", citations=[WRONG]), DOCS)["correct"] is True


def test_refusal_on_answerable_is_a_false_refusal() -> None:
    row = score(ITEM, answer("Dazu enthalten die Artikel keine Angabe.", refused=True), DOCS)
    assert row["correct"] is False and row["false_refusal"] is True and row["cites"] is None


def test_answer_in_the_wrong_language() -> None:
    row = score(ITEM, answer("DeepSeek used 2,048 GPUs for the training [1].", citations=[GOOD]), DOCS)
    assert row["lang_match"] is False


def test_an_answer_of_names_only_has_no_language_to_match() -> None:
    row = score(ITEM, answer("ChatGPT [1].", citations=[GOOD]), DOCS)
    assert row["lang_match"] is None
    assert score(ITEM, answer("Es war ChatGPT [1].", citations=[GOOD]), DOCS)["lang_match"] is True


def test_unanswerable_refused_or_answered() -> None:
    assert score(UNANSWERABLE, answer("The articles do not say.", lang="en", refused=True), DOCS)["refusal_ok"] is True
    invented = score(UNANSWERABLE, answer("DeepSeek has 10 employees [1].", lang="en", citations=[GOOD]), DOCS)
    assert invented["refusal_ok"] is False and invented["correct"] is None


def test_citation_that_does_not_resolve_is_caught() -> None:
    bad = Citation(1, "a.txt", "A", "a.txt#0", 5, 20, "not what is there")
    assert score(ITEM, answer("2.048 GPUs [1].", citations=[bad]), DOCS)["citations_resolve"] is False


def test_aggregate_rates_by_language() -> None:
    rows = [
        score(ITEM, answer("DeepSeek nutzte 2.048 GPUs [1].", citations=[GOOD]), DOCS),
        score(ITEM, answer("Dazu enthalten die Artikel keine Angabe.", refused=True), DOCS),
        score(UNANSWERABLE, answer("The articles do not say.", lang="en", refused=True), DOCS),
    ]
    s = aggregate(rows)
    assert s["overall"]["correct"] == 0.5 and s["overall"]["false_refusal"] == 0.5
    assert s["by_lang"]["en"]["refusal_ok"] == 1.0 and s["by_lang"]["de"]["refusal_ok"] is None
