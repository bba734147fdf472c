"""The ONNX int8 embedding backend with stand-ins: batching, order, prompts, the cached export, the choice.

The real graph against torch is in test_real_models.py and test_contracts.py (marked real_models).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from fakes import CONFIG, A, B, C, FakeEmbedder, paragraphs

from rag.errors import IndexStateError, ModelError
from rag.models import onnx_export
from rag.models.embed import OnnxEmbedder, length_sorted_batches, load_embedder
from rag.retrieval.store import UpdateReport, check_backend, load_index, update_index

WORDS = ["title", "none", "text", "task", "search", "result", "query", "Börse", "DeepSeek"]
WORDS += ["eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht"]


def tiny_model(folder: Path) -> Path:
    """A model folder as the ONNX adapter reads it: a word-level tokenizer with <bos>/<eos>, the prompts."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "[UNK]": 3} | {w: i + 4 for i, w in enumerate(dict.fromkeys(WORDS))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 1)]
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    prompts = {"query": "task: search result | query: ", "document": "title: none | text: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 2048}))
    return folder


class StubSession:
    """Stands in for onnxruntime.InferenceSession: a row's vector says which ids it held, padding ignored."""

    dimension = 4
    feeds: ClassVar[list[dict[str, np.ndarray]]] = []

    def __init__(self, path: str, options: Any, providers: list[str]) -> None:
        self.path = path
        StubSession.feeds = []

    def get_outputs(self) -> list[Any]:
        return [type("Output", (), {"shape": ["batch", self.dimension]})()]

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        StubSession.feeds.append(feeds)
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        assert ids.dtype == np.int64 and mask.dtype == np.int64 and ids.shape == mask.shape
        real = ids * mask
        out = np.stack([real.sum(1), mask.sum(1), (real**2).sum(1), np.ones(len(ids))], axis=1)
        return [out.astype(np.float32)]


@pytest.fixture
def onnx_embedder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OnnxEmbedder:
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "InferenceSession", StubSession)
    return OnnxEmbedder(tiny_model(tmp_path / "model"), tmp_path / "g.onnx", model_id="tiny", threads=1, batch_size=2)


def test_rows_come_back_in_input_order_whatever_the_batching(onnx_embedder: OnnxEmbedder) -> None:
    texts = ["eins", "eins zwei drei vier fünf", "zwei drei", "sechs sieben acht eins zwei drei", "vier"]
    together = onnx_embedder.embed(texts, "query")
    alone = np.concatenate([onnx_embedder.embed([t], "query") for t in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-6)
    assert len({tuple(row) for row in together}) == len(texts)  # the stub tells them apart
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-6)


def test_batches_are_sorted_by_token_count_so_padding_stays_small(onnx_embedder: OnnxEmbedder) -> None:
    texts = ["eins", "eins zwei drei vier fünf sechs", "zwei", "eins zwei drei vier fünf", "drei"]
    onnx_embedder.embed(texts, "query")
    widths = [f["input_ids"].shape[1] for f in StubSession.feeds]
    padding = sum(int((f["attention_mask"] == 0).sum()) for f in StubSession.feeds)
    assert widths == sorted(widths, reverse=True) and len(widths) == 3
    assert padding == 1  # the 6- and 5-word texts share a batch; in input order the padding would be 9


def test_documents_get_the_title_prompt_and_specials(onnx_embedder: OnnxEmbedder) -> None:
    vocab = json.loads(onnx_embedder._tokenizer.to_str())["model"]["vocab"]
    onnx_embedder.embed(["eins"], "document", titles=["DeepSeek"])
    ids = StubSession.feeds[-1]["input_ids"][0].tolist()
    assert ids[0] == vocab["<bos>"] and ids[-1] == vocab["<eos>"]
    assert vocab["DeepSeek"] in ids and vocab["none"] not in ids  # "title: none" became "title: DeepSeek"
    with pytest.raises(ValueError):
        onnx_embedder.embed(["eins", "zwei"], "document", titles=["only one"])


def test_empty_input_and_token_counts(onnx_embedder: OnnxEmbedder) -> None:
    assert onnx_embedder.embed([], "query").shape == (0, StubSession.dimension)
    assert onnx_embedder.count_tokens("") == 0 and onnx_embedder.count_tokens("eins zwei") == 2


def test_length_sorted_batches_cover_every_row_once() -> None:
    lengths = [5, 1, 9, 9, 3, 7, 2]
    batches = length_sorted_batches(lengths, 3)
    assert sorted(r for b in batches for r in b) == list(range(7))
    assert [[lengths[r] for r in b] for b in batches] == [[9, 9, 7], [5, 3, 2], [1]]


# ----------------------------------------------------------------------------- the cached export


