"""Wiring: turn `Settings` into the components each command needs, loading each model once.

Kept apart from the stages themselves so that they stay plain functions and
classes with explicit inputs, and so tests can pass fakes instead.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.answer.cache import AnswerCache, cache_key
from rag.answer.pipeline import AnswerSettings, Templates, answer
from rag.answer.prompt import load_template
from rag.config import Settings
from rag.errors import ConfigError, ModelError, RagError
from rag.language import LANGUAGES
from rag.language import preload as preload_language_models
from rag.models import fetch, gguf
from rag.models.embed import Embedder, load_embedder
from rag.models.generate import DeferredGenerator, Generator, LlamaCppGenerator, OpenAIServerGenerator
from rag.retrieval.retrieve import RetrievalSettings, Retriever
from rag.retrieval.store import IndexConfig, LoadedIndex, UpdateReport, check_backend, load_index, update_index
from rag.types import Answer, Chunk, Document

if TYPE_CHECKING:
    from rag.ingest.watch import FileChanges


def index_config(settings: Settings) -> IndexConfig:
    spec = fetch.get_spec(settings.embedding_model)
    return IndexConfig(
        embedding_model=spec.name,
        embedding_sha256=spec.sha256,
        dimension=spec.dimension,
        chunk_tokens=settings.chunk_tokens,
        overlap_sentences=settings.chunk_overlap_sentences,
        faiss_type=settings.faiss_type,
        exact_below=settings.faiss_exact_below,
        embed_backend=settings.embed_backend,
    )


def token_counter(settings: Settings) -> Callable[[str], int]:
    """Counts tokens with the embedding model's own tokenizer, without loading the model (no torch)."""
    from tokenizers import Tokenizer

    folder = fetch.require(settings.models_path, settings.embedding_model)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def embedder(settings: Settings) -> Embedder:
    return load_embedder(
        settings.models_path,
        settings.embedding_model,
        backend=settings.embed_backend,
        cache_dir=settings.cache_dir,
        threads=settings.threads,
        batch_size=settings.embed_batch_size,
        dtype=settings.embed_dtype,
        device=settings.embed_device,
    )


def chunker(settings: Settings) -> Callable[[Document], list[Chunk]]:
    from rag.ingest.chunk import chunk_document
    from rag.ingest.clean import clean

    count = token_counter(settings)
    return lambda doc: chunk_document(
        doc,
        clean(doc.text),
        count,
        max_tokens=settings.chunk_tokens,
        overlap_sentences=settings.chunk_overlap_sentences,
    )


def index_documents(
    settings: Settings,
    documents: Iterable[Document],
    *,
    remove: Iterable[str] = (),
    deleted: Iterable[Path] = (),
    keep: Iterable[Path] = (),
    prune: bool = False,
    rebuild: bool = False,
    replace_same_name: bool = True,
    progress: bool = False,
    loaded_embedder: Embedder | None = None,
) -> UpdateReport:
    """Update the index on disk; the embedding model loads only if something needs embedding.

    ``deleted``, ``keep``: as in `update_index`; ``keep`` is what `load_documents` skipped that is still
    there (`rag.ingest.load.still_there`), so ``prune`` does not take a file being saved for a deleted one.
    ``replace_same_name``: as in `update_index`; `rag index` replaces another file's document of the same
    name only with ``--prune`` (the index holds exactly the paths given then). ``progress``: bars on
    stderr while chunking and embedding."""
    from rag.language import detect_language

    holder: list[Embedder] = [loaded_embedder] if loaded_embedder else []

    def embed(chunks: list[Chunk]) -> np.ndarray:
        if not holder:
            holder.append(embedder(settings))
        return holder[0].embed(
            [c.text for c in chunks], "document", titles=[c.title for c in chunks], progress=progress
        )

    return update_index(
        settings.index_dir,
        index_config(settings),
        documents,
        chunk=chunker(settings),
        embed=embed,
        detect_lang=detect_language,
        remove=remove,
        deleted=deleted,
        keep=keep,
        prune=prune,
        rebuild=rebuild,
        replace_same_name=replace_same_name,
        progress=progress,
    )


