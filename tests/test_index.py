"""The on-disk index: incremental updates, manifests, locking, crash safety (with fakes)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import CONFIG, A, B, C, FakeEmbedder, doc, index_lock_held_elsewhere, paragraphs, run

from rag.errors import IndexLockedError, IndexStateError
from rag.retrieval import store
from rag.retrieval.store import IndexConfig, IndexLock, current_version, load_index, update_index


def test_build_then_nothing_to_do(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    first = run(tmp_path, [A, B], emb)
    assert sorted(first.added) == ["a.txt", "b.txt"] and first.chunks == 3 and first.embedded_chunks == 3
    second = run(tmp_path, [A, B], emb)
    assert second.nothing_to_do and second.version is None and sorted(second.unchanged) == ["a.txt", "b.txt"]
    assert emb.calls == [(3, "document")]  # the second run embedded nothing


def test_add_change_remove_touch_only_that_document(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    run(tmp_path, [A, B], emb)
    before = load_index(tmp_path, CONFIG)
    changed_b = doc("b.txt", "Nvidia verlor an einem Tag 589 Milliarden Dollar.\nDer Kurs fiel um 17 Prozent.")
    report = run(tmp_path, [A, changed_b, C], emb)
    assert report.added == ["c.txt"] and report.changed == ["b.txt"] and report.unchanged == ["a.txt"]
    assert emb.calls[-1] == (4, "document")  # only b (2 lines) and c (2 lines) were embedded
    after = load_index(tmp_path, CONFIG)
    a_rows_before = [i for i, c in enumerate(before.chunks) if c.doc_id == "a.txt"]
    a_rows_after = [i for i, c in enumerate(after.chunks) if c.doc_id == "a.txt"]
    np.testing.assert_array_equal(before.vectors[a_rows_before], after.vectors[a_rows_after])
    assert len({c.chunk_id for c in after.chunks}) == len(after.chunks) == 6  # never duplicated
    pruned = run(tmp_path, [A, C], emb, prune=True)
    assert pruned.removed == ["b.txt"]
    final = load_index(tmp_path, CONFIG)
    assert {c.doc_id for c in final.chunks} == {"a.txt", "c.txt"} and final.dense.ntotal == len(final.chunks)
    explicit = run(tmp_path, [], emb, remove=["a.txt"])
    assert explicit.removed == ["a.txt"]
    assert {c.doc_id for c in load_index(tmp_path, CONFIG).chunks} == {"c.txt"}


def test_without_prune_missing_documents_stay(tmp_path: Path) -> None:
    run(tmp_path, [A, B])
    assert run(tmp_path, [A]).nothing_to_do
    assert set(load_index(tmp_path, CONFIG).documents) == {"a.txt", "b.txt"}


def test_offsets_resolve_against_stored_documents(tmp_path: Path) -> None:
    run(tmp_path, [A, B, C])
    index = load_index(tmp_path, CONFIG)
    for c in index.chunks:
        assert index.documents[c.doc_id].text[c.start : c.end] == c.text


def test_manifest_describes_the_index_and_mismatch_is_refused(tmp_path: Path) -> None:
    run(tmp_path, [A, B])
    manifest = json.loads((current_version(tmp_path) / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["embedding"] == {
        "model": "fake", "sha256": "f" * 64, "dimension": 64, "backend": "onnx-int8", "graph_version": 2,
    }  # fmt: skip
    assert manifest["chunker"] == {
        "chunk_tokens": 50, "overlap_sentences": 0, "embed_titles": True, "metadata": 1, "chunking": 2
    }  # fmt: skip
    assert manifest["documents"]["a.txt"]["content_hash"] == A.content_hash
    assert manifest["counts"] == {"documents": 2, "chunks": 3, "tokens": 18}
    other = IndexConfig("other-model", "0" * 64, 64, 50, 0)
    with pytest.raises(IndexStateError, match=r"other-model.*rag index --rebuild"):
        load_index(tmp_path, other)


def test_changed_chunker_settings_rechunk_everything(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    run(tmp_path, [A, B], emb)
    from dataclasses import replace

    report = update_index(
        tmp_path, replace(CONFIG, chunk_tokens=99), [A, B], chunk=paragraphs,
        embed=lambda cs: emb.embed([c.text for c in cs], "document"), detect_lang=lambda t: "de",
    )  # fmt: skip
    assert report.version is not None and emb.calls[-1] == (3, "document")


def test_missing_index_and_damaged_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IndexStateError, match="run `rag index`"):
        load_index(tmp_path, CONFIG)
    run(tmp_path, [A])
    live = current_version(tmp_path)
    (live / "chunks.jsonl").write_text('{"broken": \n')
    with pytest.raises(IndexStateError, match=r"chunks.jsonl.*rebuild"):
        load_index(tmp_path, CONFIG)
    run(tmp_path, [A], rebuild=True)
    live = current_version(tmp_path)
    (live / "dense.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexStateError, match="rebuild"):
        load_index(tmp_path, CONFIG)


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with index_lock_held_elsewhere(tmp_path), pytest.raises(IndexLockedError, match="another process"):
        run(tmp_path, [A])


def test_the_writer_lock_nests_in_the_thread_that_holds_it(tmp_path: Path) -> None:
    """An upload holds the lock from staging its file to renaming it, and indexes (`update_index`) inside."""
    with IndexLock(tmp_path):
        assert run(tmp_path, [A]).added == ["a.txt"]
    assert run(tmp_path, [A, B]).added == ["b.txt"]  # released: the next writer gets it


def _build_and_stall(index_dir: str, stage: str) -> None:
    """Build a+b+c, stalling at ``stage`` so the parent can kill the process right there."""
    import rag.retrieval.store as index_module

    def stall(*args, **kwargs):
        time.sleep(30)

    emb = FakeEmbedder()
    embed = lambda chunks: emb.embed([c.text for c in chunks], "document")  # noqa: E731
    if stage == "embedding":
        embed = lambda chunks: stall()  # noqa: E731
    elif stage == "writing":  # staging folder written, not yet renamed into place
        index_module.fsync_tree = stall
    elif stage == "after-swap":  # new version live, old not yet collected
        index_module._collect_garbage = stall
    update_index(Path(index_dir), CONFIG, [A, B, C], chunk=paragraphs, embed=embed, detect_lang=lambda t: "de")


@pytest.mark.parametrize("stage", ["embedding", "writing", "after-swap"])
def test_killed_writer_leaves_a_whole_index(tmp_path: Path, stage: str) -> None:
    run(tmp_path, [A])
    before = load_index(tmp_path, CONFIG)
    proc = multiprocessing.get_context("fork").Process(target=_build_and_stall, args=(str(tmp_path), stage))
    proc.start()
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    after = load_index(tmp_path, CONFIG)
    ids = [c.chunk_id for c in after.chunks]
    if stage == "after-swap":
        assert {c.doc_id for c in after.chunks} == {"a.txt", "b.txt", "c.txt"}  # the new one, whole
    else:
        assert after.version == before.version and ids == [c.chunk_id for c in before.chunks]  # the old one
    assert after.dense.ntotal == len(after.chunks) == after.vectors.shape[0]
    run(tmp_path, [A, B, C], prune=True)  # the lock died with the process; the next run works and cleans up
    assert not list(tmp_path.glob(".building-*"))
    assert len(list(tmp_path.glob("v-*"))) <= 2


@pytest.mark.parametrize("faiss_type", ["auto", "ivf-sq8"])
def test_removing_every_document_leaves_a_valid_empty_index(tmp_path: Path, faiss_type: str) -> None:
    """bm25s cannot index an empty corpus (and FAISS cannot train IVF on no vectors): the update crashed."""
    from dataclasses import replace

    from rag.retrieval.retrieve import Retriever

    config = replace(CONFIG, faiss_type=faiss_type)
    emb = FakeEmbedder()
    kw = {"chunk": paragraphs, "embed": lambda cs: emb.embed([c.text for c in cs], "document")}
    update_index(tmp_path, config, [A, B], detect_lang=lambda t: "de", **kw)
    report = update_index(tmp_path, config, [], detect_lang=lambda t: "de", prune=True, **kw)
    assert sorted(report.removed) == ["a.txt", "b.txt"] and report.version is not None
    empty = load_index(tmp_path, config)
    assert empty.documents == {} and empty.chunks == [] and empty.manifest["counts"]["documents"] == 0
    assert Retriever(empty, emb).search("Wie viele GPUs nutzte DeepSeek?") == []
    assert update_index(tmp_path, config, [], detect_lang=lambda t: "de", **kw).version is None  # no rebuild due
    assert update_index(tmp_path, config, [A], detect_lang=lambda t: "de", **kw).added == ["a.txt"]
    assert not list(tmp_path.glob(".building-*"))


def test_a_same_named_article_from_another_file_replaces_only_when_asked(tmp_path: Path) -> None:
    """A document id is its file name; an upload replaces, `rag index` (replace_same_name=False) does not
    while the indexed article's file is still there."""
    from dataclasses import replace

    first, second = tmp_path / "a" / "x.txt", tmp_path / "b" / "x.txt"
    for path, text in ((first, A.text), (second, B.text)):
        path.parent.mkdir()
        path.write_text(text)
    mine, other = replace(A, doc_id="x.txt", path=str(first)), replace(B, doc_id="x.txt", path=str(second))
    run(tmp_path / "index", [mine])
    refused = run(tmp_path / "index", [other, C], replace_same_name=False)
    assert refused.skipped == [
        (str(second), f"duplicate document id 'x.txt' (also {first}, already indexed); rename one of the two")
    ]
    assert refused.added == ["c.txt"] and load_index(tmp_path / "index", CONFIG).documents["x.txt"].text == A.text
    assert run(tmp_path / "index", [mine], replace_same_name=False).unchanged == ["x.txt"]  # the file itself
    first.unlink()  # moved away: the name is free
    assert run(tmp_path / "index", [other], replace_same_name=False).changed == ["x.txt"]
    assert run(tmp_path / "index", [mine]).changed == ["x.txt"]  # an upload replaces


