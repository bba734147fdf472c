"""The shipped gold set (and the held-out set) are well formed and grounded; load_gold rejects broken files by line."""

from __future__ import annotations

import json
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path

import pytest

from rag.answer.pipeline import MAX_QUESTION_CHARS
from rag.errors import InputError
from rag.evaluation.gold import GOLD_TYPES, GoldItem, load_gold

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "eval" / "gold.jsonl"
HELDOUT = ROOT / "eval" / "heldout.jsonl"  # written after tuning, scored once (README)
HELDOUT2 = ROOT / "eval" / "heldout2.jsonl"  # a second, independently written held-out set (ids k001, ...)
DEV = ROOT / "eval" / "dev.jsonl"  # a second tuning set (ids d001, ...), harder questions for retrieval
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="module")
def gold() -> list[GoldItem]:
    return load_gold(GOLD)


@pytest.fixture(scope="module", params=[GOLD, HELDOUT, HELDOUT2, DEV], ids=["gold", "heldout", "heldout2", "dev"])
def each_set(request: pytest.FixtureRequest) -> list[GoldItem]:
    return load_gold(request.param)


@pytest.fixture(scope="module")
def articles() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(CORPUS.glob("*.txt"))}


# --- the shipped gold set ---------------------------------------------------


@pytest.mark.parametrize(("path", "prefix"), [(HELDOUT, "h"), (HELDOUT2, "k")], ids=["heldout", "heldout2"])
@pytest.mark.parametrize("tuning_path", [GOLD, DEV], ids=["gold", "dev"])
def test_heldout_set_is_separate_and_complete(tuning_path: Path, path: Path, prefix: str) -> None:
    heldout, tuning = load_gold(path), load_gold(tuning_path)
    assert [i.id for i in heldout] == [f"{prefix}{n:03d}" for n in range(1, len(heldout) + 1)]
    assert not {i.question.casefold() for i in heldout} & {i.question.casefold() for i in tuning}
    # nor a close rewording of one (the closest pair so far: 0.72); tuning on it would leak the held-out question
    closest = max(
        SequenceMatcher(None, h.question.casefold(), g.question.casefold()).ratio() for h in heldout for g in tuning
    )
    assert closest < 0.8
    unanswerable = [i for i in heldout if not i.answerable]
    assert len(unanswerable) >= 5 and all(not (i.sources or i.evidence) for i in unanswerable)
    assert not any(i.follow_up_of for i in heldout)


def test_gold_set_is_large_enough(gold: list[GoldItem]) -> None:
    assert len(gold) >= 85


@pytest.mark.parametrize(("path", "prefix"), [(GOLD, "q"), (DEV, "d")], ids=["gold", "dev"])
def test_ids_are_unique_and_in_order(path: Path, prefix: str) -> None:
    ids = [item.id for item in load_gold(path)]
    assert len(set(ids)) == len(ids)
    assert ids == [f"{prefix}{n:03d}" for n in range(1, len(ids) + 1)]


def test_dev_set_is_separate_from_gold(gold: list[GoldItem]) -> None:
    assert not {i.question.casefold() for i in load_gold(DEV)} & {i.question.casefold() for i in gold}


def test_every_source_file_exists(each_set: list[GoldItem], articles: dict[str, str]) -> None:
    missing = {(item.id, s) for item in each_set for s in item.sources if s not in articles}
    assert not missing


def test_every_evidence_quote_is_verbatim_in_a_source(each_set: list[GoldItem], articles: dict[str, str]) -> None:
    bad = [
        (item.id, quote)
        for item in each_set
        for quote in item.evidence
        if not any(quote in articles[s] for s in item.sources if s in articles)
    ]
    assert not bad


def test_evidence_quotes_are_short_single_line(each_set: list[GoldItem]) -> None:
    bad = [(i.id, q) for i in each_set for q in i.evidence if not q.strip() or len(q) > 200 or "\n" in q]
    assert not bad


def test_answerable_items_are_grounded(each_set: list[GoldItem]) -> None:
    bad = [i.id for i in each_set if i.answerable and not (i.sources and i.evidence and i.must_contain_any)]
    assert not bad


@pytest.mark.parametrize(("path", "minimum"), [(GOLD, 15), (DEV, 10)], ids=["gold", "dev"])
def test_unanswerable_items_are_empty(path: Path, minimum: int) -> None:
    unanswerable = [i for i in load_gold(path) if not i.answerable]
    assert len(unanswerable) >= minimum
    assert all(i.type == "unanswerable" for i in unanswerable)
    assert all(not (i.must_contain_any or i.sources or i.evidence) for i in unanswerable)


def test_languages_are_balanced(each_set: list[GoldItem]) -> None:
    counts = Counter(item.lang for item in each_set)
    assert set(counts) == {"de", "en"}
    for lang in ("de", "en"):
        assert counts[lang] / len(each_set) >= 0.4, counts


def test_all_types_present(gold: list[GoldItem]) -> None:
    assert {item.type for item in gold} == GOLD_TYPES


