"""Fault injection: killed writers, damaged files, a full disk (issue 9).

(a) A process SIGKILLed at random points while it updates the index (``rag index``) or while
    it adds an uploaded document (``rag.serve.uploads.add_document``): afterwards the index loads and
    is exactly the old one or exactly the new one. tests/test_index.py kills at three named
    stages; here the kill points are the Nth executed line of the writer's code, N drawn with
    a seeded RNG, so every run covers the same points and a failure can be replayed.
(b) Damaged model files, index files and manifests, and a full disk: each gives a typed error
    naming the file and the fix, and the CLI prints one line and a non-zero exit code.
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fakes import CONFIG, A, B, C, FakeEmbedder, doc, run
from typer.testing import CliRunner

from rag.cli.main import app
from rag.errors import IndexStateError, ModelError, StorageError
from rag.models import fetch
from rag.retrieval.store import current_version, load_index

ROOT = Path(__file__).resolve().parent.parent
KILL_POINTS = 20
SEED = 9
runner = CliRunner()

# ----------------------------------------------------------------------------- (a) SIGKILL at random points

# The writer's own code; a kill between two of its lines stands for a kill anywhere in between
# (a half-written file lies in a staging folder or a temporary name either way).
_TRACED = tuple(
    str(ROOT / "rag" / name)
    for name in ("retrieval/store.py", "retrieval/files.py", "retrieval/bm25.py", "durable.py", "serve/uploads.py")
)


def _die_at_line(kill_at: int | None) -> list[int]:
    """Trace the writer's lines; SIGKILL this process at line number ``kill_at`` (None: never)."""
    count = [0]

    def on_line(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return on_line

    sys.settrace(lambda frame, event, arg: on_line if frame.f_code.co_filename in _TRACED else None)
    return count


B2 = doc("b.txt", "Nvidia verlor an einem Tag 589 Milliarden Dollar.\nDer Kurs fiel um 17 Prozent.")
UPLOAD = "Die Aktie von ASML fiel um sieben Prozent.\nAuch Siemens Energy verlor deutlich."


def _index_update(workdir: Path) -> None:
    """`rag index --prune` in small: b changed, c added, a removed."""
    run(workdir / "index", [B2, C], prune=True)


def _upload(workdir: Path) -> None:
    """The upload route's body: save the file, index it, swap it in."""
    from rag.serve.uploads import add_document

    settings = _upload_settings(workdir)
    answerer = SimpleNamespace(retriever=SimpleNamespace(embedder=FakeEmbedder(768), use_index=lambda index: None))
    add_document(settings, answerer, "d.txt", UPLOAD.encode())  # type: ignore[arg-type]


def _upload_settings(workdir: Path):  # type: ignore[no-untyped-def]
    from rag.config import Settings

    return Settings(index_dir=workdir / "index", corpus_dir=workdir / "corpus")


def _child(op: str, workdir: str, kill_at: int | None, count_file: str) -> None:
    count = _die_at_line(kill_at)
    swap = [0]
    replace = os.replace

    def noting_the_swap(src: Any, dst: Any) -> None:
        replace(src, dst)
        if Path(dst).name == "CURRENT":
            swap[0] = count[0]  # lines up to here leave the old index live, later ones the new

    os.replace = noting_the_swap  # this child only
    {"index": _index_update, "upload": _upload}[op](Path(workdir))
    sys.settrace(None)
    Path(count_file).write_text(json.dumps({"lines": count[0], "swap": swap[0]}))


def _run_child(op: str, workdir: Path, kill_at: int | None) -> tuple[int | None, dict[str, int]]:
    count_file = workdir / "lines.json"
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(op, str(workdir), kill_at, str(count_file)))
    proc.start()
    proc.join(60)
    return proc.exitcode, json.loads(count_file.read_text()) if count_file.exists() else {}


