"""`rag index --watch`: a file written into a watched folder reaches the index (fake embedder)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes import A, B, FakeEmbedder
from typer.testing import CliRunner

from rag.ingest.watch import FileChanges, sort_changes


@pytest.fixture
def watched(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from rag import wiring
    from rag.ingest.load import load_documents

    monkeypatch.setattr(wiring, "token_counter", lambda s: lambda t: len(t.split()))
    settings = settings.model_copy(update={"watch_debounce_ms": 100})
    settings.corpus_dir.mkdir()
    for d in (A, B):
        (settings.corpus_dir / d.doc_id).write_text(d.text)
    wiring.index_documents(settings, load_documents([settings.corpus_dir])[0], loaded_embedder=FakeEmbedder(768))
    return settings


def wait_for(runs: list[Any], count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(runs) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(runs) >= count, f"watch reported {len(runs)} runs, expected {count}"


@contextmanager
def watching(settings: Any) -> Iterator[list[Any]]:
    """`reindex_on_change` on the corpus folder in a thread; yields the runs as they come, stops it after."""
    from rag import wiring

    stop = threading.Event()
    runs: list[Any] = []

    def watch() -> None:
        for run in wiring.reindex_on_change(
            settings, [settings.corpus_dir], loaded_embedder=FakeEmbedder(768), stop_event=stop
        ):
            runs.append(run)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # the watcher is set up
        yield runs
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_written_file_is_indexed_and_a_deleted_one_removed(watched: Any) -> None:
    from rag import wiring

    with watching(watched) as runs:
        (watched.corpus_dir / "neu.txt").write_text("Liang Wenfeng gründete DeepSeek in Hangzhou.\n")
        (watched.corpus_dir / ".neu.txt.swp").write_text("editor state")  # hidden: ignored
        wait_for(runs, 1)
        assert runs[0].error is None and runs[0].report.added == ["neu.txt"]
        assert [p.name for p in runs[0].changes.changed] == ["neu.txt"]
        index = wiring.open_index(watched)
        assert "neu.txt" in index.documents and any(c.doc_id == "neu.txt" for c in index.chunks)

        (watched.corpus_dir / "a.txt").unlink()
        wait_for(runs, 2)
        assert runs[1].report.removed == ["a.txt"]  # without --prune: a deleted file's document goes
        assert sorted(wiring.open_index(watched).documents) == ["b.txt", "neu.txt"]


def test_a_failed_run_is_reported_and_watching_goes_on(watched: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag import wiring
    from rag.errors import IndexLockedError

    def locked(*args: Any, **kwargs: Any) -> Any:
        raise IndexLockedError("index locked by another writer")

    monkeypatch.setattr(wiring, "index_documents", locked)
    monkeypatch.setattr(
        "rag.ingest.watch.watch_documents",
        lambda paths, **kw: iter([FileChanges((watched.corpus_dir / "a.txt",), ()), FileChanges((), ())]),
    )
    runs = list(wiring.reindex_on_change(watched, [watched.corpus_dir], loaded_embedder=FakeEmbedder(768)))
    assert len(runs) == 2 and all(isinstance(r.error, IndexLockedError) and r.report is None for r in runs)


def test_cli_watch_prints_each_run_and_stops_on_ctrl_c(watched: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag import wiring
    from rag.cli.main import app
    from rag.retrieval.store import UpdateReport

    monkeypatch.setattr(wiring, "embedder", lambda s: FakeEmbedder(768))

    def one_run_then_ctrl_c(settings: Any, paths: list[Path], **kw: Any) -> Any:
        changes = FileChanges((watched.corpus_dir / "neu.txt",), ())
        yield wiring.WatchRun(changes, UpdateReport(added=["neu.txt"], chunks=3, embedded_chunks=1, version="v-x"), [])
        raise KeyboardInterrupt

    monkeypatch.setattr(wiring, "reindex_on_change", one_run_then_ctrl_c)
    env = {"RAG_INDEX_DIR": str(watched.index_dir), "RAG_CORPUS_DIR": str(watched.corpus_dir)}
    result = CliRunner().invoke(app, ["index", "--watch"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("nothing to do: 2 documents unchanged")
    assert lines[1] == f"watching {watched.corpus_dir} (Ctrl-C to stop)"
    assert lines[2].endswith("changed neu.txt") and lines[3].startswith("indexed: 1 added")
    assert lines[-1] == "stopped watching"


def test_changes_are_sorted_by_what_is_on_disk_now(tmp_path: Path) -> None:
    from watchfiles import Change

    (tmp_path / "saved.txt").write_text("x")
    raw = {
        (Change.deleted, str(tmp_path / "saved.txt")),  # an editor's save by rename: the file is there
        (Change.deleted, str(tmp_path / "gone.md")),
        (Change.added, str(tmp_path / "notes.py")),  # not a document
    }
    changes = sort_changes(raw, [tmp_path])
    assert changes == FileChanges((tmp_path / "saved.txt",), (tmp_path / "gone.md",))
    assert changes.describe() == "changed saved.txt; deleted gone.md"


def test_removing_every_file_empties_the_index_and_watching_goes_on(
    watched: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last document removed once crashed the watcher in bm25s (an empty corpus); an index with no
    documents is valid, and the next file comes in."""
    from rag import wiring

    corpus = watched.corpus_dir
    files = sorted(corpus.iterdir())

    def batches(paths: Any, **kw: Any) -> Any:
        for f in files:
            f.unlink()
        yield FileChanges((), tuple(files))
        (corpus / "neu.txt").write_text("Liang Wenfeng gründete DeepSeek in Hangzhou.\n")
        yield FileChanges((corpus / "neu.txt",), ())

    monkeypatch.setattr("rag.ingest.watch.watch_documents", batches)
    runs = list(wiring.reindex_on_change(watched, [corpus], loaded_embedder=FakeEmbedder(768)))
    assert [r.error for r in runs] == [None, None]
    assert sorted(runs[0].report.removed) == ["a.txt", "b.txt"] and runs[0].report.chunks == 0
    assert runs[1].report.added == ["neu.txt"] and list(wiring.open_index(watched).documents) == ["neu.txt"]


