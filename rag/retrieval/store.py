"""The index on disk: FAISS vectors, BM25 keywords, chunks and a self-describing manifest.

Layout (every version complete on its own; ``CURRENT`` names the live one)::

    index/
      CURRENT                  -> "v-20261123T101500-1234"
      v-20261123T101500-1234/
        manifest.json          format, embedding model + hash, dimension, chunker, documents, counts
        documents.jsonl        each document's text, so citation offsets always resolve
        chunks.jsonl           one Chunk per line, row i = FAISS id i = BM25 row i
        vectors.npy            float32 embeddings (reused for unchanged documents)
        dense.faiss            exact inner product below 20k vectors, IVF-SQ8 above (rag/retrieval/dense.py)
        bm25/                  bm25s files

A writer builds a new version in a hidden folder, renames it into place and only
then swaps ``CURRENT`` (``os.replace`` is atomic), so a process killed at any
point leaves the previous index loadable and whole. A file lock refuses a
second writer. The manifest records the size and sha256 of every other file in
its version, and loading checks them, so a damaged or truncated file is named
instead of silently answering from altered vectors. A write that fails (disk
full, read-only) removes its staging folder and leaves the live version live.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rag.config import PROGRESS_MIN_ITEMS, default
from rag.durable import atomic_write_text, fsync_dir, fsync_tree
from rag.errors import IndexStateError, StorageError
from rag.models.onnx_export import EXPORT_VERSION
from rag.retrieval.bm25 import KeywordIndex, tokenize
from rag.retrieval.dense import build_dense, prepare_for_search
from rag.retrieval.files import IndexLock, check_files, describe_files, write_jsonl
from rag.types import Chunk, Document

FORMAT_VERSION = 1
# Version of the article metadata extraction (rag/ingest/meta.py). Part of the chunker settings: an
# index built before it (no dates, authors, URLs) still loads with those fields None, and the next
# `rag index` chunks and embeds every document again (a title from front matter or HTML changes vectors).
METADATA_VERSION = 1
# Version of how documents are cut into chunks (rag/ingest/chunk.py), in the chunker settings too: 2 cuts run-on
# sentences (`RUN_ON`). An older index loads as it is; the next `rag index` chunks and embeds it again.
CHUNKING_VERSION = 2
_POINTER = "CURRENT"
_KEEP_VERSIONS = 2  # the live one and its predecessor, for readers that just read the pointer


@dataclass(frozen=True)
class IndexConfig:
    """What an index is built for; a mismatch with what is on disk is refused or rebuilt."""

    embedding_model: str
    embedding_sha256: str
    dimension: int
    chunk_tokens: int
    overlap_sentences: int
    faiss_type: str = default("faiss_type")  # auto | flat | hnsw | ivf-sq8 (rag/retrieval/dense.py)
    exact_below: int = default("faiss_exact_below")  # auto: exact search below this many vectors, IVF-SQ8 above
    embed_titles: bool = True  # chunks are embedded as "title: <article title> | text: <chunk>"
    embed_backend: str = default("embed_backend")  # onnx-int8 | torch: queries must use the same one

    def chunker(self) -> dict[str, Any]:
        """Everything that decides which vectors a document gets; a change re-embeds all documents."""
        return {
            "chunk_tokens": self.chunk_tokens,
            "overlap_sentences": self.overlap_sentences,
            "embed_titles": self.embed_titles,
            "metadata": METADATA_VERSION,
            "chunking": CHUNKING_VERSION,
        }


@dataclass
class LoadedIndex:
    """An index version in memory: everything retrieval and citation need."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: Any  # faiss.Index
    keyword: KeywordIndex
    langs: dict[str, str] = field(default_factory=dict)
    # What later stages derive from this version once and reuse (the answer pipeline's name shares).
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> str:
        return self.path.name


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks: int = 0
    embedded_chunks: int = 0
    seconds: float = 0.0
    version: str | None = None
    # (path, reason) of documents left out: with ``replace_same_name=False``, those whose id names another article.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Unchanged documents now read from another file (moved): the path they are recorded at changes.
    moved: list[str] = field(default_factory=list)
    # Documents ``prune`` kept because their file is there but was skipped this run (``keep``).
    held: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.added or self.changed or self.removed or self.moved)


# ----------------------------------------------------------------------------- reading