def _fingerprint(index_dir: Path, config: Any) -> tuple[Any, ...]:
    """What the index answers from; also checks its parts agree with each other."""
    index = load_index(index_dir, config)
    n = len(index.chunks)
    assert index.dense.ntotal == n == index.vectors.shape[0] == index.manifest["counts"]["chunks"]
    if n:
        np.testing.assert_array_equal(index.dense.reconstruct_n(0, n), index.vectors)
        assert all(0 <= row < n for row, _ in index.keyword.search(["dollar"], 5))
    for c in index.chunks:
        assert index.documents[c.doc_id].text[c.start : c.end] == c.text
    return (
        tuple(sorted((d, doc.content_hash) for d, doc in index.documents.items())),
        tuple((c.chunk_id, c.text) for c in index.chunks),
        hashlib.sha256(index.vectors.tobytes()).hexdigest(),
    )


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real runtime path with a fake embedder and a word-count tokenizer (inherited by forked children)."""
    from rag import wiring

    monkeypatch.setattr(wiring, "token_counter", lambda s: lambda t: len(t.split()))
    monkeypatch.setattr(wiring, "embedder", lambda s: FakeEmbedder(768))


def _base(tmp_path: Path, op: str) -> tuple[Path, Any]:
    base = tmp_path / "base"
    if op == "index":
        run(base / "index", [A, B])
        return base, CONFIG
    from rag import wiring
    from rag.ingest.load import load_documents

    settings = _upload_settings(base)
    settings.corpus_dir.mkdir(parents=True)
    for d in (A, B, C):
        (settings.corpus_dir / d.doc_id).write_text(d.text)
    wiring.index_documents(settings, load_documents([settings.corpus_dir])[0])
    return base, wiring.index_config(settings)


@pytest.mark.parametrize("op", ["index", "upload"])
def test_sigkill_at_random_points_leaves_old_or_new_index(tmp_path: Path, op: str, fake_runtime: None) -> None:
    from rag.serve.uploads import recover_uploads  # imported before any child, so every child traces the same lines

    base, config = _base(tmp_path, op)
    old = _fingerprint(base / "index", config)
    whole = tmp_path / "whole"
    shutil.copytree(base, whole)
    exitcode, lines = _run_child(op, whole, None)
    total, swap = lines["lines"], lines["swap"]
    assert exitcode == 0 and 0 < swap < total, (exitcode, lines)
    new = _fingerprint(whole / "index", config)
    assert new != old

    # Half the points before the pointer swap and half after it, so both outcomes are exercised.
    rng = random.Random(f"{SEED}-{op}")
    half = KILL_POINTS // 2
    after = min(half, total - swap)
    points = sorted(rng.sample(range(1, swap + 1), KILL_POINTS - after) + rng.sample(range(swap + 1, total + 1), after))
    outcome: dict[int, str] = {}
    unsaved: list[int] = []
    for n in points:
        work = tmp_path / f"kill-{n}"
        shutil.copytree(base, work)
        exitcode, _ = _run_child(op, work, n)
        assert exitcode == -signal.SIGKILL, f"line {n}: child ended with {exitcode}, not killed"
        state = _fingerprint(work / "index", config)
        assert state in (old, new), f"{op} killed at line {n}/{total}: the index is neither the old nor the new one"
        outcome[n] = "old" if state == old else "new"
        if op == "upload":
            # The corpus file is moved into place only after the index swap: a saved file is always indexed.
            # The reverse can happen (killed between the swap and the move): indexed, file not saved.
            saved = (work / "corpus" / "d.txt").exists()
            assert not saved or outcome[n] == "new", n
            if outcome[n] == "new" and not saved:
                unsaved.append(n)
            # What `rag serve` does at start-up: finish the move when the index holds the staged file, else drop it.
            loaded = SimpleNamespace(retriever=SimpleNamespace(index=load_index(work / "index", config)))
            recover_uploads(_upload_settings(work), loaded)  # type: ignore[arg-type]
            assert (work / "corpus" / "d.txt").exists() == (outcome[n] == "new"), n
            assert not list((work / "corpus").glob(".upload-*")), n
        # The lock died with the process: the next writer runs, finishes the job and cleans up.
        exitcode, _ = _run_child(op, work, None)
        assert exitcode == 0 and _fingerprint(work / "index", config) == new
        assert not list((work / "index").glob(".building-*")) and len(list((work / "index").glob("v-*"))) <= 2
    survived = sum(1 for state in outcome.values() if state in ("old", "new"))
    print(f"\n{op}: {survived}/{len(points)} kill points survived ({total} traced lines, swap after {swap}): {outcome}")
    if op == "upload":
        print(f"upload: indexed but the corpus file not yet saved when killed at lines {unsaved} (recovered at start)")
    assert survived == KILL_POINTS
    assert [outcome[n] == "new" for n in points] == [n > swap for n in points], outcome


# ----------------------------------------------------------------------------- (b) damaged files, one-line errors


def _one_line_error(result: Any, code: int, *needles: str) -> str:
    """The CLI failed with ``code`` and printed exactly one line holding every needle."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def built(tmp_path: Path, fake_runtime: None, settings: Any) -> Path:
    """A real-layout index (the default embedding config) built with fakes; returns its live version."""
    from rag import wiring

    wiring.index_documents(settings, [A, B, C])
    return current_version(settings.index_dir)


