"""Durable files: replace a file atomically (written beside, fsynced, renamed), and hash a file.

Used by every stage that writes what another process may read: the index pointer, model stamps,
eval reports. A reader sees the old content or the new, never half of it, and after a crash the
rename is on disk once it returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from tqdm import tqdm

_BLOCK = 8 * 1024 * 1024


def sha256_file(path: Path, progress: bool = False) -> str:
    """The sha256 of a file's bytes, read in blocks (a progress bar when ``progress``)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with (
        path.open("rb") as fh,
        tqdm(total=size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", disable=not progress) as bar,
    ):
        while block := fh.read(_BLOCK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (it lives in the directory entry, not in a file)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` to disk."""
    for p in folder.rglob("*"):
        if p.is_file():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str, *, temp: Path | None = None) -> None:
    """Replace ``path`` with ``text``: written to ``temp`` (default ``.<name>.partial`` beside it), fsynced,
    renamed over ``path``, the folder fsynced. A failure before the rename removes the temporary file and
    raises, and ``path`` keeps its old content; once renamed, the new content stands."""
    temp = temp or path.with_name(f".{path.name}.partial")
    try:
        with temp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the new content is in place; this only hurries the rename to disk
        fsync_dir(path.parent)
