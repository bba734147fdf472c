"""The index's files: sizes and hashes recorded in the manifest and checked on load, the writer lock."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rag.durable import sha256_file
from rag.errors import IndexLockedError, IndexStateError, StorageError


def describe_files(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``folder``, by path relative to it."""
    return {
        p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def check_files(path: Path, manifest: dict[str, Any]) -> None:
    """Refuse a version whose files differ from what its manifest recorded (truncated, altered, missing).

    Indexes written before the manifest listed its files are accepted as they are.
    """
    for name, want in (manifest.get("files") or {}).items():
        file = path / name
        try:
            size = file.stat().st_size
            if size != want["bytes"]:
                raise IndexStateError(
                    f"{file} has {size:,} bytes, manifest.json says {want['bytes']:,} (truncated or altered); "
                    "run `rag index --rebuild`"
                )
            if sha256_file(file) != want["sha256"]:
                raise IndexStateError(
                    f"{file} differs from the sha256 in manifest.json (altered or damaged); run `rag index --rebuild`"
                )
        except FileNotFoundError as exc:
            raise IndexStateError(f"{file} is missing; run `rag index --rebuild`") from exc
        except OSError as exc:
            raise IndexStateError(f"{file} is unreadable ({exc.strerror}); run `rag index --rebuild`") from exc
        except (KeyError, TypeError) as exc:
            raise IndexStateError(
                f"{path / 'manifest.json'} has a malformed file list; run `rag index --rebuild`"
            ) from exc


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


class IndexLock:
    """Exclusive writer lock (``index/.lock``); a second writer fails at once with a clear message.

    Processes (and replicas sharing the folder) exclude each other. Within a process the lock is
    re-entrant for the thread that holds it (one lock object per folder), so a caller can hold it
    around a longer change (an upload: file, index, rename) that calls `update_index` inside;
    another thread of the same process is refused like another process.
    """

    def __init__(self, index_dir: Path) -> None:
        from filelock import FileLock

        self._path = index_dir.resolve() / ".lock"
        self._lock = FileLock(str(self._path), timeout=0, is_singleton=True)

    def __enter__(self) -> IndexLock:
        from filelock import Timeout

        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except Timeout:
            raise IndexLockedError(
                f"another process is writing the index ({self._path} is locked); wait for it to finish"
            ) from None
        except OSError as exc:
            raise StorageError(
                f"cannot create the index lock {self._path} ({exc.strerror or exc}); "
                "check that the index folder is writable (RAG_INDEX_DIR)"
            ) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