def test_every_article_is_a_source_of_several_questions(gold: list[GoldItem], articles: dict[str, str]) -> None:
    counts = Counter(s for item in gold for s in item.sources)
    assert {name: counts[name] for name in articles if counts[name] < 5} == {}


def test_follow_ups_point_back_and_stand_alone(gold: list[GoldItem]) -> None:
    by_id = {item.id: item for item in gold}
    follow_ups = [item for item in gold if item.follow_up_of]
    assert len(follow_ups) >= 3
    for item in follow_ups:
        assert item.follow_up_of in by_id
        assert item.follow_up_of < item.id
        assert item.standalone and item.standalone != item.question


def test_conflict_items_cite_several_articles(gold: list[GoldItem]) -> None:
    conflicts = [item for item in gold if item.conflict]
    assert conflicts
    assert all(len(item.sources) >= 2 for item in conflicts)


# --- load_gold on small files ------------------------------------------------


def _item(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "id": "q001",
        "lang": "de",
        "question": "Wie viele GPUs?",
        "answerable": True,
        "answer": "2.048",
        "must_contain_any": ["2.048"],
        "sources": ["001_632e2609b1775729.txt"],
        "evidence": ["nur 2.048 GPUs"],
        "type": "number",
    }
    item.update(overrides)
    return item


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_gold_reads_items_skips_blank_lines_and_keeps_extra_fields(tmp_path: Path) -> None:
    second = _item(
        id="q002",
        question="Und wie viel hat das gekostet?",
        follow_up_of="q001",
        standalone="Wie viel hat R1 gekostet?",
        conflict=True,
        style="keyword",
    )
    path = _write(tmp_path, json.dumps(_item()), "", "   ", json.dumps(second))
    items = load_gold(path)
    assert [i.id for i in items] == ["q001", "q002"]
    assert items[0].must_contain_any == ("2.048",)
    assert items[0].follow_up_of is None and items[0].conflict is False
    assert items[1].follow_up_of == "q001"
    assert items[1].standalone_question == "Wie viel hat R1 gekostet?"
    assert items[1].conflict is True
    assert items[1].extra == {"style": "keyword"}
    assert items[1].to_dict() == second


def test_load_gold_accepts_other_language_codes(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps(_item(lang="pt-BR")))
    assert load_gold(path)[0].lang == "pt-BR"


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ('{"id": "q002", "lang": ', "not valid JSON"),
        (json.dumps({k: v for k, v in _item(id="q002").items() if k != "evidence"}), "evidence"),
        (json.dumps(_item(id="q002", type="trivia")), "trivia"),
        (json.dumps(_item(id="q001")), "duplicate id 'q001'"),
        (json.dumps(_item(id="q002", lang="")), "lang"),
        (json.dumps(_item(id="q002", answerable="yes")), "answerable"),
        (json.dumps(_item(id="q002", sources="001.txt")), "sources"),
        (json.dumps(_item(id="q002", answerable=False, type="unanswerable")), "must_contain_any"),
        (json.dumps(_item(id="q002", follow_up_of="q999")), "q999"),
        ('["not", "an", "object"]', "JSON object"),
        (json.dumps(_item(id="q002", variants="Wer gründete DeepSeek? Danke!")), "variants"),
        (json.dumps(_item(id="q002", variants=["Wer gründete DeepSeek?", " "])), "variants"),
        (json.dumps(_item(id="q002", question="Wie? " * 401)), "at most 2000"),  # `ask` refuses it mid-run
        (json.dumps(_item(id="q002", variants=["x" * 2001])), "2001 characters"),
    ],
    ids=[
        "bad-json",
        "missing-field",
        "bad-type",
        "duplicate-id",
        "empty-lang",
        "non-bool",
        "non-list",
        "unanswerable-with-must",
        "dangling-follow-up",
        "not-object",
        "variants-not-a-list",
        "variants-empty-question",
        "question-too-long",
        "variant-too-long",
    ],
)
def test_load_gold_names_file_line_and_problem(tmp_path: Path, bad_line: str, needle: str) -> None:
    # The bad line is line 3: a good line and a blank line come first.
    path = _write(tmp_path, json.dumps(_item()), "", bad_line)
    with pytest.raises(InputError) as caught:
        load_gold(path)
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message
    assert needle in message


def test_load_gold_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_gold(tmp_path / "nope.jsonl")


def test_load_gold_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "", "")
    with pytest.raises(InputError, match="no questions"):
        load_gold(path)


def test_load_gold_takes_the_longest_question_ask_takes(tmp_path: Path) -> None:
    # `ask` strips the question first: surrounding space does not count, as there.
    path = _write(tmp_path, json.dumps(_item(question=" " + "x" * MAX_QUESTION_CHARS + "\n")))
    assert len(load_gold(path)[0].question.strip()) == MAX_QUESTION_CHARS


def test_load_gold_skips_a_byte_order_mark(tmp_path: Path) -> None:
    # Editors on Windows write one; it was rejected as "Unexpected UTF-8 BOM" on line 1.
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(_item()) + "\n", encoding="utf-8-sig")
    assert [i.id for i in load_gold(path)] == ["q001"]