def _drop_file_hashes(built: Path) -> None:
    """Make the manifest look like one written before it listed its files' hashes."""
    manifest = json.loads((built / "manifest.json").read_text())
    del manifest["files"]
    (built / "manifest.json").write_text(json.dumps(manifest))


def _stats(settings: Any) -> Any:
    return runner.invoke(app, ["--index-dir", str(settings.index_dir), "index", "--stats"])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_text('{"broken": \n'), id="garbage"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), id="truncated"),
        pytest.param(lambda p: p.write_text(p.read_text().replace('"start": 0', '"start": 1', 1)), id="edited"),
        pytest.param(lambda p: p.unlink(), id="missing"),
    ],
)
def test_damaged_chunks_file(built: Path, settings: Any, damage: Any) -> None:
    damage(built / "chunks.jsonl")
    with pytest.raises(IndexStateError, match=r"chunks\.jsonl.*rag index --rebuild"):
        load_index(settings.index_dir, _config(settings))
    line = _one_line_error(_stats(settings), 4, "chunks.jsonl", "rag index --rebuild")
    print(f"\nchunks.jsonl: {line}")


def test_malformed_rows_in_an_index_without_file_hashes(built: Path, settings: Any) -> None:
    """Indexes written before the manifest listed its files: bad rows are still named, not a TypeError."""
    _drop_file_hashes(built)
    (built / "chunks.jsonl").write_text('{"chunk_id": "x"}\n')
    _one_line_error(_stats(settings), 4, "chunks.jsonl", "malformed row", "rag index --rebuild")
    (built / "chunks.jsonl").unlink()
    (built / "documents.jsonl").write_text('{"doc_id": "a.txt"}\n')
    _one_line_error(_stats(settings), 4, "documents.jsonl", "malformed row", "rag index --rebuild")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:], id="one-byte-flipped"),
        pytest.param(lambda b: b"\x00" * len(b), id="zeroed"),
    ],
)
def test_damaged_faiss_file(built: Path, settings: Any, damage: Any) -> None:
    target = built / "dense.faiss"
    target.write_bytes(damage(target.read_bytes()))
    line = _one_line_error(_stats(settings), 4, "dense.faiss", "rag index --rebuild")
    print(f"\ndense.faiss: {line}")


def test_faiss_file_that_faiss_cannot_parse(built: Path, settings: Any) -> None:
    """Without the manifest's hashes (older index) the FAISS reader's own failure is named the same way."""
    _drop_file_hashes(built)
    (built / "dense.faiss").write_bytes(b"garbage")
    _one_line_error(_stats(settings), 4, "dense.faiss", "is damaged", "rag index --rebuild")


def test_manifest_for_another_model(built: Path, settings: Any) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    manifest["embedding"] = {"model": "multilingual-e5-small", "sha256": "e" * 64, "dimension": 384}
    (built / "manifest.json").write_text(json.dumps(manifest))
    line = _one_line_error(_stats(settings), 4, "manifest.json", "multilingual-e5-small", "rag index --rebuild")
    print(f"\nmanifest: {line}")


@pytest.mark.parametrize("pointer", ["../../etc", "", "v-does-not-exist"])
def test_bad_current_pointer(built: Path, settings: Any, pointer: str) -> None:
    (settings.index_dir / "CURRENT").write_text(pointer)
    _one_line_error(_stats(settings), 4, "CURRENT", "rag index --rebuild")


def _config(settings: Any) -> Any:
    from rag import wiring

    return wiring.index_config(settings)


# ---- a full disk


def _enospc(*args: Any, **kwargs: Any) -> None:
    where = args[0] if args and isinstance(args[0], (str, Path)) else None
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if where is None else str(where))


