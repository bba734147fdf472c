"""The corpus folder and the index changed together: upload, delete, and recovery after a crash.

Used by the HTTP documents API. A document is staged under a hidden name in the corpus folder,
indexed (the index swaps atomically), then renamed into place; on any failure both are as before,
and a process killed between the swap and the rename is finished at the next start.

Replicas may share the corpus and index folders: each change holds the index writer lock from the
staged file to the rename, so a second writer gets `IndexLockedError` (409) and a replica starting
meanwhile does not mistake another's upload in progress for one a crash left behind.
"""

from __future__ import annotations

import errno
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import DocumentError, IndexLockedError, RagError, StorageError
from rag.retrieval.files import IndexLock
from rag.wiring import Answerer


def add_document(settings: Settings, answerer: Answerer, name: str, data: bytes) -> Any:
    """Save, index, swap in memory; on any failure the corpus file and the index are as before."""
    with IndexLock(settings.index_dir):
        return _add_document(settings, answerer, name, data)


def _add_document(settings: Settings, answerer: Answerer, name: str, data: bytes) -> Any:
    from rag import wiring
    from rag.ingest.load import load_document

    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    target = settings.corpus_dir / name
    staging = settings.corpus_dir / f".upload-{uuid.uuid4().hex}-{name}"
    if target.is_dir() and not target.is_symlink():
        # Checked first: the rename over it would fail only after the index took the document in.
        raise DocumentError(f"{name}: a folder of that name is in the corpus folder; upload under another name")
    try:
        staging.write_bytes(data)
        doc = load_document(staging)
        doc = replace(doc, doc_id=name, path=os.path.abspath(target))
        report = wiring.index_documents(settings, [doc], loaded_embedder=answerer.retriever.embedder)
        staging.replace(target)
    except DocumentError as exc:
        # The loader names the file it read; the client should see its own file name, not the server's folders.
        raise DocumentError(str(exc).replace(str(staging), name)) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise StorageError(f"cannot store {name}: {exc.strerror}; free some space and upload again") from exc
        raise DocumentError(f"{name}: {exc.strerror or type(exc).__name__}") from exc
    finally:
        staging.unlink(missing_ok=True)  # gone already when the upload succeeded
    answerer.retriever.use_index(wiring.open_index(settings))
    return report


def recover_uploads(settings: Settings, answerer: Answerer) -> None:
    """Finish or undo uploads a killed process left behind (a ``.upload-*`` file in the corpus folder).

    The index swap comes before the file is renamed into place: when the index already holds
    the document with the staged content, the rename is finished; otherwise the index never
    saw it and the staged file is removed. While another process or replica holds the writer lock,
    its upload may be in progress: nothing is touched then; nor in a read-only index folder, where
    no upload can have begun.
    """
    try:
        with IndexLock(settings.index_dir):
            _recover_uploads(settings, answerer)
    except (IndexLockedError, StorageError):
        return


def _recover_uploads(settings: Settings, answerer: Answerer) -> None:
    from rag.ingest.load import load_document

    indexed = answerer.retriever.index.manifest.get("documents", {})
    for staged in sorted(settings.corpus_dir.glob(".upload-*")):
        name = staged.name.split("-", 2)[2] if staged.name.count("-") >= 2 else ""
        try:
            same = name in indexed and load_document(staged).content_hash == indexed[name].get("content_hash")
        except RagError:
            same = False
        if same:
            staged.replace(settings.corpus_dir / name)
        else:
            staged.unlink(missing_ok=True)


def remove_document(settings: Settings, answerer: Answerer, doc_id: str) -> None:
    """Remove from the index, then the file it was read from, wherever below the corpus folder it lies
    (`rag index` reads subfolders too): a file left there would bring the document back at the next run.
    A file outside the corpus folder is the user's own (`rag index PATH`) and stays."""
    from rag import wiring

    indexed = answerer.retriever.index.documents.get(doc_id)
    files = {settings.corpus_dir / doc_id} | ({Path(indexed.path)} if indexed else set())
    corpus = settings.corpus_dir.resolve()
    with IndexLock(settings.index_dir):
        wiring.index_documents(settings, [], remove=[doc_id], loaded_embedder=answerer.retriever.embedder)
        for file in files:
            if file.name == doc_id and file.parent.resolve().is_relative_to(corpus):
                file.unlink(missing_ok=True)
    answerer.retriever.use_index(wiring.open_index(settings))