def test_a_write_failing_other_than_on_disk_leaves_no_staging_folder(tmp_path: Path) -> None:
    """Only an OSError removed the staging folder; text not writable as UTF-8 (a bug upstream) left it."""
    from rag.types import Document

    run(tmp_path, [A])
    before = load_index(tmp_path, CONFIG).version
    with pytest.raises(UnicodeEncodeError):
        run(tmp_path, [Document("x.txt", "x", "x.txt", "Halb \ud800 Zeichen.", "0" * 64)])
    assert not list(tmp_path.glob(".building-*")) and not (tmp_path / ".CURRENT.tmp").exists()
    assert load_index(tmp_path, CONFIG).version == before


def test_a_rebuild_keeps_the_documents_it_was_not_given(tmp_path: Path) -> None:
    """A rebuild started from nothing: `rag index --rebuild new.txt`, or an upload or a delete after
    RAG_CHUNK_TOKENS changed, left only the documents given (a delete: none), reporting 0 removed."""
    from dataclasses import replace

    emb = FakeEmbedder()
    kw = {"chunk": paragraphs, "embed": lambda cs: emb.embed([c.text for c in cs], "document")}
    run(tmp_path, [A, B], emb)
    report = update_index(tmp_path, replace(CONFIG, chunk_tokens=99), [C], detect_lang=lambda t: "de", **kw)
    assert report.added == ["c.txt"] and report.removed == [] and report.embedded_chunks == report.chunks == 5
    assert sorted(load_index(tmp_path, CONFIG).documents) == ["a.txt", "b.txt", "c.txt"]
    report = update_index(tmp_path, CONFIG, [], remove=["b.txt"], detect_lang=lambda t: "de", **kw)  # a delete
    assert report.removed == ["b.txt"] and sorted(load_index(tmp_path, CONFIG).documents) == ["a.txt", "c.txt"]
    report = run(tmp_path, [C], emb, rebuild=True)
    assert report.unchanged == ["c.txt"] and report.embedded_chunks == report.chunks == 4
    assert load_index(tmp_path, CONFIG).documents["a.txt"].text == A.text
    assert run(tmp_path, [C], emb, rebuild=True, prune=True).removed == ["a.txt"]
    assert sorted(load_index(tmp_path, CONFIG).documents) == ["c.txt"]


