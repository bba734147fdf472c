"""Cited summaries (`rag.answer.summarize`): passages of a document, parts, map and reduce, checks,
streaming, the CLI and `POST /v1/summarize`, with fakes; one test with the real models."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import CONFIG, FakeEmbedder, FakeGenerator, doc, fake_answerer, wait_ready
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.answer.summarize import (
    CHAT_TOKENS,
    LLM_TOKENS_PER_COUNTED,
    SummarySettings,
    SummaryTemplates,
    UnknownDocument,
    checked_topic,
    document_passages,
    pack,
    summarize_document,
    summarize_topic,
)
from rag.errors import ConfigError, InputError
from rag.retrieval.retrieve import RetrievalSettings, Retriever
from rag.retrieval.store import load_index, update_index
from rag.types import Chunk, Document

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = SummaryTemplates.load(ROOT / "prompts")

LONG = doc(
    "long.txt",
    "DeepSeek wurde 2023 in Hangzhou gegründet. Gründer ist Liang Wenfeng. "
    "Das Modell R1 wurde mit 2.048 GPUs trainiert. Das Training kostete 5,6 Millionen Dollar. "
    "Nvidia verlor an einem Tag 600 Milliarden Dollar an Börsenwert. Die Aktie fiel um 17 Prozent. "
    "Die App stand in den USA auf Platz 1 im App Store. Experten sprechen von einem Sputnik-Moment.",
)
OTHER = doc("other.txt", "Der Sitz von DeepSeek ist in Hangzhou. Das Unternehmen hat rund 200 Mitarbeiter.")


def words(text: str) -> int:
    return len(text.split())


def sentence_windows(d: Document) -> list[Chunk]:
    """Chunks of two sentences that overlap by one, like the real chunker with one sentence of overlap."""
    spans = [m.span() for m in re.finditer(r".+?\.(?=\s|$)", d.text)]
    spans = [(a + len(d.text[a:b]) - len(d.text[a:b].lstrip()), b) for a, b in spans]
    chunks = []
    for n in range(max(1, len(spans) - 1)):
        start, end = spans[n][0], spans[min(n + 1, len(spans) - 1)][1]
        text = d.text[start:end]
        chunks.append(Chunk(f"{d.doc_id}#{n}", d.doc_id, d.title, start, end, text, words(text)))
    return chunks


@pytest.fixture
def index(tmp_path: Path):
    update_index(
        tmp_path / "index",
        CONFIG,
        [LONG, OTHER],
        chunk=sentence_windows,
        embed=lambda chunks: FakeEmbedder().embed([c.text for c in chunks], "document"),
        detect_lang=lambda text: "de",
    )
    return load_index(tmp_path / "index", CONFIG)


def run_document(index, generator: FakeGenerator, **kw):
    shown: list[str] = []
    summary = summarize_document(
        "long.txt",
        index=index,
        generator=generator,
        templates=TEMPLATES,
        count_tokens=words,
        on_token=lambda piece: shown.append(piece) if piece else None,
        **kw,
    )
    return summary, shown


# ----------------------------------------------------------------------------- passages and parts


def test_document_passages_give_the_article_once_in_order_with_true_offsets(index) -> None:
    passages = document_passages(index, "long.txt")
    assert [p.number for p in passages] == list(range(1, len(passages) + 1))
    for p in passages:
        assert LONG.text[p.start : p.end] == p.text and p.text == p.text.strip()
        assert p.hit.chunk.start <= p.start < p.end == p.hit.chunk.end  # inside its chunk: citations resolve
    assert all(a.end <= b.start for a, b in itertools.pairwise(passages))  # no overlap
    assert " ".join(p.text for p in passages) == LONG.text  # nothing left out
    assert len(passages) == 7  # 8 sentences: the first chunk whole, then each chunk's new sentence


def test_an_unknown_document_is_named_exit_2_and_404(index) -> None:
    with pytest.raises(UnknownDocument, match=r"'nope\.txt'") as caught:
        summarize_document("nope.txt", index=index, generator=FakeGenerator(), templates=TEMPLATES, count_tokens=words)
    assert caught.value.exit_code == 2 and caught.value.http_status == 404


@pytest.mark.parametrize(
    ("costs", "budget", "groups"),
    [
        ([5] * 7, 30, [4, 3]),  # as even as possible, not 6 + 1
        ([10, 1, 1, 1, 1, 10], 14, [3, 3]),  # the fewest groups (2), then the smallest largest one: 12 + 12
        ([3, 3, 3], 9, [3]),
        ([20, 3, 3], 10, [1, 2]),  # an item over the budget stands alone
        ([], 10, []),
    ],
)
def test_pack_fewest_groups_then_even(costs: list[int], budget: int, groups: list[int]) -> None:
    packed = pack(costs, budget)
    assert [len(g) for g in packed] == groups
    assert [i for g in packed for i in g] == list(range(len(costs)))  # in order, each item once
    assert all(sum(costs[i] for i in g) <= budget for g in packed if len(g) > 1)


# ----------------------------------------------------------------------------- one prompt


def test_a_short_article_is_summarised_in_one_prompt_checked_and_cited(index) -> None:
    reply = (
        "DeepSeek wurde 2023 in Hangzhou gegründet [1]. Das Modell wurde mit 2.048 GPUs trainiert [2]. "
        "DeepSeek hat 900 Mitarbeiter [3]. Nvidia verlor 600 Milliarden Dollar [4]."
    )
    generator = FakeGenerator(script=[reply])
    summary, shown = run_document(index, generator)
    a = summary.answer
    assert len(generator.calls) == 1 and not summary.parts
    assert a.question == "long.txt" and a.lang == "de" and not a.refused and a.grounded
    assert "900" not in a.text and a.unsupported == ("DeepSeek hat 900 Mitarbeiter.",)  # no passage says it
    assert "".join(shown) == a.text  # the stream shows only what passed its check
    assert {c.number for c in a.citations} == {1, 2, 4}
    for c in a.citations:
        assert c.doc_id == "long.txt" and LONG.text[c.start : c.end] == c.quote
    assert "2.048 GPUs" in next(c.quote for c in a.citations if c.number == 2)
    system, user = generator.calls[0][0]["content"], generator.calls[0][-1]["content"]
    assert "in German" in system and "[7] Experten sprechen" in user and user.count("Hangzhou") == 1
    assert a.timings["first_shown"] <= a.timings["total"] and "map" not in a.timings


def test_a_consumer_can_stop_a_summary_while_the_model_reads_its_prompt(index) -> None:
    """A summary's prompt is the longest the model reads (35 s for a long article on 2 cores): a client that
    left stops it between two batches of it, before anything is written."""
    generator = FakeGenerator(script=["DeepSeek wurde 2023 in Hangzhou gegründet [1]."])

    def leave(piece: str) -> None:
        raise InterruptedError

    with pytest.raises(InterruptedError):
        summarize_document("long.txt", index=index, generator=generator, templates=TEMPLATES, count_tokens=words,
                           on_token=leave)  # fmt: skip
    assert len(generator.calls) == 1 and generator.yielded == 0


def test_lang_en_uses_the_english_prompt_and_a_bad_lang_is_refused(index) -> None:
    generator = FakeGenerator(script=["DeepSeek was founded in 2023 in Hangzhou [1]."])
    summary, _ = run_document(index, generator, lang="en")
    assert summary.answer.lang == "en" and "in English" in generator.calls[0][0]["content"]
    assert summary.answer.citations[0].quote.startswith("DeepSeek wurde 2023")
    with pytest.raises(InputError, match="'fr'"):
        run_document(index, FakeGenerator(), lang="fr")


def test_nothing_backed_is_the_refusal_sentence(index) -> None:
    summary, shown = run_document(index, FakeGenerator(script=["Apple kaufte 12 Firmen [1]."]))
    assert summary.answer.refused and shown == ["Dazu enthalten die Artikel keine Angabe."]


def test_a_copied_heading_is_left_out_of_the_summary(tmp_path: Path) -> None:
    """A heading line copied as a sentence (cited, so the claim check passes) says nothing: left out."""
    headed = doc(
        "headed.txt",
        "Chinas KI-Durchbruch\nDeepSeek wurde 2023 in Hangzhou gegründet.\n\nEffizienz als Gamechanger\n"
        "Das Training kostete 5,6 Millionen Dollar.",
    )
    update_index(
        tmp_path / "index",
        CONFIG,
        [headed],
        chunk=lambda d: [Chunk(f"{d.doc_id}#0", d.doc_id, d.title, 0, len(d.text), d.text, words(d.text))],
        embed=lambda chunks: FakeEmbedder().embed([c.text for c in chunks], "document"),
        detect_lang=lambda text: "de",
    )
    index = load_index(tmp_path / "index", CONFIG)
    reply = "Chinas KI-Durchbruch [1]. Effizienz als Gamechanger [1]. Das Training kostete 5,6 Millionen Dollar [1]."
    summary = summarize_document(
        "headed.txt", index=index, generator=FakeGenerator(script=[reply]), templates=TEMPLATES, count_tokens=words
    )
    assert summary.answer.text == "Das Training kostete 5,6 Millionen Dollar [1]."
    assert (
        not summary.answer.refused and summary.answer.citations[0].quote == "Das Training kostete 5,6 Millionen Dollar."
    )
    only_headings = FakeGenerator(script=["Effizienz als Gamechanger [1]."])
    summary = summarize_document(
        "headed.txt", index=index, generator=only_headings, templates=TEMPLATES, count_tokens=words
    )
    assert summary.answer.refused


# ----------------------------------------------------------------------------- map and reduce


def test_a_long_article_is_summarised_in_parts_then_reduced_with_the_original_numbers(index) -> None:
    replies = [
        "R1 wurde mit 2.048 GPUs trainiert [2].",
        "Nvidia verlor 600 Milliarden Dollar an Börsenwert [4]. Die Aktie fiel um 90 Prozent [4].",
        "Die App stand auf Platz 1 im App Store [6].",
        "R1 wurde mit 2.048 GPUs trainiert [2]. Nvidia verlor 600 Milliarden Dollar [4]. Die App stand "
        "auf Platz 1 [6].",
    ]
    generator = FakeGenerator(script=replies)
    parts = []
    settings = SummarySettings(part_tokens=32)  # the passages cost 64 words: three parts
    summary, shown = run_document(index, generator, settings=settings, on_part=parts.append)
    assert [p.number for p in summary.parts] == [1, 2, 3] and parts == list(summary.parts)
    assert [(p.first, p.last) for p in summary.parts] == [(1, 2), (3, 5), (6, 7)]  # 20, 25, 19: not 27, 31, 6
    assert "90 Prozent" not in summary.parts[1].text  # each part is checked before it becomes a note
    reduce_prompt = generator.calls[-1]
    assert "combine notes" in reduce_prompt[0]["content"]
    notes = reduce_prompt[-1]["content"]
    assert "2.048 GPUs trainiert [2]" in notes and "Börsenwert [4]" in notes and "90" not in notes
    a = summary.answer
    assert not a.refused and a.grounded and "".join(shown) == a.text
    assert {c.number for c in a.citations} == {2, 4, 6}  # the article's passage numbers, not the notes'
    for c in a.citations:
        assert c.doc_id == "long.txt" and LONG.text[c.start : c.end] == c.quote
    assert "App Store" in next(c.quote for c in a.citations if c.number == 6)
    assert len(a.passages) == 7 and a.timings["map"] > 0
    assert a.completion_tokens == sum(words(r) for r in replies)  # every generation is counted


def test_parts_with_nothing_backed_give_the_refusal(index) -> None:
    generator = FakeGenerator(
        script=["Apple kaufte 12 Firmen [1].", "Apple kaufte 13 Firmen [4].", "Microsoft kaufte 14 Firmen [6]."]
    )
    summary, shown = run_document(index, generator, settings=SummarySettings(part_tokens=32))
    assert summary.answer.refused and len(generator.calls) == 3  # no reduce over nothing
    assert all(p.refused for p in summary.parts) and shown == ["Dazu enthalten die Artikel keine Angabe."]


def test_a_part_cut_by_the_token_limit_loses_its_unfinished_sentence(index) -> None:
    replies = [
        "R1 wurde mit 2.048 GPUs trainiert [2]. DeepSeek wurde 2023 gegründet [1]",  # 11 words: cut at the limit
        "Nvidia verlor 600 Milliarden Dollar [4].",
        "Die App stand auf Platz 1 [6].",
        "R1 wurde mit 2.048 GPUs trainiert [2].",
    ]
    settings = SummarySettings(part_tokens=32, max_tokens=11)
    summary, _ = run_document(index, FakeGenerator(script=replies), settings=settings)
    assert summary.parts[0].text == "R1 wurde mit 2.048 GPUs trainiert [2]."
    whole = SummarySettings(part_tokens=32, max_tokens=40)  # not at the limit: the reply ended by itself
    summary, _ = run_document(index, FakeGenerator(script=replies), settings=whole)
    assert summary.parts[0].text.endswith("DeepSeek wurde 2023 gegründet [1]")


def test_notes_over_one_reduce_prompt_are_condensed_in_groups_first(index) -> None:
    part_replies = [
        "DeepSeek wurde 2023 in Hangzhou gegründet [1]. R1 wurde mit 2.048 GPUs trainiert [2].",  # 15 words
        "Das Training kostete 5,6 Millionen Dollar [3]. Nvidia verlor 600 Milliarden Dollar [4].",  # 14
        "Die App stand in den USA auf Platz 1 [6]. Experten sprechen von einem Sputnik-Moment [7].",  # 17
    ]
    condensed = "DeepSeek trainierte R1 mit 2.048 GPUs für 5,6 Millionen Dollar [2][3]."
    final = "R1 wurde mit 2.048 GPUs trainiert [2]. Die App stand in den USA auf Platz 1 [6]."
    generator = FakeGenerator(script=[*part_replies, condensed, final])
    summary, shown = run_document(index, generator, settings=SummarySettings(part_tokens=36))
    assert len(summary.parts) == 3 and len(generator.calls) == 3 + 1 + 1  # notes 1+2 condensed, note 3 kept
    assert generator.calls[3][-1]["content"].count("[") == 4  # the condense prompt: the first two notes
    final_notes = generator.calls[-1][-1]["content"]
    assert "für 5,6 Millionen Dollar [2][3]" in final_notes and "Sputnik-Moment [7]" in final_notes
    assert "Hangzhou" not in final_notes
    assert {c.number for c in summary.answer.citations} == {2, 6} and "".join(shown) == final


def test_notes_too_long_for_the_reduce_prompt_even_alone_are_cut_to_whole_sentences_and_the_cut_named(index) -> None:
    """RAG_MAX_TOKENS near half of RAG_N_CTX: two part notes of 47 and 50 words, against a reduce budget of 73,
    fit only one at a time, so no group can be condensed. The final prompt must still fit the context:
    each note keeps its first sentences (the prompts ask for the most important first), and what was cut
    is named in ``left_out``, never lost silently."""
    part_replies = [
        "Das Unternehmen DeepSeek wurde im Jahr 2023 in der Stadt Hangzhou gegründet [1]. Der Gründer des "
        "Unternehmens DeepSeek ist Liang Wenfeng [1]. Das Modell R1 wurde laut dem Artikel mit insgesamt 2.048 "
        "GPUs trainiert [2]. Das Training des Modells R1 kostete insgesamt nur 5,6 Millionen Dollar [3].",
        "Der Konzern Nvidia verlor an einem einzigen Tag insgesamt 600 Milliarden Dollar an Börsenwert [4]. Die "
        "Aktie des Konzerns Nvidia fiel an diesem Tag um 17 Prozent [5]. Die App stand in den USA auf Platz 1 "
        "im App Store [6]. Experten sprechen laut dem Artikel von einem Sputnik-Moment [7].",
    ]
    generator = FakeGenerator(script=[*part_replies, "Nvidia verlor 600 Milliarden Dollar an Börsenwert [4]."])
    settings = SummarySettings(n_ctx=512, max_tokens=240)
    summary, _ = run_document(index, generator, settings=settings)
    assert [(p.first, p.last) for p in summary.parts] == [(1, 3), (4, 7)] and len(generator.calls) == 3
    final = generator.calls[-1]
    prompt = sum(words(m["content"]) for m in final) * LLM_TOKENS_PER_COUNTED + CHAT_TOKENS
    assert prompt + settings.max_tokens <= settings.n_ctx, prompt  # 302 before the fix: 542 > 512
    notes = final[-1]["content"]
    assert "Hangzhou gegründet [1]" in notes and "Börsenwert [4]" in notes  # every part keeps its first sentence
    part_texts = " ".join(p.text for p in summary.parts)
    assert summary.left_out == (
        "Das Training des Modells R1 kostete insgesamt nur 5,6 Millionen Dollar [3][2].",
        "Die App stand in den USA auf Platz 1 im App Store [6].",
        "Experten sprechen laut dem Artikel von einem Sputnik-Moment [7].",
    )
    assert all(s in part_texts and s not in notes for s in summary.left_out)  # whole note sentences, markers kept
    assert summary.to_dict()["left_out"] == list(summary.left_out)
    assert not summary.answer.refused and {c.number for c in summary.answer.citations} == {4}


def test_notes_cut_to_fit_keep_their_first_sentences_in_order_and_a_long_first_one_shortened() -> None:
    """The cut kept a later sentence that fit where the first did not ("Kurz [2]." without the sentence before),
    and dropped a note with no sentence that fit whole: now each note keeps a run of its first sentences, and a
    first sentence too long alone keeps its first words with its markers."""
    from rag.answer.summarize import _Run

    run = _Run("long.txt", "de", 0.0, FakeGenerator(), SummarySettings())
    long = "Eins zwei drei vier fünf sechs sieben acht neun zehn elf [1]."
    notes = [f"{long} Kurz [2].", "Ohne Satzende und ohne Punkt am Ende dieser Notiz [3]"]
    kept = run.fit(notes, 12, words)
    assert kept == ["Eins zwei drei … [1].", "Ohne Satzende und … [3]."], kept
    assert run.left_out == [long, "Kurz [2].", notes[1]]
    assert sum(words(n) + 1 for n in kept) <= 12
    # With room for the first sentences, a note's later one is cut and never kept without the one before it.
    run = _Run("long.txt", "de", 0.0, FakeGenerator(), SummarySettings())
    second = "Ein sehr viel längerer zweiter Satz mit vielen Wörtern [2]."
    notes = [f"Erster Satz hier [1]. {second} Kurz [3].", "B eins [4]."]
    assert run.fit(notes, 12, words) == ["Erster Satz hier [1].", "B eins [4]."]
    assert run.left_out == [second, "Kurz [3]."]


def test_a_context_too_small_for_any_text_is_a_config_error(index) -> None:
    with pytest.raises(ConfigError, match="RAG_N_CTX=300"):
        run_document(index, FakeGenerator(), settings=SummarySettings(n_ctx=300, max_tokens=200))


def test_the_default_budget_fits_every_corpus_article_in_one_prompt() -> None:
    """With n_ctx 2048 a corpus article (at most ~1,250 counted tokens) is summarised in one pass: the
    fastest first sentence; smaller contexts or longer articles go through parts."""
    from rag.answer.summarize import _Run

    run = _Run("x", "de", 0.0, FakeGenerator(), SummarySettings())
    budget = run.budget(TEMPLATES.document["de"], {}, lambda text: len(text) // 4)
    assert 1250 < budget < 1450, budget


# ----------------------------------------------------------------------------- topics


def test_a_topic_is_searched_summarised_across_articles_and_gated(index) -> None:
    retriever = Retriever(index, FakeEmbedder(), RetrievalSettings(k=5))
    generator = FakeGenerator(script=["DeepSeek hat seinen Sitz in Hangzhou [1]."])
    summary = summarize_topic(
        "Sitz von DeepSeek in Hangzhou", retriever=retriever, generator=generator, templates=TEMPLATES,
        count_tokens=words, settings=SummarySettings(min_dense_score=0.1),
    )  # fmt: skip
    a = summary.answer
    assert summary.topic == "Sitz von DeepSeek in Hangzhou" and not a.refused and a.citations
    assert "Thema: Sitz von DeepSeek in Hangzhou" in generator.calls[0][-1]["content"]
    assert {p.hit.chunk.doc_id for p in a.passages} == {"long.txt", "other.txt"}
    off_topic = summarize_topic(
        "Wetter morgen", retriever=retriever, generator=FakeGenerator(), templates=TEMPLATES,
        count_tokens=words, settings=SummarySettings(min_dense_score=0.5),
    )  # fmt: skip
    assert off_topic.answer.refused and not off_topic.answer.passages
    with pytest.raises(InputError, match="topic"):
        summarize_topic(" ", retriever=retriever, generator=FakeGenerator(), templates=TEMPLATES, count_tokens=words)


def test_checked_topic_strips_and_names_the_limits() -> None:
    assert checked_topic("  GPUs und Kosten \n") == "GPUs und Kosten"
    for bad, length in ((" \t ", 0), ("x" * 501, 501)):
        with pytest.raises(InputError, match=f"topic must have 1 to 500 characters, got {length}"):
            checked_topic(bad)


# ----------------------------------------------------------------------------- HTTP and CLI

SUMMARY_A = "DeepSeek nutzte 2.048 GPUs [1]. Das Training kostete 5,6 Millionen Dollar [1]."
# [1] backs both sentences: quoted from the first backing sentence to the last, one span of the article.
QUOTE_A = "DeepSeek nutzte 2.048 GPUs.\nDas Training kostete 5,6 Millionen Dollar."


@pytest.fixture
def summary_client(app_settings):
    from rag.serve.app import create_app

    def build(settings):
        return fake_answerer(settings, FakeGenerator(script=[SUMMARY_A] * 3))

    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        yield c


def test_http_summary_json(summary_client) -> None:
    r = summary_client.post("/v1/summarize", json={"doc_id": "a.txt"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["doc_id"] == "a.txt" and body["topic"] is None and body["parts"] == []
    assert body["text"] == SUMMARY_A and body["lang"] == "de" and not body["refused"]
    assert body["citations"] and all(c["quote"] == QUOTE_A and c["doc_id"] == "a.txt" for c in body["citations"])


def test_http_summary_streams_each_part_before_the_summary(summary_client, monkeypatch) -> None:
    """A long article's parts arrive as `part` events while the model works (the first event may be one)."""
    from rag.answer.summarize import Part
    from rag.serve.routes import summarize as route

    def in_parts(doc_id, *, on_part, **kw):  # type: ignore[no-untyped-def]
        for n in (1, 2):
            on_part(Part(n, 2, n, n, f"Teil {n} [{n}].", refused=False))
        return summarize_document(doc_id, on_part=on_part, **kw)

    monkeypatch.setattr(route, "summarize_document", in_parts)
    with summary_client.stream("POST", "/v1/summarize", json={"doc_id": "a.txt", "stream": True}) as r:
        assert r.status_code == 200
        events = [block for block in r.read().decode().split("\n\n") if block]
    kinds = [e.split("\n")[0] for e in events]
    assert kinds[:2] == ["event: part"] * 2 and kinds[-1] == "event: summary"
    assert set(kinds[2:-1]) == {"event: token"}
    parts = [json.loads(e.split("data: ", 1)[1]) for e in events[:2]]
    assert parts[1] == {"number": 2, "of": 2, "first": 2, "last": 2, "text": "Teil 2 [2].", "refused": False}