def current_version(index_dir: Path) -> Path | None:
    pointer = index_dir / _POINTER
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexStateError(f"{pointer} is unreadable ({exc}); run `rag index --rebuild`") from exc
    # Only a version folder beside the pointer; never a path that leads elsewhere.
    if not name.startswith("v-") or "/" in name or "\\" in name or name in (".", ".."):
        raise IndexStateError(f"{pointer} holds {name[:60]!r}, not a version name; run `rag index --rebuild`")
    path = index_dir / name
    if not path.is_dir():
        raise IndexStateError(f"{pointer} names {path.name}, which does not exist; run `rag index --rebuild`")
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):  # noqa: B007  (line_no names the bad line below)
                if line.strip():
                    rows.append(json.loads(line))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" line {line_no}" if "line_no" in locals() else ""
        raise IndexStateError(f"{path}{where} is unreadable ({exc}); run `rag index --rebuild`") from exc
    return rows


def check_manifest(manifest: dict[str, Any], config: IndexConfig, path: Path) -> None:
    """Refuse an index built for another format or embedding model, saying how to rebuild."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexStateError(
            f"{path} has index format {manifest.get('format_version')}, this program reads {FORMAT_VERSION}; "
            "run `rag index --rebuild`"
        )
    emb = manifest.get("embedding", {})
    if (emb.get("model"), emb.get("sha256"), emb.get("dimension")) != (
        config.embedding_model,
        config.embedding_sha256,
        config.dimension,
    ):
        raise IndexStateError(
            f"{path} was built with embedding model {emb.get('model')} ({str(emb.get('sha256'))[:12]}), "
            f"configured is {config.embedding_model} ({config.embedding_sha256[:12]}); run `rag index --rebuild`"
        )


def embedded_backend(manifest: dict[str, Any]) -> str:
    """The embedding backend an index's vectors came from; indexes from before the field were torch's."""
    return str(manifest.get("embedding", {}).get("backend", "torch"))


def graph_version(manifest: dict[str, Any]) -> int | None:
    """The export version of the int8 graph an onnx-int8 index's vectors came from (None for torch);
    indexes from before the field had version 1."""
    if embedded_backend(manifest) != "onnx-int8":
        return None
    return int(manifest["embedding"].get("graph_version", 1))


def _current_graph_version(backend: str) -> int | None:
    """The int8 graph version that ``backend`` embeds with today (None: torch has no graph)."""
    return EXPORT_VERSION if backend == "onnx-int8" else None


def _same_vectors(manifest: dict[str, Any], backend: str) -> bool:
    """Would queries embedded with ``backend`` (and today's int8 graph) match this index's vectors?"""
    return embedded_backend(manifest) == backend and graph_version(manifest) == _current_graph_version(backend)


def check_backend(manifest: dict[str, Any], backend: str, path: Path) -> None:
    """Refuse to query vectors of one embedding backend (or int8 graph version) with query vectors of another."""
    built = embedded_backend(manifest)
    if built != backend:
        raise IndexStateError(
            f"{path} was embedded with RAG_EMBED_BACKEND={built}, configured is {backend}; run `rag index` "
            f"to re-embed it with {backend}, or set RAG_EMBED_BACKEND={built}"
        )
    if not _same_vectors(manifest, backend):
        raise IndexStateError(
            f"{path} was embedded with int8 graph v{graph_version(manifest)}, this version queries with "
            f"v{EXPORT_VERSION} (7-bit weights, correct on CPUs without VNNI); run `rag index` to re-embed it"
        )


def load_index(index_dir: Path, config: IndexConfig) -> LoadedIndex:
    """Load the live version; IndexStateError names the bad file and the fix."""
    import faiss

    path = current_version(index_dir)
    if path is None:
        raise IndexStateError(f"no index in {index_dir}; run `rag index` to build it")
    manifest_file = path / "manifest.json"
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexStateError(f"{manifest_file} is unreadable ({exc}); run `rag index --rebuild`") from exc
    check_manifest(manifest, config, manifest_file)
    if not isinstance(manifest.get("counts"), dict) or not isinstance(manifest["counts"].get("chunks"), int):
        raise IndexStateError(f"{manifest_file} has no chunk count; run `rag index --rebuild`")
    check_files(path, manifest)
    docs_file, chunks_file = path / "documents.jsonl", path / "chunks.jsonl"
    try:
        docs = {row["doc_id"]: row for row in _read_jsonl(docs_file)}
        documents = {d: _document(r) for d, r in docs.items()}
        langs = {d: str(r["lang"]) for d, r in docs.items()}
    except (KeyError, TypeError) as exc:
        raise IndexStateError(f"{docs_file} has a malformed row ({exc!r}); run `rag index --rebuild`") from exc
    try:
        chunks = [Chunk(**row) for row in _read_jsonl(chunks_file)]
    except TypeError as exc:
        raise IndexStateError(f"{chunks_file} has a malformed row ({exc}); run `rag index --rebuild`") from exc
    loading = path / "vectors.npy"
    try:
        vectors = np.load(loading, allow_pickle=False)
        loading = path / "dense.faiss"
        dense = faiss.read_index(str(loading))
        prepare_for_search(dense)
        loading = path / "bm25"
        keyword = KeywordIndex.load(loading, len(chunks))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # faiss reports bad files as RuntimeError
        raise IndexStateError(f"{loading} is damaged ({exc}); run `rag index --rebuild`") from exc
    expected = manifest["counts"]["chunks"]
    if not (len(chunks) == vectors.shape[0] == dense.ntotal == expected):
        raise IndexStateError(
            f"{path}: {len(chunks)} chunks, {vectors.shape[0]} vectors, {dense.ntotal} in FAISS, "
            f"manifest says {expected}; run `rag index --rebuild`"
        )
    return LoadedIndex(path, manifest, documents, chunks, vectors, dense, keyword, langs)


def _document(row: dict[str, Any]) -> Document:
    return Document(
        doc_id=row["doc_id"],
        title=row["title"],
        path=row["path"],
        text=row["text"],
        content_hash=row["content_hash"],
        # None in an index built before metadata was extracted
        published=row.get("published"),
        author=row.get("author"),
        url=row.get("url"),
    )


def _same_document(stored: Document, loaded: Document) -> bool:
    """Same text and same metadata: a date or title read differently by a newer program is a change too (its
    chunks carry them, and the title is embedded), so the next `rag index` corrects what an older one stored."""
    fields = ("content_hash", "title", "published", "author", "url")
    return all(getattr(stored, f) == getattr(loaded, f) for f in fields)


def _stored_documents(index_dir: Path) -> dict[str, Document]:
    """The documents of the live version, for a rebuild: read whatever else is wrong with it (built
    with another embedding model, a damaged vector file). IndexStateError when their own file is damaged too."""
    path = current_version(index_dir)
    if path is None:
        return {}
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        files = manifest.get("files") if isinstance(manifest, dict) else None
        wanted = {k: v for k, v in files.items() if k == "documents.jsonl"} if isinstance(files, dict) else {}
        check_files(path, {"files": wanted})
        return {d.doc_id: d for d in map(_document, _read_jsonl(path / "documents.jsonl"))}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexStateError(f"the indexed documents in {path} cannot be read ({exc!r})") from exc


# ----------------------------------------------------------------------------- writing


def _write_version(
    index_dir: Path,
    config: IndexConfig,
    documents: dict[str, Document],
    langs: dict[str, str],
    chunks: list[Chunk],
    vectors: np.ndarray,
) -> Path:
    """Write a complete version beside the live one and swap ``CURRENT`` to it.

    A failed write (disk full, read-only, no permission) removes the staging folder and
    raises StorageError; ``CURRENT`` still names the previous version.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    staging = index_dir / f".building-v-{stamp}"
    final = index_dir / f"v-{stamp}"
    pointer_tmp = index_dir / f".{_POINTER}.tmp"
    try:
        staging.mkdir(parents=True)
        _write_files(staging, config, documents, langs, chunks, vectors)
        fsync_tree(staging)
        os.replace(staging, final)
        fsync_dir(index_dir)  # the folder's new name is on disk before any pointer names it
        atomic_write_text(index_dir / _POINTER, final.name, temp=pointer_tmp)  # the moment the new index goes live
    # Any failure, not only a disk's: a staging folder left behind would hold a whole index's size
    # until the next write. (Not Ctrl-C: it can land after the pointer names ``final``.)
    except Exception as exc:
        for leftover in (staging, final):
            shutil.rmtree(leftover, ignore_errors=True)
        pointer_tmp.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        hint = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "check the folder's permissions"
        where = f": {exc.filename}" if exc.filename else ""
        raise StorageError(
            f"cannot write the index in {index_dir} ({exc.strerror or exc}{where}); "
            f"{hint} and run `rag index` again; the previous index is unchanged"
        ) from exc
    return final


def _write_files(
    staging: Path,
    config: IndexConfig,
    documents: dict[str, Document],
    langs: dict[str, str],
    chunks: list[Chunk],
    vectors: np.ndarray,
) -> None:
    import faiss

    per_doc: dict[str, dict[str, int]] = {d: {"chunks": 0, "tokens": 0} for d in documents}
    for c in chunks:
        per_doc[c.doc_id]["chunks"] += 1
        per_doc[c.doc_id]["tokens"] += c.n_tokens
    write_jsonl(
        staging / "documents.jsonl",
        ({**asdict(documents[d]), "lang": langs[d]} for d in sorted(documents)),
    )
    write_jsonl(staging / "chunks.jsonl", (asdict(c) for c in chunks))
    np.save(staging / "vectors.npy", vectors)
    # FAISS cannot train IVF on no vectors; an index whose every document was removed searches nothing
    # whatever its kind, and records the configured type so that no rebuild of FAISS is due.
    dense, dense_info = build_dense(vectors, config.faiss_type if len(vectors) else "flat", config.exact_below)
    dense_info["type"] = config.faiss_type
    # Serialised in memory and written by Python, so a full disk is an OSError like every other write
    # (faiss.write_index reports it as a bare RuntimeError).
    (staging / "dense.faiss").write_bytes(faiss.serialize_index(dense).tobytes())
    KeywordIndex.build([tokenize(c.text, langs[c.doc_id]) for c in chunks]).save(staging / "bm25")
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding": {
            "model": config.embedding_model,
            "sha256": config.embedding_sha256,
            "dimension": config.dimension,
            "backend": config.embed_backend,
            **({"graph_version": v} if (v := _current_graph_version(config.embed_backend)) is not None else {}),
        },
        "chunker": config.chunker(),
        "faiss": dense_info,
        "documents": {
            d: {
                "content_hash": doc.content_hash,
                "title": doc.title,
                "published": doc.published,
                "author": doc.author,
                "url": doc.url,
                "path": doc.path,
                "lang": langs[d],
                **per_doc[d],
            }
            for d, doc in sorted(documents.items())
        },
        "counts": {"documents": len(documents), "chunks": len(chunks), "tokens": sum(c.n_tokens for c in chunks)},
        "files": describe_files(staging),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def _collect_garbage(index_dir: Path) -> None:
    for stale in index_dir.glob(".building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    versions = sorted((p for p in index_dir.glob("v-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    live = current_version(index_dir)
    keep = {live} | set(versions[-_KEEP_VERSIONS:])
    for old in versions:
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)