@dataclass(frozen=True)
class WatchRun:
    """One re-index after a batch of file changes: its report, or the typed error that stopped it."""

    changes: FileChanges
    report: UpdateReport | None
    skipped: list[tuple[Path, str]]
    error: RagError | None = None


def reindex_on_change(
    settings: Settings,
    paths: list[Path],
    *,
    loaded_embedder: Embedder,
    prune: bool = False,
    progress: bool = False,
    stop_event: Any = None,
) -> Iterator[WatchRun]:
    """`rag index --watch`: after each debounced batch of changes, the same incremental update again.

    Every path is read again (unchanged documents are recognised by their hash and keep their
    vectors); a deleted file's document is removed even without ``prune``, the last one too (the
    index then holds none), but only the document recorded at that path: deleting a skipped
    duplicate leaves the indexed article of its name. A file named like a document indexed from
    elsewhere is left out as `rag index` leaves it out; with ``prune``, a file skipped while it is
    still there (empty mid-save) keeps its document. A failed run (a document error, another
    writer's lock, a full disk) is reported and watching goes on.
    """
    from rag.ingest.load import load_documents, load_listed, still_there
    from rag.ingest.watch import watch_documents

    for changes in watch_documents(paths, debounce_ms=settings.watch_debounce_ms, stop_event=stop_event):
        # The watcher walked the tree for this batch already; a second walk would double each change's cost.
        listed = changes.listing
        documents, skipped = load_documents(paths) if listed is None else load_listed(listed)
        try:
            report = index_documents(
                settings,
                documents,
                deleted=changes.deleted,
                keep=still_there(skipped),
                prune=prune,
                replace_same_name=prune,
                progress=progress,
                loaded_embedder=loaded_embedder,
            )
        except RagError as exc:
            yield WatchRun(changes, None, skipped, exc)
            continue
        yield WatchRun(changes, report, skipped)


def open_index(settings: Settings) -> LoadedIndex:
    """The live index, refused when its vectors came from another embedding backend than queries would."""
    index = load_index(settings.index_dir, index_config(settings))
    check_backend(index.manifest, settings.embed_backend, index.path)
    return index


def open_retriever(
    settings: Settings, loaded_embedder: Embedder | None = None, *, index: LoadedIndex | None = None
) -> Retriever:
    return Retriever(
        index or open_index(settings), loaded_embedder or embedder(settings), RetrievalSettings.from_settings(settings)
    )


def generator(settings: Settings, *, deferred: bool = False) -> Generator:
    """The answer model: a remote OpenAI-compatible server, your own GGUF file, or a catalogue model.

    A missing or damaged file is named now; ``deferred`` puts off llama.cpp's load until the model first writes.
    """
    if settings.llm_url:
        return OpenAIServerGenerator(
            settings.llm_url,
            model_id=settings.answer_model_id,
            api_key=settings.llm_api_key,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )
    own = settings.model_path
    path = check_own_model(own) if own is not None else fetch.require(settings.models_path, settings.answer_model)
    if deferred:
        return DeferredGenerator(functools.partial(_llama, settings, path), model_id=settings.answer_model_id)
    return _llama(settings, path)


def _llama(settings: Settings, path: Path) -> LlamaCppGenerator:
    own = settings.model_path
    try:
        return LlamaCppGenerator(
            path,
            model_id=settings.answer_model_id,
            n_ctx=settings.n_ctx,
            threads=settings.threads,
            n_gpu_layers=settings.n_gpu_layers,
            flash_attn=settings.flash_attn,
            prompt_lookup=settings.prompt_lookup,
            contexts=settings.llm_contexts,
        )
    except ModelError as exc:
        if own is None:
            raise
        cause = exc.__cause__ or exc
        raise ModelError(f"RAG_MODEL_PATH={own}: llama.cpp cannot load it ({cause}); use a GGUF chat model") from exc