def test_http_summary_streams_checked_sentences_then_the_summary(summary_client) -> None:
    with summary_client.stream("POST", "/v1/summarize", json={"doc_id": "a.txt", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [block for block in r.read().decode().split("\n\n") if block]
    kinds = [e.split("\n")[0] for e in events]
    assert kinds[:-1] == ["event: token"] * (len(kinds) - 1) and kinds[-1] == "event: summary"
    final = json.loads(events[-1].split("data: ", 1)[1])
    tokens = [json.loads(e.split("data: ", 1)[1])["text"] for e in events[:-1]]
    assert "".join(tokens) == final["text"] == SUMMARY_A and final["doc_id"] == "a.txt"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"doc_id": "nope.txt"}, 404, "'nope.txt'"),
        ({"doc_id": "nope.txt", "stream": True}, 404, "'nope.txt'"),
        ({}, 422, "doc_id"),
        ({"doc_id": "a.txt", "topic": "GPUs"}, 422, "one of them"),
        ({"doc_id": "a.txt", "lang": "fr"}, 422, "lang"),
        ({"topic": "x" * 501}, 422, "topic"),
        ({"doc_id": "a.txt", "k": 3}, 422, "`k` only with `topic`"),  # was ignored (the CLI refuses it too)
    ],
)
def test_http_summary_errors(summary_client, body, status: int, needle: str) -> None:
    r = summary_client.post("/v1/summarize", json=body)
    assert r.status_code == status and needle in r.json()["error"]["message"], r.text


