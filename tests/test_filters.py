"""Document and date filters: restricted inside retrieval (FAISS selector, BM25 rows), over the API and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes import CONFIG, FakeEmbedder, FakeGenerator, doc, fake_answerer, run, wait_ready
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.errors import InputError
from rag.retrieval import dense as dense_index
from rag.retrieval.bm25 import KeywordIndex
from rag.retrieval.filters import make_filter
from rag.retrieval.retrieve import RetrievalSettings, Retriever
from rag.retrieval.store import load_index
from rag.types import Filter

# "GPU" lines dominate x.txt; y.txt and z.txt each hold five lines, only two of them about GPUs.
X = replace(
    doc("x.txt", "\n".join(f"DeepSeek nutzte {n} GPUs für das Training." for n in range(8))), published="2025-01-28"
)
Y = replace(
    doc(
        "y.txt",
        "Die GPUs kamen von Nvidia.\nNvidia verlor an der Börse.\nDer Kurs fiel stark.\n"
        "Anleger verkauften Aktien.\nAuch GPUs wurden billiger.",
    ),
    published="2025-02-03",
    author="Max Muster",
)
Z = doc(
    "z.txt", "Liang Wenfeng gründete DeepSeek.\nDer Sitz ist in Hangzhou.\nHigh-Flyer zahlt.\nEs gibt GPUs.\nDas Ende."
)


@pytest.fixture
def retriever(tmp_path: Path) -> Retriever:
    run(tmp_path, [X, Y, Z])
    # Few candidates: a filter applied to the unfiltered top candidates would leave fewer than k.
    return Retriever(load_index(tmp_path, CONFIG), FakeEmbedder(), RetrievalSettings(k=4, candidates=4))


# ----------------------------------------------------------------------------- checking a filter


@pytest.mark.parametrize("bad", ["28.01.2025", "2025-13-01", "2025-02-30", "gestern", "2025-1-5"])
def test_bad_dates_name_the_field(bad: str) -> None:
    with pytest.raises(InputError, match=rf"since '{bad}' is not a (valid )?date"):
        make_filter(since=bad)
    with pytest.raises(InputError, match="until"):
        make_filter(until=bad)


def test_since_after_until_and_empty_ids_are_refused() -> None:
    with pytest.raises(InputError, match="since 2025-02-01 is after until 2025-01-01"):
        make_filter(since="2025-02-01", until="2025-01-01")
    with pytest.raises(InputError, match="empty document id"):
        make_filter(docs=[" "])
    assert make_filter(since=" 2025-01-28 ") == Filter(since="2025-01-28")


# ----------------------------------------------------------------------------- restricted retrieval


def test_unfiltered_search_prefers_the_other_document(retriever: Retriever) -> None:
    hits = retriever.search("Wie viele GPUs nutzte DeepSeek für das Training?")
    assert [h.chunk.doc_id for h in hits].count("y.txt") < 2  # so the filtered tests below mean something


def test_doc_filter_returns_k_hits_all_inside_it(retriever: Retriever) -> None:
    where = Filter(docs=("y.txt",))
    hits = retriever.search("Wie viele GPUs nutzte DeepSeek für das Training?", 4, where=where)
    assert len(hits) == 4 and {h.chunk.doc_id for h in hits} == {"y.txt"}
    assert all(h.dense_rank is not None for h in hits)  # the dense side searched inside y.txt
    assert {h.chunk.doc_id for h in retriever.search("GPUs", 5, where=Filter(docs=("y.txt", "z.txt")))} <= {
        "y.txt",
        "z.txt",
    }


def test_keyword_only_search_is_restricted_too(retriever: Retriever) -> None:
    retriever.settings = replace(retriever.settings, dense=False)
    hits = retriever.search("GPUs Training", 4, where=Filter(docs=("z.txt",)))
    assert [h.chunk.doc_id for h in hits] == ["z.txt"]  # the one z.txt line that names GPUs


def test_date_filter_is_inclusive_and_skips_undated_documents(retriever: Retriever) -> None:
    def docs(where: Filter) -> set[str]:
        return {h.chunk.doc_id for h in retriever.search("GPUs DeepSeek Nvidia", 20, where=where)}

    assert docs(Filter(since="2025-01-28", until="2025-01-28")) == {"x.txt"}
    assert docs(Filter(since="2025-01-29")) == {"y.txt"}
    assert docs(Filter(until="2025-02-03")) == {"x.txt", "y.txt"}  # z.txt states no date
    assert docs(Filter(docs=("x.txt", "y.txt"), since="2025-02-01")) == {"y.txt"}


def test_a_filter_that_allows_nothing_is_an_input_error(retriever: Retriever) -> None:
    with pytest.raises(InputError, match=r"no indexed document matches the filter \(since 2026-01-01\); 2 of 3"):
        retriever.search("GPUs", where=Filter(since="2026-01-01"))
    with pytest.raises(InputError, match=r"docs: no indexed document 'nope\.txt'"):
        retriever.search("GPUs", where=Filter(docs=("x.txt", "nope.txt")))


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "hnsw"])
def test_faiss_selector_matches_brute_force_inside_the_rows(kind: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index, _ = dense_index.build_dense(vectors, kind)
    rows = np.sort(rng.choice(2000, size=60, replace=False))
    query = vectors[rows[:3]].mean(axis=0, keepdims=True)
    _, ids = dense_index.search(index, query, 10, rows)
    truth = rows[np.argsort(-(vectors[rows] @ query[0]))[:10]]
    assert set(ids[0]) <= set(rows)
    overlap = len(set(ids[0]) & set(truth)) / 10
    assert overlap == 1.0 if kind == "flat" else overlap >= 0.7, (kind, overlap)
    if kind != "hnsw":
        assert (ids[0] >= 0).all()  # k results, even where the usual IVF lists hold fewer of the rows


def test_bm25_rows_restrict_scores() -> None:
    index = KeywordIndex.build([["gpu", "nvidia"], ["gpu"], ["hangzhou"]])
    assert [r for r, _ in index.search(["gpu"], 3)] == [1, 0] or [r for r, _ in index.search(["gpu"], 3)] == [0, 1]
    assert [r for r, _ in index.search(["gpu"], 3, np.array([0, 2]))] == [0]


# ----------------------------------------------------------------------------- the pipeline and its cache


def test_answer_passes_the_filter_on_and_the_cache_keeps_filters_apart(app_settings) -> None:
    answerer = fake_answerer(app_settings)
    answerer.cache = type(answerer.cache)(16)
    question = "Wie viel Dollar kostete das Training?"
    free = answerer(question)
    only_b = answerer(question, where=Filter(docs=("b.txt",)))
    assert {p.hit.chunk.doc_id for p in only_b.passages} == {"b.txt"}
    assert not only_b.cached and free.passages[0].hit.chunk.doc_id == "a.txt"


# ----------------------------------------------------------------------------- HTTP


@pytest.fixture
def dated_client(app_settings):
    """The service over a corpus of two real articles (one dated, one with a byline) and b.txt."""
    from rag import wiring
    from rag.ingest.load import load_documents
    from rag.serve.app import create_app

    corpus = Path(__file__).resolve().parent.parent / "corpus"
    for name in ("001_632e2609b1775729.txt", "003_4a8c9f61d5cf23d7.txt"):
        (app_settings.corpus_dir / name).write_bytes((corpus / name).read_bytes())
    docs, _ = load_documents([app_settings.corpus_dir])
    wiring.index_documents(app_settings, docs)
    with TestClient(create_app(app_settings, build=fake_answerer)) as c:
        wait_ready(c)
        yield c


DATED, BYLINE = "001_632e2609b1775729.txt", "003_4a8c9f61d5cf23d7.txt"


def test_documents_list_and_detail_carry_metadata(dated_client) -> None:
    listed = {d["doc_id"]: d for d in dated_client.get("/v1/documents").json()["documents"]}
    assert (listed[DATED]["published"], listed[DATED]["author"], listed[DATED]["url"]) == ("2025-01-28", None, None)
    assert listed[BYLINE]["author"] == "Silke Mayr" and listed["b.txt"]["published"] is None
    detail = dated_client.get(f"/v1/documents/{BYLINE}").json()
    assert detail["author"] == "Silke Mayr" and detail["title"].startswith("DeepSeek KI-Modell Kosteneffizienz")


def test_search_filters_and_hits_carry_metadata(dated_client) -> None:
    body = {"question": "Deepseek Tech-Giganten Fragen", "k": 3, "docs": [DATED]}
    hits = dated_client.post("/v1/search", json=body).json()["hits"]
    assert len(hits) == 3 and {h["doc_id"] for h in hits} == {DATED}
    assert {h["published"] for h in hits} == {"2025-01-28"}
    hits = dated_client.post("/v1/search", json={"question": "DeepSeek", "k": 10, "since": "2025-01-01"}).json()["hits"]
    assert {h["doc_id"] for h in hits} == {DATED}


def test_ask_and_chat_filter_and_cite_with_metadata(dated_client) -> None:
    answer = dated_client.post("/v1/ask", json={"question": "Was kostete DeepSeek?", "docs": [BYLINE]}).json()
    assert {p["hit"]["doc_id"] for p in answer["passages"]} == {BYLINE}
    assert answer["citations"] and {c["author"] for c in answer["citations"]} == {"Silke Mayr"}
    chat = dated_client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Was kostete DeepSeek?"}], "until": "2025-12-31"},
    ).json()
    assert chat["citations"] and {c["doc_id"] for c in chat["citations"]} == {DATED}
    assert {c["published"] for c in chat["citations"]} == {"2025-01-28"}


@pytest.mark.parametrize(
    ("path", "extra", "message"),
    [
        ("/v1/search", {"since": "2030-01-01"}, "no indexed document matches the filter (since 2030-01-01)"),
        ("/v1/ask", {"docs": ["nope.txt"]}, "docs: no indexed document 'nope.txt'"),
        ("/v1/ask", {"docs": ["b.txt"], "since": "2025-01-01"}, "matches the filter (docs ['b.txt'], since"),
        ("/v1/ask", {"until": "28.01.2025"}, "until '28.01.2025' is not a date; write it as YYYY-MM-DD"),
        ("/v1/chat/completions", {"since": "2030-01-01"}, "no indexed document matches the filter"),
    ],
)
def test_filter_errors_are_400_with_the_error_body(dated_client, path: str, extra: dict, message: str) -> None:
    body = {"question": "Was kostete DeepSeek?", **extra, "stream": True}
    if path == "/v1/chat/completions":
        body = {"messages": [{"role": "user", "content": "Was kostete DeepSeek?"}], "stream": True, **extra}
    response = dated_client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "InputError" and message in error["message"]


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(app_settings, monkeypatch: pytest.MonkeyPatch):
    from rag import wiring
    from rag.cli.main import app
    from rag.ingest.load import load_documents

    monkeypatch.setattr(wiring, "answerer", lambda s, index=None, defer_model=False: fake_answerer(s, FakeGenerator()))
    # A long article (many chunks, no two alike) beside the three one-chunk ones.
    lines = (" ".join(f"wort{n}x{i}" for i in range(60)) + f". DeepSeek GPUs {n}." for n in range(12))
    (app_settings.corpus_dir / "long.txt").write_text("\n".join(lines))
    wiring.index_documents(app_settings, load_documents([app_settings.corpus_dir])[0])
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["--index-dir", str(app_settings.index_dir), *args])


def test_cli_search_with_doc_returns_k_passages_of_that_document(cli) -> None:
    result = cli("search", "Nutzte DeepSeek 2.048 GPUs?", "--k", "5", "--doc", "long.txt", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)["hits"]
    assert len(hits) == 5 and {h["doc_id"] for h in hits} == {"long.txt"}
    top = json.loads(cli("search", "Nutzte DeepSeek 2.048 GPUs?", "--k", "1", "--json").output)["hits"]
    assert top[0]["doc_id"] == "a.txt"  # without the filter another article comes first
    both = json.loads(cli("search", "DeepSeek", "--doc", "a.txt", "--doc", "c.txt", "--json").output)["hits"]
    assert {h["doc_id"] for h in both} == {"a.txt", "c.txt"}


def test_cli_ask_with_doc_cites_only_that_document(cli) -> None:
    result = cli("ask", "Wie viele GPUs nutzte DeepSeek?", "--doc", "c.txt", "--json")
    assert result.exit_code == 0, result.output
    assert {p["hit"]["doc_id"] for p in json.loads(result.output)["passages"]} == {"c.txt"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "GPUs", "--since", "2025-01-01"], "no indexed document matches the filter (since 2025-01-01)"),
        (["ask", "GPUs", "--doc", "nope.txt"], "docs: no indexed document 'nope.txt'"),
        (["ask", "GPUs", "--until", "gestern"], "until 'gestern' is not a date"),
        (["search", "GPUs", "--since", "2025-03-01", "--until", "2025-01-01"], "is after until"),
    ],
)
def test_cli_filter_errors_exit_2_with_one_line(cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and message in result.output and "Traceback" not in result.output


def test_cli_sources_show_author_date_and_url(capsys) -> None:
    from rag.cli.main import _print_sources
    from rag.types import Answer, Citation

    cited = Citation(
        1, "003.txt", "Kosteneffizienz", "003.txt#0", 0, 9, "DeepSeek", "2025-01-28", "Silke Mayr", "https://x.de/a"
    )
    bare = Citation(2, "000.txt", "In einem Kraftakt", "000.txt#0", 0, 5, "Nvidia")
    _print_sources(Answer("q", "a", "de", False, citations=(cited, bare)))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "  [1] Kosteneffizienz — Silke Mayr, 2025-01-28 (003.txt, chars 0-9)"
    assert out[1] == "      https://x.de/a"
    assert out[3] == "  [2] In einem Kraftakt (000.txt, chars 0-5)"  # nothing stated, nothing shown
