"""Checks for what cannot be run here: the Dockerfile (no Docker engine), CI script and Makefile."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
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


# ----------------------------------------------------------------------------- the image's runtime stage

DEV_PACKAGES = {"pytest", "httpx", "selenium", "ruff", "mypy", "deptry", "hypothesis", "schemathesis", "pyyaml"}
BUILD_TOOLS = {"build-essential", "cmake", "git", "gcc", "g++", "make", "clang"}


def _stages() -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return ["FROM " + part for part in re.split(r"^FROM ", joined, flags=re.MULTILINE)[1:]]


def test_dev_packages_list_is_the_dev_extra() -> None:
    import tomllib

    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=\[ ;]", req, maxsplit=1)[0].lower() for req in dev}
    assert names - {"starlette-context"} == DEV_PACKAGES


def test_the_runtime_stage_has_no_dev_tools() -> None:
    build, runtime = _stages()[0], _stages()[-1]
    # The venv the runtime stage copies was installed without the dev extra ...
    assert re.search(r"make install\b[^&;]*\bEXTRAS=(\s|$)", build), "the image's `make install` keeps EXTRAS=[dev]"
    assert re.search(r"^\t.*pip install .*-e '\.\$\(EXTRAS\)'", MAKEFILE, re.MULTILINE)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    # ... and the runtime stage installs no compiler and no dev package of its own.
    apt = " ".join(re.findall(r"apt-get install ([^&]*)", runtime)).split()
    assert not BUILD_TOOLS & set(apt), f"runtime stage installs build tools: {BUILD_TOOLS & set(apt)}"
    for line in re.findall(r"pip install ([^&]*)", runtime):
        assert "[dev]" not in line and not DEV_PACKAGES & set(line.lower().split()), line


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv/", "index/", ".git/", "*.gguf"} <= ignored


# ----------------------------------------------------------------------------- compose.yaml

COMPOSE_FILE = ROOT / "compose.yaml"


def _compose() -> dict:
    import yaml

    return yaml.safe_load(COMPOSE_FILE.read_text())


def _rag_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_compose_commands_are_rag_commands_with_existing_options() -> None:
    import typer.main

    click_app = typer.main.get_command(app)
    services = _rag_services(_compose())
    assert {"models", "index", "rag1", "rag2"} <= set(services)
    for name, service in services.items():
        words = [w for w in service["command"] if not w.startswith("-")]
        group, used = click_app, []
        while hasattr(group, "commands") and words and words[0] in group.commands:
            used.append(words.pop(0))
            group = group.commands[used[-1]]
        assert used and not hasattr(group, "commands"), f"{name}: `rag {' '.join(service['command'])}` is no command"
        options = {opt for param in group.params for opt in getattr(param, "opts", [])}
        for flag in (w for w in service["command"] if w.startswith("--")):
            assert flag in options, f"{name}: `rag {' '.join(used)}` has no option {flag}"
        if used == ["models", "fetch"]:
            from rag.models import fetch

            assert set(words) <= set(fetch.MODELS), f"{name}: unknown models {set(words) - set(fetch.MODELS)}"


def test_compose_settings_exist_and_agree_with_the_llm_server() -> None:
    from rag.config import Settings
    from rag.models import fetch

    compose = _compose()
    llm = compose["services"]["llm"]["command"]
    for name, service in _rag_services(compose).items():
        env = service["environment"]
        for variable in env:
            assert variable.startswith("RAG_") and variable[4:].lower() in Settings.model_fields, (name, variable)
        # The replicas reach the llm service by name and port, with the key and the alias it serves.
        assert env["RAG_LLM_URL"] == f"http://llm:{_flag(llm, '--port')}/v1"
        assert env["RAG_LLM_MODEL"] == _flag(llm, "--alias")
        assert env["RAG_LLM_API_KEY"].startswith("${RAG_LLM_API_KEY") and _flag(llm, "--api-key").startswith(
            "${RAG_LLM_API_KEY"
        )
        mounts = dict(reversed(v.split(":")[:2]) for v in service["volumes"])
        for variable in ("RAG_MODELS_DIR", "RAG_INDEX_DIR", "RAG_CORPUS_DIR"):
            assert env[variable] in mounts, f"{name}: {variable}={env[variable]} is not a mounted volume"
    model_file = _flag(llm, "--model")
    assert model_file.startswith("/models/") and "models:/models:ro" in compose["services"]["llm"]["volumes"]
    assert model_file.removeprefix("/models/") in {spec.target for spec in fetch.MODELS.values()}


def test_compose_replicas_share_the_index_and_name_only_existing_things() -> None:
    compose = _compose()
    services = compose["services"]
    rag1, rag2 = services["rag1"], services["rag2"]
    assert rag1["volumes"] == rag2["volumes"] and "index:/app/index" in rag1["volumes"]
    assert rag1["environment"]["RAG_INDEX_POLL_S"] and float(rag1["environment"]["RAG_INDEX_POLL_S"]) > 0
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared, f"{name} mounts an undeclared volume {volume}"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on a missing service {dependency}"
        if "build" in service:
            assert (ROOT / service["build"]["context"] / "Dockerfile").is_file()
            for arg in service["build"].get("args", {}):
                assert re.search(rf"^ARG {arg}\b", DOCKERFILE, re.MULTILINE), f"Dockerfile has no ARG {arg}"
        for port in service.get("ports", []):
            assert port.rsplit(":", 1)[1] == _flag(service["command"], "--port"), (name, port)
    # The image has the folders the volumes are mounted on, owned by the user that writes them.
    assert "/app/index" in DOCKERFILE and "COPY --chown=rag:rag corpus/ /app/corpus/" in DOCKERFILE


def test_compose_variables_are_in_the_env_example() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    example = (ROOT / ".env.example").read_text()
    assert used and all(re.search(rf"^{v}=", example, re.MULTILINE) for v in used), used


# ----------------------------------------------------------------------------- README and version


def test_readme_stays_short() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size < 10_000, f"README.md has {size} bytes; move detail to docs/ (deploy: docs/deploy.md)"


def test_readme_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#:]+)\)", (ROOT / "README.md").read_text()):
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def test_version_is_the_package_version() -> None:
    import tomllib

    from rag import __version__

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == __version__
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rag {__version__}"


def test_readme_lists_every_module() -> None:
    """The architecture list in reading order names each module (STYLE: a reader finds any step in one look)."""
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "rag").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        name = f"routes/{path.name}" if path.parent.name == "routes" else path.name
        assert f" {name} " in readme, f"README.md's module list lacks rag/{path.relative_to(ROOT / 'rag')}"


def _torch_check(tmp_path: Path, pip_script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`make torch-check` with a stand-in pip that prints ``pip_script``'s output (the real Python reads it)."""
    if not (tmp_path / "python").exists():
        (tmp_path / "python").symlink_to(sys.executable)
    (tmp_path / "pip").write_text(f"#!/bin/sh\n{pip_script}\n")
    (tmp_path / "pip").chmod(0o755)
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), "torch-check", f"BIN={tmp_path}", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_make_stops_before_pip_installs_torchs_cuda_build(tmp_path: Path) -> None:
    plan = {"install": [{"metadata": {"name": "torch"}}, {"metadata": {"name": "nvidia-cudnn-cu12"}}]}
    echo = f"echo {shlex.quote(json.dumps(plan))}"
    stopped = _torch_check(tmp_path, echo)
    assert stopped.returncode != 0
    assert "CUDA build" in stopped.stderr
    assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in stopped.stderr
    assert _torch_check(tmp_path, echo, "TORCH_CHECK=0").returncode == 0  # the CUDA build, asked for


def test_make_goes_on_when_pip_plans_torchs_cpu_build(tmp_path: Path) -> None:
    plan = {"install": [{"metadata": {"name": "torch"}}, {"metadata": {"name": "sympy"}}]}
    assert _torch_check(tmp_path, f"echo {shlex.quote(json.dumps(plan))}").returncode == 0


def test_make_says_so_when_pip_cannot_plan_the_torch_install(tmp_path: Path) -> None:
    failed = _torch_check(tmp_path, "echo 'ERROR: no route to the index' >&2; exit 1")
    assert failed.returncode != 0
    assert "no route to the index" in failed.stderr and "could not plan the torch install" in failed.stderr