def check_own_model(path: Path) -> Path:
    """RAG_MODEL_PATH before the slow load: the file exists, is GGUF, and carries a chat template."""
    if not path.is_file():
        raise ModelError(f"RAG_MODEL_PATH={path}: no such file; point it at a GGUF chat model")
    try:
        template = gguf.chat_template(path)
    except (gguf.NotGGUF, OSError) as exc:
        raise ModelError(f"RAG_MODEL_PATH={path}: {exc}; point it at a GGUF chat model") from exc
    if not template:
        raise ModelError(
            f"RAG_MODEL_PATH={path} has no chat template in its metadata (a base model?); use an instruct model"
        )
    return path


def templates(settings: Settings) -> Templates:
    name = settings.answer_prompt
    missing = [lang for lang in LANGUAGES if not (settings.prompts_dir / f"{name}.{lang}.md").is_file()]
    if missing and settings.prompts_dir.is_dir():  # a misnamed prompt, not a missing folder (load_template says so)
        names = sorted({f.name.rsplit(".", 2)[0] for f in settings.prompts_dir.glob("answer*.??.md")})
        raise ConfigError(
            f"RAG_ANSWER_PROMPT={name!r}: no {name}.{missing[0]}.md in "
            f"{settings.prompts_dir}; the answer prompts there: {', '.join(names) or 'none'}"
        )
    return Templates(
        answer={lang: load_template(settings.prompts_dir, f"{settings.answer_prompt}.{lang}") for lang in LANGUAGES},
        rewrite=load_template(settings.prompts_dir, "rewrite"),
        check=load_template(settings.prompts_dir, "answerable"),
        retry=load_template(settings.prompts_dir, "retry"),
        translate=load_template(settings.prompts_dir, "translate"),
    )


@dataclass
class Answerer:
    """Everything `pipeline.answer` needs, loaded once (CLI command, HTTP lifespan, eval run)."""

    retriever: Retriever
    generator: Generator
    templates: Templates
    count_tokens: Callable[[str], int]
    settings: AnswerSettings
    cache: AnswerCache = field(default_factory=lambda: AnswerCache(0))

    def __call__(self, question: str, **kwargs: Any) -> Answer:
        """``pipeline.answer`` with these components; ``settings=`` overrides them for one call.

        A repeated question (same history, language, settings and index version) is answered from
        the cache: the callbacks still see the rewrite and the whole text, as one piece.
        """
        started = time.perf_counter()
        kwargs.setdefault("settings", self.settings)
        key = cache_key(
            index_version=self.retriever.index.version,
            model_id=self.generator.model_id,
            question=question,
            history=kwargs.get("history", ()),
            lang=kwargs.get("lang"),
            settings=kwargs["settings"],
            where=kwargs.get("where"),
        )
        hit = self.cache.get(key)
        if hit is not None:
            if hit.rewritten_question and kwargs.get("on_rewrite"):
                kwargs["on_rewrite"](hit.rewritten_question)
            if kwargs.get("on_token"):
                kwargs["on_token"](hit.text)
            elapsed = time.perf_counter() - started
            return replace(hit, timings={"first_token": elapsed, "total": elapsed})
        result = answer(
            question,
            retriever=self.retriever,
            generator=self.generator,
            templates=self.templates,
            count_tokens=self.count_tokens,
            **kwargs,
        )
        self.cache.put(key, result)
        return result


def answerer(settings: Settings, *, index: LoadedIndex | None = None, defer_model: bool = False) -> Answerer:
    """The whole pipeline; ``index`` when the caller already opened it (to check a filter before the models load).

    ``defer_model`` loads the answer model on its first use, for one question that may be refused before it.
    """
    preload_language_models()
    answer_model = generator(settings, deferred=defer_model)  # a damaged file is named before the embedder loads
    return Answerer(
        retriever=open_retriever(settings, index=index),
        generator=answer_model,
        templates=templates(settings),
        count_tokens=token_counter(settings),
        settings=AnswerSettings.from_settings(settings),
        cache=AnswerCache(settings.answer_cache),
    )


def corpus_paths(settings: Settings, paths: list[Path] | None) -> list[Path]:
    return paths if paths else [settings.corpus_dir]