@pytest.mark.parametrize("where", ["numpy.save", "os.fsync", "pathlib.Path.write_bytes", "pathlib.Path.mkdir"])
def test_full_disk_while_indexing(
    built: Path, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """ENOSPC at any write of a new version: one line, exit 7, the old index live and whole, no leftovers."""
    before = _fingerprint(settings.index_dir, _config(settings))
    corpus = tmp_path / "more"
    corpus.mkdir()
    (corpus / "d.txt").write_text(UPLOAD)
    module, _, name = where.rpartition(".")
    owner: Any = {"numpy": np, "os": os, "pathlib.Path": Path}[module]
    monkeypatch.setattr(owner, name, _enospc)
    if where == "pathlib.Path.mkdir":  # the lock's folder exists; the staging folder is the first mkdir
        monkeypatch.setattr("rag.retrieval.store.IndexLock.__enter__", lambda self: self)
    result = runner.invoke(app, ["--index-dir", str(settings.index_dir), "index", str(corpus)])
    line = _one_line_error(result, 7, "No space left on device", "free some space", "previous index is unchanged")
    print(f"\nfull disk ({where}): {line}")
    monkeypatch.undo()
    assert _fingerprint(settings.index_dir, _config(settings)) == before
    assert not list(settings.index_dir.glob(".building-*")) and not list(settings.index_dir.glob(".CURRENT.tmp"))


_FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    sys.path[:0] = [{tests!r}]
    from fakes import CONFIG, A, B, C, run
    from rag.errors import StorageError
    from rag.retrieval.store import load_index

    disk = Path(sys.argv[1])
    run(disk / "index", [A])
    before = [c.chunk_id for c in load_index(disk / "index", CONFIG).chunks]
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as fh:  # fill the disk to the last byte
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    fh.write(b"x" * size)
            except OSError:
                pass
    out = {{}}
    try:
        run(disk / "index", [A, B, C])
        out["error"] = None
    except StorageError as exc:
        out["error"] = str(exc)
    out["old_intact"] = [c.chunk_id for c in load_index(disk / "index", CONFIG).chunks] == before
    out["leftovers"] = sorted(p.name for p in (disk / "index").iterdir() if p.name.startswith(".building"))
    filler.unlink()
    report = run(disk / "index", [A, B, C])
    out["after_space_freed"] = sorted(report.added)
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a private tmpfs")
def test_really_full_disk_on_a_small_tmpfs(tmp_path: Path) -> None:
    """A real full file system: a 2 MB tmpfs mounted in a private user+mount namespace (no root needed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = _FULL_DISK_SCRIPT.format(tests=str(ROOT / "tests"))
    cmd = ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=2m tmpfs "$1" && exec "$2" -c "$3" "$1"', "sh"]
    proc = subprocess.run(
        [*cmd, str(disk), sys.executable, script], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    if proc.returncode != 0 and "mount" in proc.stderr and "Traceback" not in proc.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nreal full disk: {out['error']}")
    assert out["error"] and "No space left on device" in out["error"] and "rag index" in out["error"]
    assert out["old_intact"] and out["leftovers"] == []
    assert out["after_space_freed"] == ["b.txt", "c.txt"]


# ---- model files


@pytest.fixture
def small_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-ins under the real names: a 4 kB "GGUF" and an embedding folder with pinned files."""
    folder = tmp_path / "models"
    gguf = b"GGUF" + bytes(range(256)) * 16
    tokenizer = json.dumps({"model": {"vocab": {"a": 0}}}).encode()
    weights = b"\x01" * 3000
    (folder / "emb").mkdir(parents=True)
    (folder / "answer.gguf").write_bytes(gguf)
    (folder / "emb" / "model.safetensors").write_bytes(weights)
    (folder / "emb" / "tokenizer.json").write_bytes(tokenizer)
    for name in ("config.json", "modules.json"):
        (folder / "emb" / name).write_text("{}")

    def sha(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    answer = fetch.ModelSpec("qwen2.5-coder-1.5b", "answers (default)", "file", "answer.gguf", (), len(gguf), sha(gguf))
    embedding = fetch.ModelSpec(
        "embeddinggemma-300m", "embeddings (default)", "folder", "emb", (), len(weights), sha(weights),
        checked_file="model.safetensors", dimension=768,
        files=(("tokenizer.json", len(tokenizer), sha(tokenizer)),),
    )  # fmt: skip
    monkeypatch.setattr(fetch, "MODELS", {"qwen2.5-coder-1.5b": answer, "embeddinggemma-300m": embedding})
    for name in fetch.MODELS:
        fetch.require(folder, name)  # verified and stamped, as after `rag models fetch`
    return folder


def _verify(folder: Path, name: str) -> Any:
    return runner.invoke(app, ["--models-dir", str(folder), "models", "verify", name])


@pytest.mark.parametrize(
    ("name", "file", "damage"),
    [
        ("qwen2.5-coder-1.5b", "answer.gguf", "truncate"),
        ("qwen2.5-coder-1.5b", "answer.gguf", "flip"),
        ("embeddinggemma-300m", "emb/model.safetensors", "truncate"),
        ("embeddinggemma-300m", "emb/tokenizer.json", "flip"),
    ],
)
def test_damaged_model_file(small_models: Path, name: str, file: str, damage: str) -> None:
    target = small_models / file
    data = target.read_bytes()
    target.write_bytes(data[:-100] if damage == "truncate" else data[:10] + bytes([data[10] ^ 0xFF]) + data[11:])
    assert not fetch.is_current(small_models, fetch.get_spec(name))  # the cheap check sees it (size, mtime)
    with pytest.raises(ModelError, match=rf"{target.name}.*rag models fetch --force {name}"):
        fetch.require(small_models, name)
    line = _one_line_error(_verify(small_models, name), 3, str(target), f"rag models fetch --force {name}")
    print(f"\nmodel {file} {damage}: {line}")


def test_altered_model_with_restored_mtime_is_caught_by_verify_only(small_models: Path) -> None:
    """The cheap stamp check trusts size and mtime; `rag models verify` rehashes and catches the change."""
    target = small_models / "answer.gguf"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[2000] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fetch.is_current(small_models, fetch.get_spec("qwen2.5-coder-1.5b"))  # the documented limit
    _one_line_error(_verify(small_models, "qwen2.5-coder-1.5b"), 3, "sha256", "rag models fetch --force")


def test_ask_with_a_truncated_answer_model_is_one_line(
    small_models: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:

    from rag import wiring

    monkeypatch.setattr(wiring, "open_retriever", lambda s, e=None, index=None: None)  # the index is not the subject
    target = small_models / "answer.gguf"
    target.write_bytes(target.read_bytes()[:1000])
    result = runner.invoke(app, ["--models-dir", str(small_models), "ask", "Wie viele GPUs nutzte DeepSeek?"])
    line = _one_line_error(result, 3, str(target), "rag models fetch --force qwen2.5-coder-1.5b")
    print(f"\nask with truncated GGUF: {line}")


def test_full_disk_while_building_a_model(small_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(ordered: Any, out: Path, progress: bool) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out))

    monkeypatch.setattr(fetch, "_download", lambda parts, downloads, progress: {})
    monkeypatch.setattr(fetch, "_concatenate", full)
    before = (small_models / "answer.gguf").read_bytes()
    result = runner.invoke(app, ["--models-dir", str(small_models), "models", "fetch", "--force", "qwen2.5-coder-1.5b"])
    line = _one_line_error(result, 7, "No space left on device", "MB free", "rag models fetch qwen2.5-coder-1.5b")
    print(f"\nfetch on a full disk: {line}")
    assert (small_models / "answer.gguf").read_bytes() == before
    assert not [p for p in small_models.iterdir() if "partial" in p.name]


def test_storage_error_is_a_rag_error_with_its_own_code() -> None:
    assert issubclass(StorageError, Exception) and StorageError.exit_code == 7 and StorageError.http_status == 507


# ---- corpus files


def test_fifo_named_like_an_article_is_skipped_not_read_forever(tmp_path: Path) -> None:
    from rag.ingest.load import load_documents

    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "a.txt").write_text(A.text)
    docs, skipped = load_documents([tmp_path / "pipe.txt", tmp_path / "a.txt", tmp_path / "gone.txt"])
    assert [d.doc_id for d in docs] == ["a.txt"]
    assert [(p.name, reason) for p, reason in skipped] == [
        ("pipe.txt", "not a regular file"),
        ("gone.txt", "no such file or folder"),
    ]
