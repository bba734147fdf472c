"""File changes under the indexed paths, for `rag index --watch` (watchfiles, debounced).

Only files the loaders read count (`load.SUPPORTED_SUFFIXES`), and, as in `load_documents`,
nothing hidden: an editor's swap and lock files do not start a re-index. A folder moved in or out
is one event for the folder alone: the files it brought or took are found by comparing the
documents below the watched paths before and after. That walk is the only one per batch: the
batch carries what it found, for the re-index to read (`load.load_listed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.ingest.load import SUPPORTED_SUFFIXES, list_files


@dataclass(frozen=True)
class FileChanges:
    """One debounced batch: files added or modified, and files deleted (or moved away).

    ``listing``: `load.list_files` of the watched paths, walked for this batch, so the re-index reads
    it without walking the tree again; None for a batch not walked (`sort_changes` alone).
    """

    changed: tuple[Path, ...]
    deleted: tuple[Path, ...]
    listing: tuple[Path | tuple[Path, str], ...] | None = field(default=None, compare=False, repr=False)

    def describe(self, limit: int = 5) -> str:
        """One line for the progress output.

        >>> FileChanges((Path("a.txt"),), (Path("/x/b.md"),)).describe()
        'changed a.txt; deleted b.md'
        """
        parts = []
        for label, paths in (("changed", self.changed), ("deleted", self.deleted)):
            if paths:
                names = ", ".join(p.name for p in paths[:limit])
                more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
                parts.append(f"{label} {names}{more}")
        return "; ".join(parts)


def is_document(path: str | Path, roots: Iterable[Path] = ()) -> bool:
    """A file `load_documents` would read: a supported suffix, nothing hidden below its watched root.

    >>> root = [Path("/u/.corpus")]
    >>> [is_document(p, root) for p in ("/u/.corpus/a.txt", "/u/.corpus/.a.txt.swp", "/u/.corpus/.git/x.md")]
    [True, False, False]
    >>> is_document("/c/a.py"), is_document("/c/A.HTML")
    (False, True)
    """
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES and _visible(path, roots)


def _may_hold_documents(path: str | Path) -> bool:
    """A document, or a folder (moved in or out: one event for all its files). Other files (a log written
    into the corpus) start no walk of the tree.

    >>> _may_hold_documents("/c/a.txt"), _may_hold_documents("/c/ablage"), _may_hold_documents("/c/run.log")
    (True, True, False)
    """
    p = Path(path)
    return p.suffix.lower() in SUPPORTED_SUFFIXES or not p.suffix or p.is_dir()


def _visible(path: str | Path, roots: Iterable[Path]) -> bool:
    """Nothing hidden below its watched root."""
    p = Path(path)
    below = p.parts[-1:]
    for root in roots:
        if p.is_relative_to(root):
            below = p.relative_to(root).parts
            break
    return not any(part.startswith(".") for part in below)


def sort_changes(raw: Iterable[tuple[Any, str]], roots: Iterable[Path] = ()) -> FileChanges:
    """watchfiles' ``{(Change, path)}`` as documents to re-read and documents gone.

    The file's state now decides, not the event's kind: an editor that saves by writing a
    new file and renaming it over the old one reports a deletion of a file that exists.
    """
    roots = list(roots)
    paths = {Path(p) for _, p in raw if is_document(p, roots)}
    changed = tuple(sorted(p for p in paths if p.is_file()))
    deleted = tuple(sorted(p for p in paths if not p.exists()))
    return FileChanges(changed, deleted)


def watch_documents(
    paths: Iterable[Path], *, debounce_ms: int, stop_event: Any = None, force_polling: bool | None = None
) -> Iterator[FileChanges]:
    """Batches of document changes under ``paths`` until ``stop_event`` is set or Ctrl-C.

    watchfiles gathers events until none came for ``debounce_ms``, so a copy of many files
    is one batch. Ctrl-C raises KeyboardInterrupt, for the caller to end on.
    """
    import watchfiles

    paths = [Path(p) for p in paths]
    roots = [p.resolve() for p in paths]
    _, known = _walk(paths, roots)
    for raw in watchfiles.watch(
        *roots,
        watch_filter=lambda change, path: _visible(path, roots) and _may_hold_documents(path),
        debounce=debounce_ms,
        stop_event=stop_event,
        force_polling=force_polling,
        raise_interrupt=True,
    ):
        changes = sort_changes(raw, roots)
        listing, now = _walk(paths, roots)
        changes = FileChanges(
            tuple(sorted({*changes.changed, *(now - known)})),
            tuple(sorted({*changes.deleted, *(known - now)})),
            listing,
        )
        known = now
        if changes.changed or changes.deleted:
            yield changes


def _walk(paths: list[Path], roots: list[Path]) -> tuple[tuple[Path | tuple[Path, str], ...], set[Path]]:
    """One walk of ``paths``: what `load_documents` would read there, spelled as given (documents keep
    that path), and the same files below the resolved ``roots``, as watchfiles names them, so a file
    found by the walk and reported by watchfiles is one change. Walking ``paths`` or ``roots`` lists the
    same tree (linked folders are not entered), so the second spelling is the first's, re-rooted."""
    listing: list[Path | tuple[Path, str]] = []
    files: set[Path] = set()
    for path, root in zip(paths, roots, strict=True):
        found = list_files([path])
        listing.extend(found)
        # A root given as a file is its own relative path "." (re-rooted: the resolved file); a glob
        # pattern's matches lie beside it (`rag index --watch` refuses patterns; watchfiles can't watch them).
        files.update(
            root / f.relative_to(path) if f.is_relative_to(path) else f.resolve() for f in found if isinstance(f, Path)
        )
    return tuple(listing), files