def test_a_rebuild_of_a_damaged_index_starts_from_what_it_can_read(tmp_path: Path) -> None:
    run(tmp_path, [A, B])
    (current_version(tmp_path) / "dense.faiss").write_bytes(b"garbage")  # the documents are still whole
    assert sorted(run(tmp_path, [C], rebuild=True).added) == ["c.txt"]
    assert sorted(load_index(tmp_path, CONFIG).documents) == ["a.txt", "b.txt", "c.txt"]
    (current_version(tmp_path) / "documents.jsonl").write_text("{}\n")  # now they are not
    with pytest.raises(IndexStateError, match="--rebuild --prune"):  # losing a.txt and b.txt is asked for
        run(tmp_path, [C], rebuild=True)
    assert run(tmp_path, [C], rebuild=True, prune=True).unchanged == []
    assert sorted(load_index(tmp_path, CONFIG).documents) == ["c.txt"]


def test_prune_keeps_the_documents_of_files_skipped_while_still_there(tmp_path: Path) -> None:
    """`rag index --prune` took a file skipped this run (empty mid-save, in a folder it could not list)
    for a deleted one and removed its document."""
    from dataclasses import replace

    folder = tmp_path / "korpus"
    (folder / "gesperrt").mkdir(parents=True)
    a, b, c = (replace(d, path=str(folder / p)) for d, p in ((A, "a.txt"), (B, "gesperrt/b.txt"), (C, "c.txt")))
    run(tmp_path / "index", [a, b, c])
    (folder / "a.txt").write_text("")  # being saved
    report = run(tmp_path / "index", [c], prune=True, keep=[folder / "a.txt", folder / "gesperrt"])
    assert report.held == ["a.txt", "b.txt"] and report.removed == [] and report.version is None
    report = run(tmp_path / "index", [c], prune=True, keep=[folder / "a.txt"])  # the folder is readable again
    assert report.held == ["a.txt"] and report.removed == ["b.txt"]
    assert sorted(load_index(tmp_path / "index", CONFIG).documents) == ["a.txt", "c.txt"]
    assert run(tmp_path / "index", [c], keep=[folder / "a.txt"]).held == []  # without prune nothing goes anyway