def test_http_topic_summary(summary_client) -> None:
    r = summary_client.post("/v1/summarize", json={"topic": "GPUs und Kosten des Trainings", "lang": "de"})
    body = r.json()
    assert r.status_code == 200 and body["topic"] == "GPUs und Kosten des Trainings" and body["doc_id"] is None
    assert body["citations"] and all(c["doc_id"] == "a.txt" for c in body["citations"])


def test_http_topic_no_article_names_is_refused_plain_and_streamed(summary_client) -> None:
    r = summary_client.post("/v1/summarize", json={"topic": "Tesla Aktie"})
    assert (
        r.status_code == 200 and r.json()["refused"] and r.json()["text"] == "Dazu enthalten die Artikel keine Angabe."
    )
    with summary_client.stream("POST", "/v1/summarize", json={"topic": "Tesla stock", "stream": True}) as r:
        events = [block for block in r.read().decode().split("\n\n") if block]
    assert [e.split("\n")[0] for e in events] == ["event: token", "event: summary"]
    assert '"refused": true' in events[-1] and "The articles do not" in events[0]


@pytest.fixture
def cli_fakes(app_settings, monkeypatch: pytest.MonkeyPatch):
    """`rag summarize` over the fake index with a scripted generator; the answer model must not load for a miss."""
    from rag import wiring

    generator = FakeGenerator(script=[SUMMARY_A])
    loads: list[str] = []

    def fake_generator(settings):
        loads.append("generator")
        return generator

    monkeypatch.setattr(wiring, "generator", fake_generator)
    monkeypatch.setenv("RAG_INDEX_DIR", str(app_settings.index_dir))
    return loads