def test_cli_watch_waits_in_an_empty_folder_but_not_on_a_missing_one(
    watched: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag import wiring
    from rag.cli.main import app

    monkeypatch.setattr(wiring, "embedder", lambda s: FakeEmbedder(768))
    monkeypatch.setattr(wiring, "reindex_on_change", lambda *a, **kw: iter(()))  # no change came
    (tmp_path / "empty").mkdir()
    env = {"RAG_INDEX_DIR": str(watched.index_dir)}
    result = CliRunner().invoke(app, ["index", "--watch", "--prune", str(tmp_path / "empty")], env=env)
    assert result.exit_code == 0 and result.output.startswith(f"nothing to index yet in {tmp_path / 'empty'}")
    assert sorted(wiring.open_index(watched).documents) == ["a.txt", "b.txt"]  # not pruned to nothing
    result = CliRunner().invoke(app, ["index", "--watch", str(tmp_path / "missing")], env=env)
    assert result.exit_code == 6 and "error: nothing to index" in result.output


def test_a_folder_moved_in_or_out_is_indexed_or_removed(watched: Any, tmp_path: Path) -> None:
    """A move is one event for the folder alone, which has no document suffix: it was filtered out, so
    the articles of a folder moved in were not indexed and those of one moved out stayed."""
    from rag import wiring

    outside = tmp_path / "ablage"
    (outside / "neu.txt").parent.mkdir()
    (outside / "neu.txt").write_text("Liang Wenfeng gründete DeepSeek in Hangzhou.\n")
    with watching(watched) as runs:
        outside.rename(watched.corpus_dir / "ablage")
        wait_for(runs, 1)
        assert runs[0].report.added == ["neu.txt"]
        (watched.corpus_dir / "ablage").rename(outside)
        wait_for(runs, 2)
        assert runs[1].changes.deleted == (watched.corpus_dir.resolve() / "ablage" / "neu.txt",)
        assert runs[1].report.removed == ["neu.txt"]
        assert sorted(wiring.open_index(watched).documents) == ["a.txt", "b.txt"]


def test_deleting_a_skipped_duplicate_leaves_the_indexed_article_of_its_name(
    watched: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deletions were matched by file name: removing a skipped x.txt from the watched folder removed the
    x.txt indexed from elsewhere."""
    from rag import wiring
    from rag.ingest.load import load_documents

    elsewhere = tmp_path / "anderswo"
    elsewhere.mkdir()
    (elsewhere / "x.txt").write_text("Der Ölpreis stieg um 3 Prozent.")
    wiring.index_documents(watched, load_documents([elsewhere])[0], loaded_embedder=FakeEmbedder(768))
    duplicate = watched.corpus_dir / "x.txt"
    duplicate.write_text("Ein anderer Artikel gleichen Namens.")

    def batches(paths: Any, **kw: Any) -> Any:
        yield FileChanges((duplicate,), ())
        duplicate.unlink()
        yield FileChanges((), (duplicate,))

    monkeypatch.setattr("rag.ingest.watch.watch_documents", batches)
    runs = list(wiring.reindex_on_change(watched, [watched.corpus_dir], loaded_embedder=FakeEmbedder(768)))
    assert [r.error for r in runs] == [None, None] and "duplicate document id 'x.txt'" in runs[0].report.skipped[0][1]
    assert runs[1].report.removed == []
    assert wiring.open_index(watched).documents["x.txt"].text == "Der Ölpreis stieg um 3 Prozent."


def test_watch_prune_keeps_a_file_skipped_while_it_is_saved(watched: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rag index --watch --prune` removed the document of a file that was empty mid-save."""
    from rag import wiring

    saved = watched.corpus_dir / "a.txt"

    def batches(paths: Any, **kw: Any) -> Any:
        saved.write_text("")
        yield FileChanges((saved,), ())

    monkeypatch.setattr("rag.ingest.watch.watch_documents", batches)
    runs = list(wiring.reindex_on_change(watched, [watched.corpus_dir], loaded_embedder=FakeEmbedder(768), prune=True))
    assert runs[0].error is None and runs[0].report.removed == [] and runs[0].report.held == ["a.txt"]
    assert runs[0].skipped == [(saved, "file is empty (or whitespace only)")]
    assert sorted(wiring.open_index(watched).documents) == ["a.txt", "b.txt"]


def root_listings(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[str]:
    """Every listing of ``root`` from now on: one per walk of the tree (os.walk and pathlib's globs list
    the top folder through os.scandir, once)."""
    listings: list[str] = []
    scandir = os.scandir

    def counting(path: Any = ".") -> Any:
        if Path(path).resolve() == root.resolve():
            listings.append(str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    return listings


def test_one_change_walks_the_corpus_once(watched: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher walked the corpus to find what came or went, then the re-index walked it again to load
    it: two walks of a large corpus per change where one tells both."""
    import watchfiles

    from rag import wiring

    corpus = watched.corpus_dir
    (corpus / "ablage").mkdir()
    listings = root_listings(monkeypatch, corpus)
    per_run: list[int] = []

    def one_event(*roots: Path, **kw: Any) -> Iterator[set[tuple[Any, str]]]:
        (corpus / "ablage" / "neu.txt").write_text("Liang Wenfeng gründete DeepSeek in Hangzhou.\n")
        listings.clear()  # the walk before watching is no event's
        yield {(watchfiles.Change.added, str(corpus.resolve() / "ablage" / "neu.txt"))}

    monkeypatch.setattr(watchfiles, "watch", one_event)
    for run in wiring.reindex_on_change(watched, [corpus], loaded_embedder=FakeEmbedder(768)):
        per_run.append(len(listings))
        assert run.error is None and run.report.added == ["neu.txt"] and run.skipped == []
    assert per_run == [1], f"one change walked the corpus {per_run} times"


def test_changes_are_named_below_the_resolved_root_of_a_linked_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchfiles names files below the resolved root; what the walk found (below the link) is named so too,
    so one file is one change, and the re-index reads the files by the path given."""
    import watchfiles

    from rag.ingest.load import load_listed
    from rag.ingest.watch import watch_documents

    real = tmp_path / "real"
    (real / "ablage").mkdir(parents=True)
    (real / "a.txt").write_text("Der Ölpreis stieg um 3 Prozent.")
    link = tmp_path / "link"
    link.symlink_to(real)

    def events(*roots: Path, **kw: Any) -> Iterator[set[tuple[Any, str]]]:
        assert roots == (real,)
        (real / "ablage" / "neu.txt").write_text("Liang Wenfeng gründete DeepSeek in Hangzhou.\n")
        yield {(watchfiles.Change.added, str(real / "ablage"))}  # a folder moved in: one event for it
        (real / "a.txt").write_text("Der Ölpreis fiel um 3 Prozent.")
        yield {(watchfiles.Change.modified, str(real / "a.txt"))}

    monkeypatch.setattr(watchfiles, "watch", events)
    batches = list(watch_documents([link], debounce_ms=100))
    assert [(b.changed, b.deleted) for b in batches] == [((real / "ablage" / "neu.txt",), ()), ((real / "a.txt",), ())]
    documents, skipped = load_listed(batches[-1].listing or ())
    assert sorted(d.path for d in documents) == [str(link / "a.txt"), str(link / "ablage" / "neu.txt")]
    assert skipped == []