def test_a_file_the_watcher_lost_in_a_folder_it_cannot_list_is_not_deleted(tmp_path: Path) -> None:
    """Under `--watch` a folder that turned unreadable made its files look deleted, and their documents went
    even without --prune."""
    from dataclasses import replace

    folder = tmp_path / "korpus"
    (folder / "gesperrt").mkdir(parents=True)
    a, b = (replace(d, path=str(folder / p)) for d, p in ((A, "a.txt"), (B, "gesperrt/b.txt")))
    run(tmp_path / "index", [a, b])
    report = run(tmp_path / "index", [a], deleted=[folder / "gesperrt" / "b.txt"], keep=[folder / "gesperrt"])
    assert report.removed == [] and report.held == ["b.txt"]
    assert run(tmp_path / "index", [a], deleted=[folder / "gesperrt" / "b.txt"]).removed == ["b.txt"]


def test_a_deletion_removes_only_the_document_recorded_at_that_path(tmp_path: Path) -> None:
    """The watcher removed by file name: deleting a skipped duplicate x.txt in another folder removed the
    x.txt indexed from elsewhere. A moved file is recorded at its new path, without embedding again."""
    from dataclasses import replace

    index = tmp_path / "index"
    emb = FakeEmbedder()
    x = replace(A, doc_id="x.txt", path=str(tmp_path / "a" / "x.txt"))
    run(index, [x, B], emb)
    report = run(index, [B], emb, deleted=[tmp_path / "b" / "x.txt"])
    assert report.removed == [] and report.version is None and "x.txt" in load_index(index, CONFIG).documents
    moved = replace(x, path=str(tmp_path / "c" / "x.txt"))
    report = run(index, [moved, B], emb)
    assert report.moved == ["x.txt"] and sorted(report.unchanged) == ["b.txt", "x.txt"] and report.version
    assert report.embedded_chunks == 0 and load_index(index, CONFIG).documents["x.txt"].path == moved.path
    assert run(index, [B], emb, deleted=[tmp_path / "a" / "x.txt"]).removed == []  # where it was before
    assert run(index, [B], emb, deleted=[tmp_path / "c" / "x.txt"]).removed == ["x.txt"]


def test_chunking_shows_progress_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(tmp_path / "few", [A, B], progress=True)
    assert "chunking" not in capsys.readouterr().err  # two documents: done before a bar means anything
    monkeypatch.setattr(store, "PROGRESS_MIN_ITEMS", 1)
    run(tmp_path / "quiet", [A, B])
    assert capsys.readouterr().err == ""  # a library call stays quiet
    run(tmp_path / "shown", [A, B], progress=True)
    assert "chunking" in capsys.readouterr().err