@pytest.fixture
def fake_export(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def export(model_dir: Path, out: Path, threads: int) -> None:
        calls.append("export")
        out.write_bytes(b"float graph")
        out.with_name(out.name + ".data").write_bytes(b"weights")

    def fuse(src: Path, dst: Path) -> None:
        calls.append("fuse")
        dst.write_bytes(src.read_bytes())
        dst.with_name(dst.name + ".data").write_bytes(b"weights")

    def quantize(src: Path, dst: Path) -> None:
        calls.append("quantize")
        dst.write_bytes(b"int8 graph from " + src.read_bytes())

    monkeypatch.setattr(onnx_export, "_export", export)
    monkeypatch.setattr(onnx_export, "_fuse", fuse)
    monkeypatch.setattr(onnx_export, "_quantize", quantize)
    return calls


def test_export_runs_once_and_keeps_only_the_int8_graph(tmp_path: Path, fake_export: list[str]) -> None:
    messages: list[str] = []
    args = dict(model_id="m", model_sha256="ab" * 32, threads=1, log=messages.append)
    graph = onnx_export.ensure_int8_graph(tmp_path / "model", tmp_path / "onnx", **args)  # type: ignore[arg-type]
    assert graph.read_bytes() == b"int8 graph from float graph" and fake_export == ["export", "fuse", "quantize"]
    assert sorted(p.name for p in graph.parent.iterdir()) == ["export.json", "model.onnx"]
    assert json.loads((graph.parent / "export.json").read_text())["sha256"] == "ab" * 32
    assert any("exporting" in m for m in messages)  # long work says so
    again = onnx_export.ensure_int8_graph(tmp_path / "model", tmp_path / "onnx", **args)  # type: ignore[arg-type]
    assert again == graph and fake_export == ["export", "fuse", "quantize"]
    other = onnx_export.cached_graph(tmp_path / "onnx", "m", "cd" * 32)
    assert other != graph  # another model file gets its own export


def test_a_failed_export_leaves_nothing_that_looks_finished(
    tmp_path: Path, fake_export: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(src: Path, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_export, "_quantize", broken)
    with pytest.raises(Exception, match=r"cannot write the ONNX export.*RAG_EMBED_BACKEND=torch") as info:
        onnx_export.ensure_int8_graph(
            tmp_path / "m", tmp_path / "onnx", model_id="m", model_sha256="ab" * 32, threads=1
        )
    assert type(info.value).__name__ == "StorageError"
    assert not list((tmp_path / "onnx").iterdir())  # no staging folder, no half graph


# ----------------------------------------------------------------------------- the choice and the manifest


def test_backend_and_device_are_checked_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="RAG_EMBED_BACKEND='tensorflow'"):
        load_embedder(tmp_path, "embeddinggemma-300m", backend="tensorflow")
    with pytest.raises(ModelError, match="RAG_EMBED_DEVICE=cuda runs only with RAG_EMBED_BACKEND=torch"):
        load_embedder(tmp_path, "embeddinggemma-300m", backend="onnx-int8", device="cuda", cache_dir=tmp_path)


def test_settings_choose_the_backend(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag import wiring

    seen: list[str] = []
    monkeypatch.setattr(wiring, "load_embedder", lambda *a, backend, **kw: seen.append(backend) or FakeEmbedder())
    wiring.embedder(settings)
    wiring.embedder(settings.model_copy(update={"embed_backend": "torch"}))
    assert seen == ["onnx-int8", "torch"]  # onnx-int8 is the default
    assert wiring.index_config(settings).embed_backend == "onnx-int8"


def build(index_dir: Path, backend: str, embedder: FakeEmbedder | None = None) -> UpdateReport:
    emb = embedder or FakeEmbedder()
    return update_index(
        index_dir,
        dataclasses.replace(CONFIG, embed_backend=backend),
        [A, B, C],
        chunk=paragraphs,
        embed=lambda chunks: emb.embed([c.text for c in chunks], "document"),
        detect_lang=lambda text: "de",
    )


def test_the_manifest_records_the_backend_and_queries_must_match(tmp_path: Path) -> None:
    build(tmp_path, "torch")
    index = load_index(tmp_path, CONFIG)
    assert index.manifest["embedding"]["backend"] == "torch"
    check_backend(index.manifest, "torch", index.path)
    with pytest.raises(IndexStateError, match="embedded with RAG_EMBED_BACKEND=torch, configured is onnx-int8"):
        check_backend(index.manifest, "onnx-int8", index.path)


def test_an_index_from_before_the_field_counts_as_torch(tmp_path: Path) -> None:
    with pytest.raises(IndexStateError, match="RAG_EMBED_BACKEND=torch"):
        check_backend({"embedding": {"model": "x"}}, "onnx-int8", tmp_path)
    check_backend({"embedding": {"model": "x"}}, "torch", tmp_path)


def test_changing_the_backend_re_embeds_every_chunk(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    first = build(tmp_path, "torch", emb)
    same = build(tmp_path, "torch", emb)
    assert same.nothing_to_do and same.embedded_chunks == 0
    switched = build(tmp_path, "onnx-int8", emb)
    assert switched.embedded_chunks == first.chunks
    assert load_index(tmp_path, CONFIG).manifest["embedding"]["backend"] == "onnx-int8"


def test_open_index_refuses_another_backend(app_settings: Any) -> None:
    from rag import wiring

    assert wiring.open_index(app_settings).manifest["embedding"]["backend"] == "onnx-int8"
    with pytest.raises(IndexStateError, match="run `rag index` to re-embed it with torch"):
        wiring.open_index(app_settings.model_copy(update={"embed_backend": "torch"}))


@pytest.mark.parametrize(
    ("backend", "names", "exported"),
    [("onnx-int8", ["embeddinggemma-300m"], True), ("torch", [], False), ("onnx-int8", ["qwen2.5-coder-0.5b"], False)],
)
def test_models_fetch_prepares_the_int8_graph_when_it_will_be_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, names: list[str], exported: bool
) -> None:
    """`rag models fetch` exports the graph once (the slow first step of `rag index` otherwise), only for onnx-int8."""
    from typer.testing import CliRunner

    from rag.cli.main import app
    from rag.models import fetch

    calls: list[tuple[Path, Path, dict[str, Any]]] = []
    monkeypatch.setattr(fetch, "fetch", lambda models, downloads, chosen, **kw: [(n, "present") for n in chosen])
    monkeypatch.setattr(onnx_export, "ensure_int8_graph", lambda *a, **kw: calls.append((*a, kw)) or tmp_path / "g")
    monkeypatch.setenv("RAG_EMBED_BACKEND", backend)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["--models-dir", str(tmp_path / "m"), "models", "fetch", *names])
    assert result.exit_code == 0, result.output
    assert ("int8 ONNX graph ready" in result.output) is exported
    if exported:
        [(model_dir, cache, kw)] = calls
        assert model_dir == tmp_path / "m" / fetch.get_spec("embeddinggemma-300m").target
        assert cache == tmp_path / "cache" / "onnx" and kw["model_id"] == "embeddinggemma-300m"
    else:
        assert calls == []


def test_the_quantiser_keeps_weights_in_7_bits_so_avx2_kernels_cannot_saturate(tmp_path: Path) -> None:
    """ONNX Runtime's u8 x s8 kernel on CPUs without VNNI sums pairs of products in int16: full 8-bit
    weights saturate it (gold dense R@5 fell to 0.785 on an AVX2-only EPYC). The real quantiser, on a
    one-MatMul graph, must write int8 weights within +-64."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
        [numpy_helper.from_array(weights, "w")],
    )
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(src))
    onnx_export._quantize(src, dst)
    initializers = onnx.load(str(dst)).graph.initializer
    quantised = [numpy_helper.to_array(t) for t in initializers if t.data_type == TensorProto.INT8]
    assert quantised and all(q.min() >= -64 and q.max() <= 64 for q in quantised)
    assert max(int(np.abs(q).max()) for q in quantised) >= 60  # the 7 bits are used, not a zeroed tensor


def test_an_index_from_an_older_int8_graph_is_refused_and_re_embedded(tmp_path: Path) -> None:
    first = build(tmp_path, "onnx-int8")
    index = load_index(tmp_path, CONFIG)
    assert index.manifest["embedding"]["graph_version"] == onnx_export.EXPORT_VERSION
    check_backend(index.manifest, "onnx-int8", index.path)
    old = {"embedding": {**index.manifest["embedding"], "graph_version": 1}}
    with pytest.raises(IndexStateError, match=r"int8 graph v1.*run `rag index` to re-embed it"):
        check_backend(old, "onnx-int8", tmp_path)
    without_field = {"embedding": {"backend": "onnx-int8"}}  # written before the field: version 1
    with pytest.raises(IndexStateError, match="int8 graph v1"):
        check_backend(without_field, "onnx-int8", tmp_path)
    manifest_path = index.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["embedding"]["graph_version"] = 1
    manifest_path.write_text(json.dumps(manifest))
    again = build(tmp_path, "onnx-int8")
    assert again.embedded_chunks == first.chunks  # every chunk embedded again with today's graph
    assert load_index(tmp_path, CONFIG).manifest["embedding"]["graph_version"] == onnx_export.EXPORT_VERSION