def test_cli_summarize_streams_then_lists_sources(cli_fakes) -> None:
    from rag.cli.main import app

    result = CliRunner().invoke(app, ["summarize", "a.txt"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(SUMMARY_A) and "(a.txt, chars " in result.stdout


def test_cli_summarize_errors(cli_fakes) -> None:
    from rag.cli.main import app

    missing = CliRunner().invoke(app, ["summarize", "nope.txt"])
    assert missing.exit_code == 2 and "error: no document 'nope.txt'" in missing.output
    assert cli_fakes == []  # refused before the answer model loads
    neither = CliRunner().invoke(app, ["summarize"])
    assert neither.exit_code == 2 and "--topic" in neither.output
    both = CliRunner().invoke(app, ["summarize", "a.txt", "--topic", "GPUs"])
    assert both.exit_code == 2
    # --k was ignored for a document, and a blank topic waited for the models to load
    ignored = CliRunner().invoke(app, ["summarize", "a.txt", "--k", "3"])
    assert ignored.exit_code == 2 and "--k: only with --topic" in ignored.output
    blank = CliRunner().invoke(app, ["summarize", "--topic", "   "])
    assert blank.exit_code == 2 and "the topic must have 1 to" in blank.output
    assert cli_fakes == []


def test_cli_summarize_says_when_part_sentences_did_not_fit(cli_fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sentences cut to fit the final prompt (`Summary.left_out`) are named on stderr, not only in --json."""
    from dataclasses import replace

    from rag.answer import summarize
    from rag.cli.main import app

    real = summarize.summarize_document
    monkeypatch.setattr(summarize, "summarize_document", lambda *a, **kw: replace(real(*a, **kw), left_out=("X [2].",)))
    result = CliRunner().invoke(app, ["summarize", "a.txt"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(SUMMARY_A) and "1 sentence(s) of the part summaries did not fit" in result.stderr
    monkeypatch.setattr(summarize, "summarize_document", real)
    plain = CliRunner().invoke(app, ["summarize", "a.txt"])
    assert plain.exit_code == 0 and "did not fit" not in plain.stderr, plain.output


def test_cli_summarize_json(cli_fakes) -> None:
    from rag.cli.main import app

    result = CliRunner().invoke(app, ["summarize", "a.txt", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["doc_id"] == "a.txt" and body["text"] == SUMMARY_A and body["citations"][0]["quote"] == QUOTE_A


# ----------------------------------------------------------------------------- the real models


@pytest.mark.real_models
def test_real_model_summarises_an_article_in_parts_with_resolving_citations() -> None:
    """The shortest corpus article with the default answer model, forced into two parts and a reduce:
    a German summary whose every citation quotes the article at its offsets."""
    from types import SimpleNamespace

    from rag import wiring
    from rag.config import Settings
    from rag.errors import ModelError
    from rag.ingest.load import load_documents
    from rag.language import detect_language

    settings = Settings()
    try:
        generator, count = wiring.generator(settings), wiring.token_counter(settings)
    except ModelError as exc:
        pytest.fail(f"{exc} (the real-model tests need `make models`)", pytrace=False)
    docs, _ = load_documents([ROOT / "corpus" / "002_a67883e9b2eeb20f.txt"])
    article = docs[0]
    chunks = wiring.chunker(settings)(article)  # the real chunker; no embedding needed for a document summary
    index = SimpleNamespace(documents={article.doc_id: article}, chunks=chunks, langs={article.doc_id: "de"})
    parts = []
    summary = summarize_document(
        article.doc_id, index=index, generator=generator, templates=TEMPLATES, count_tokens=count,  # type: ignore[arg-type]
        settings=replace(SummarySettings.from_settings(settings), part_tokens=400), on_part=parts.append,
    )  # fmt: skip
    a = summary.answer
    assert len(summary.parts) >= 2 and parts, summary.parts
    assert not a.refused and a.citations and detect_language(a.text) == "de", a
    assert len(re.findall(r"[.!?](?:\s*\[\d+\])*(?:\s|$)", a.text)) >= 2, a.text  # a few sentences
    for c in a.citations:
        assert c.doc_id == article.doc_id and article.text[c.start : c.end] == c.quote
    assert a.timings["first_token"] > a.timings["map"] > 0
