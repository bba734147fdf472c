"""Checks for what cannot be run here: the Dockerfile (no Docker engine), CI script and Makefile."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from fakes import cli_commands
from typer.testing import CliRunner

from rag.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, re.MULTILINE))


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


def test_every_file_the_dockerfile_copies_exists() -> None:
    copies = [c for c in _instructions("COPY") if "--from=" not in c]
    assert copies
    for instruction in copies:
        sources = [w for w in shlex.split(instruction) if not w.startswith("--")][:-1]
        for src in sources:
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repo"


def test_dockerfile_uses_the_makefile_install_and_existing_commands() -> None:
    runs = " ".join(_instructions("RUN"))
    for target in re.findall(r"(?:^|&&\s*|;\s*)make ([a-z-]+)", " ; ".join(_instructions("RUN"))):
        assert target in MAKE_TARGETS, f"Dockerfile runs `make {target}`, which the Makefile lacks"
    assert "make install" in runs
    rag_calls = re.findall(r"/opt/venv/bin/rag (?:--[a-z-]+ \S+ )*([a-z]+(?: [a-z]+)?)", runs)
    entry = " ".join(shlex.split(_instructions("CMD")[0].strip("[]").replace(",", " ")))
    for call in [*rag_calls, entry.split()[0]]:
        words = tuple(call.split())
        assert any(words[: len(c)] == c for c in cli_commands(app)), f"Dockerfile calls `rag {call}`, not a CLI command"
    assert "USER rag" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE
    assert DOCKERFILE.count("FROM ") >= 2  # multi-stage


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make run" in readme
    assert {"install", "models", "index", "run", "test", "lint"} <= MAKE_TARGETS


def test_serve_command_exists_for_the_image_entry_point() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


def test_python_dash_m_rag_is_the_rag_command() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rag", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ask" in result.stdout and "eval" in result.stdout and "config" in result.stdout
