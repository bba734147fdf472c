"""The real models, offline: they load, embed across languages and answer. Run in CI (`make test`)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import ModelError
from rag.models import fetch

pytestmark = pytest.mark.real_models


def _require(name: str):
    try:
        return fetch.require(Settings().models_path, name)
    except ModelError as exc:
        pytest.fail(f"{exc} (the real-model tests need `make models`)", pytrace=False)


@pytest.fixture(scope="session")
def real_embedder():
    from rag.models.embed import SentenceTransformerEmbedder

    path = _require("embeddinggemma-300m")
    return SentenceTransformerEmbedder(path, model_id="embeddinggemma-300m", threads=2)


def test_embeddinggemma_aligns_german_and_english(real_embedder) -> None:
    de = "Das chinesische Start-up DeepSeek trainierte sein Modell mit nur 2.048 Grafikkarten."
    en = "The Chinese start-up DeepSeek trained its model with only 2,048 graphics cards."
    unrelated = "Im Sommer blühen im Stadtpark viele bunte Blumen."
    v = real_embedder.embed([de, en, unrelated], "document")
    assert v.shape == (3, 768)
    same, other = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert same > 0.8, same
    assert other < same - 0.2, (same, other)


def test_bfloat16_embeddings_match_float32(real_embedder) -> None:
    from rag.models.embed import SentenceTransformerEmbedder

    texts = ["DeepSeek nutzte 2.048 GPUs für das Training.", "How much did Nvidia lose?", "Liang Wenfeng"]
    fp32 = SentenceTransformerEmbedder(
        _require("embeddinggemma-300m"), model_id="embeddinggemma-300m", threads=2, dtype="float32"
    ).embed(texts, "document")
    bf16 = real_embedder.embed(texts, "document")  # the default dtype
    assert bf16.dtype == np.float32 and np.allclose(np.linalg.norm(bf16, axis=1), 1, atol=1e-3)
    assert float((fp32 * bf16).sum(1).min()) > 0.999


def test_query_prompt_finds_the_matching_passage(real_embedder) -> None:
    passages = real_embedder.embed(
        ["Nvidia verlor an einem Tag 600 Milliarden Dollar an Börsenwert.", "Der Gründer heißt Liang Wenfeng."],
        "document",
    )
    query = real_embedder.embed(["How much market value did Nvidia lose?"], "query")
    assert int(np.argmax(passages @ query[0])) == 0


def test_qwen_answers_a_german_question_from_a_sentence() -> None:
    from llama_cpp import Llama

    path = _require("qwen2.5-coder-1.5b")
    llm = Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    out = llm.create_chat_completion(
        messages=[
            {"role": "system", "content": "Antworte kurz auf Deutsch, nur mit Angaben aus dem Text."},
            {
                "role": "user",
                "content": "Text: DeepSeek trainierte R1 mit 2.048 GPUs.\nFrage: Wie viele GPUs nutzte DeepSeek?",
            },
        ],
        max_tokens=40,
        temperature=0.0,
    )
    answer = out["choices"][0]["message"]["content"]
    assert "2.048" in answer or "2048" in answer, answer


def test_one_batch_shortcut_gives_the_vectors_encode_gives(real_embedder) -> None:
    """Up to a batch (a query) skips `encode`; the vectors must not move (`progress` forces `encode`)."""
    queries = ["Wie viele GPUs nutzte DeepSeek?", "Who founded DeepSeek?"]
    texts, titles = ["DeepSeek nutzte 2.048 GPUs.", "Liang Wenfeng gründete DeepSeek."], ["R1", "Gründer"]
    for kind, inputs, extra in (("query", queries, {}), ("document", texts, {"titles": titles})):
        short = real_embedder.embed(inputs, kind, **extra)
        full = real_embedder.embed(inputs, kind, progress=True, **extra)
        assert short.shape == full.shape == (2, 768)
        assert float((short * full).sum(1).min()) > 0.9999, kind


def test_onnx_int8_backend_stays_close_to_float32_and_ranks_alike(real_embedder) -> None:
    """The default backend (RAG_EMBED_BACKEND=onnx-int8, the cached export) against torch float32."""
    from rag.models.embed import OnnxEmbedder, SentenceTransformerEmbedder, load_embedder

    settings = Settings()
    onnx = load_embedder(settings.models_path, "embeddinggemma-300m", backend="onnx-int8", cache_dir=settings.cache_dir)
    assert isinstance(onnx, OnnxEmbedder) and onnx.dimension == 768
    passages = [
        "Nvidia verlor an einem Tag 600 Milliarden Dollar an Börsenwert.",
        "Der Gründer von DeepSeek heißt Liang Wenfeng.",
        "DeepSeek trainierte R1 mit nur 2.048 GPUs für rund 5,6 Millionen Dollar.",
    ]
    titles = ["Börse", "DeepSeek", "Training"]
    fp32 = SentenceTransformerEmbedder(
        _require("embeddinggemma-300m"), model_id="embeddinggemma-300m", threads=2, dtype="float32"
    )
    ref, got = fp32.embed(passages, "document", titles=titles), onnx.embed(passages, "document", titles=titles)
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert float((ref * got).sum(1).min()) > 0.95  # int8: ~0.98 on the corpus chunks (docs/experiments.md)
    for query, expected in [("How much market value did Nvidia lose?", 0), ("Wer gründete DeepSeek?", 1)]:
        assert int(np.argmax(got @ onnx.embed([query], "query")[0])) == expected, query
    assert onnx.count_tokens(passages[1]) == fp32.count_tokens(passages[1])


def test_qwen_translates_a_quotation_left_in_german_with_the_translate_prompt() -> None:
    """RAG_TRANSLATE_ANSWERS: the 1.5B model on prompts/translate.md turns the German word of an English
    answer sentence into English (greedy; the wording measured on gold: "wake-up call")."""
    from pathlib import Path

    from rag.answer.pipeline import translator
    from rag.answer.prompt import load_template
    from rag.language import german_words
    from rag.models.generate import LlamaCppGenerator

    generator = LlamaCppGenerator(_require("qwen2.5-coder-1.5b"), model_id="qwen2.5-coder-1.5b", n_ctx=512, contexts=1)
    timings: dict[str, float] = {}
    translate = translator(generator, load_template(Path(__file__).parent.parent / "prompts", "translate"), timings)
    sentence = 'Trump called DeepSeek a "Weckruf" for the US-Tech-Industrie.'
    english = translate(sentence, german_words(sentence)) or ""
    assert "wake-up call" in english.lower() and not german_words(english), english
    assert "Trump" in english and timings["translate"] > 0