def _another_article(indexed: Document | None, doc: Document) -> bool:
    """Whether ``doc`` would replace a different article of its name: the indexed document has other
    content and came from another file that is still there (a file moved since is the same article)."""
    if indexed is None or indexed.content_hash == doc.content_hash:
        return False
    try:
        return Path(indexed.path).is_file() and not Path(indexed.path).samefile(doc.path)
    except OSError:  # the new file is gone meanwhile: replaced, as an upload would be
        return False


def _held(kept: dict[str, Document], unseen: set[str], keep: Iterable[Path]) -> set[str]:
    """The unseen documents whose files are there but were skipped: named like a skipped file, or
    recorded below a skipped folder (one that could not be listed: its files' names are unknown)."""
    names: set[str] = set()
    folders: list[Path] = []
    for path in keep:
        if Path(path).is_dir():
            folders.append(Path(os.path.realpath(path)))
        else:
            names.add(Path(path).name)
    return {
        d for d in unseen if d in names or any(Path(os.path.realpath(kept[d].path)).is_relative_to(f) for f in folders)
    }


ChunkFn = Callable[[Document], list[Chunk]]
EmbedFn = Callable[[list[Chunk]], np.ndarray]
LangFn = Callable[[str], str]


def update_index(
    index_dir: Path,
    config: IndexConfig,
    documents: Iterable[Document],
    *,
    chunk: ChunkFn,
    embed: EmbedFn,
    detect_lang: LangFn,
    remove: Iterable[str] = (),
    deleted: Iterable[Path] = (),
    keep: Iterable[Path] = (),
    prune: bool = False,
    rebuild: bool = False,
    replace_same_name: bool = True,
    progress: bool = False,
) -> UpdateReport:
    """Add new and changed documents, drop removed ones, write a new version if anything changed.

    ``documents`` are the documents seen now; with ``prune`` every indexed document
    not among them is removed; ``remove`` names documents to remove explicitly.
    Unchanged documents keep their chunks and vectors (no re-embedding); one read from another
    file than before (moved) is recorded at its new path. Removing every document leaves a
    valid index with none, which searches find nothing in.

    ``deleted``: files gone since the last run (`rag index --watch`); a document goes only when it
    is recorded at such a path, not one of the same name read from elsewhere. ``keep``: files and
    folders that are there but were skipped this run (empty mid-save, unreadable): ``prune`` keeps
    the documents named like such a file or recorded below such a folder (``report.held``).
    ``progress``: a progress bar on stderr while chunking more than ``PROGRESS_MIN_ITEMS`` documents.

    ``rebuild`` (or settings that change the vectors) chunks and embeds every document again; one not
    among ``documents`` stays, from the text the index holds, unless ``prune`` or ``remove`` drop it.

    A document id is its file name, so a file from another folder with the name of an indexed
    document replaces it; an upload means that. ``replace_same_name=False`` (``rag index``) leaves
    such a document out instead, in ``report.skipped``, while the indexed one's file is still there:
    two articles of one name cannot both be indexed, and one must not silently take the other's place.
    """
    started = time.perf_counter()
    report = UpdateReport()
    with IndexLock(index_dir):
        old = None  # the live version, when its chunks and vectors can be reused
        kept: dict[str, Document] = {}
        rebuild_dense = False
        if rebuild:
            try:
                kept = _stored_documents(index_dir)
            except IndexStateError as exc:
                if not prune:  # the documents not given would be lost without a word
                    raise IndexStateError(
                        f"{exc}; a rebuild can keep only the documents given: `rag index --rebuild --prune PATHS`"
                    ) from exc
        elif current_version(index_dir) is not None:
            old = load_index(index_dir, config)
            kept = dict(old.documents)
            if old.manifest.get("chunker") != config.chunker() or not _same_vectors(old.manifest, config.embed_backend):
                old = None  # settings changed: every document is chunked and indexed again
                rebuild = True
            else:  # another FAISS structure reuses the stored vectors: a new version, no embedding
                wanted = {"type": config.faiss_type, "exact_below": config.exact_below}
                rebuild_dense = any(old.manifest["faiss"].get(k) != v for k, v in wanted.items())
        seen = {d.doc_id: d for d in documents}
        langs: dict[str, str] = {} if old is None else dict(old.langs)
        unseen = {d for d in kept if d not in seen}
        gone = {os.path.realpath(p) for p in deleted}
        # A file the watcher lost sight of in a folder that cannot be listed now is not deleted either.
        matches = {d for d in unseen if os.path.realpath(kept[d].path) in gone}
        held = _held(kept, unseen, keep)
        drop = set(remove) | (matches - held) | (unseen - held if prune else set())
        report.held = sorted(held & (unseen if prune else matches))
        seen = {d: doc for d, doc in seen.items() if d not in drop}
        taken = [] if replace_same_name else [d for d, doc in seen.items() if _another_article(kept.get(d), doc)]
        for doc_id in taken:
            also = f"also {kept[doc_id].path}, already indexed"
            report.skipped.append(
                (seen.pop(doc_id).path, f"duplicate document id {doc_id!r} ({also}); rename one of the two")
            )
        fresh: list[Document] = []
        for doc_id, doc in seen.items():
            if doc_id in kept and _same_document(kept[doc_id], doc):
                report.unchanged.append(doc_id)
                if os.path.realpath(kept[doc_id].path) != os.path.realpath(doc.path):  # where a deletion is looked for
                    report.moved.append(doc_id)
                    kept[doc_id] = doc
            else:
                (report.changed if doc_id in kept else report.added).append(doc_id)
                fresh.append(doc)
        if rebuild:  # nothing is reused; a document not among ``documents`` is not dropped for that
            fresh = [*seen.values(), *(doc for d, doc in kept.items() if d not in seen and d not in drop)]
        report.removed = sorted(d for d in drop if d in kept)
        replaced = set(report.changed) | set(report.removed)
        if report.nothing_to_do and not rebuild and not rebuild_dense:
            report.chunks = len(old.chunks) if old else 0
            report.seconds = time.perf_counter() - started
            return report
        chunks: list[Chunk] = []
        rows: list[np.ndarray] = []
        if old is not None:
            keep_rows = [i for i, c in enumerate(old.chunks) if c.doc_id not in replaced]
            chunks = [old.chunks[i] for i in keep_rows]
            rows.append(old.vectors[keep_rows])
        for d in replaced:
            kept.pop(d, None)
            langs.pop(d, None)
        new_chunks: list[Chunk] = []
        for doc in tqdm(fresh, desc="chunking", unit="doc", disable=not progress or len(fresh) <= PROGRESS_MIN_ITEMS):
            kept[doc.doc_id] = doc
            langs[doc.doc_id] = detect_lang(doc.text[:2000])
            new_chunks.extend(chunk(doc))
        if new_chunks:
            rows.append(embed(new_chunks))
        chunks.extend(new_chunks)
        vectors = np.concatenate(rows) if rows else np.zeros((0, config.dimension), dtype=np.float32)
        version = _write_version(index_dir, config, kept, langs, chunks, vectors.astype(np.float32))
        _collect_garbage(index_dir)
    report.chunks = len(chunks)
    report.embedded_chunks = len(new_chunks)
    report.version = version.name
    report.seconds = time.perf_counter() - started
    return report
