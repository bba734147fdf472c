"""What a bare machine gets from the README's test command is all the tests may use.

`make test` builds the models with `rag models fetch` (no names: `fetch.default_names()`). A test that
asks for another catalogue model passes only where that file happens to be cached, as
`tests/test_local_only.py` did with the optional SmolLM2 model until a fresh clone failed on it (issue 16).
`make ci-fresh` reproduces a bare machine: a fresh clone of HEAD, empty model, pip and wheel caches.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from rag.models import fetch

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()


def _strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def models_named_in_tests() -> dict[str, set[str]]:
    """Catalogue model -> the test files whose string literals name it (by name or by file name)."""
    named: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests").glob("*.py")):
        text = "\n".join(_strings(path)).lower()
        for name, spec in fetch.MODELS.items():
            if name.lower() in text or spec.target.lower() in text:
                named.setdefault(name, set()).add(path.name)
    return named


def test_tests_ask_only_for_models_the_readme_commands_fetch() -> None:
    fetched = set(fetch.default_names())
    outside = {name: files for name, files in models_named_in_tests().items() if name not in fetched}
    assert not outside, (
        f"tests ask for models `rag models fetch` does not build on a fresh machine: {outside}; "
        f"use one of {sorted(fetched)}"
    )


def test_the_scan_sees_a_model_named_in_a_test(tmp_path: Path) -> None:
    optional = sorted(set(fetch.MODELS) - set(fetch.default_names()))
    assert optional, "every catalogue model is fetched by default; nothing to guard against"
    probe = tmp_path / "probe.py"
    probe.write_text(f'Settings(answer_model="{optional[0]}")\n# {fetch.default_names()[0]} in a comment is no use\n')
    assert _strings(probe) == {optional[0]}


def test_make_test_fetches_the_default_models() -> None:
    """`make test` -> `make index` -> `make models` -> `rag models fetch` without names (the default set)."""
    recipe = re.search(r"^models:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE)
    assert recipe and re.search(r"\$\(RAG\) models fetch\s*$", recipe.group(1), re.MULTILINE), recipe
    assert re.search(r"^test: .*\bindex\b", MAKEFILE, re.MULTILINE)
    assert re.search(r"^index: .*\bmodels\b", MAKEFILE, re.MULTILINE)


def test_ci_fresh_runs_the_test_command_in_a_clone_with_empty_caches() -> None:
    recipe = re.search(r"^ci-fresh:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE)
    assert recipe, "the Makefile has no ci-fresh target"
    body = recipe.group(1)
    assert "git clone" in body and "make test" in body
    for variable in ("RAG_CACHE_DIR", "XDG_CACHE_HOME", "PIP_CACHE_DIR"):
        assert f"{variable}=" in body, f"ci-fresh leaves {variable} pointing at this machine's cache"
    # The compiled llama-cpp-python wheel lives under the cache root ci-fresh replaces, so it is rebuilt.
    assert re.search(r"^WHEELS\s*:?=\s*\$\(CACHE\)/wheels/", MAKEFILE, re.MULTILINE)
    assert re.search(r"^CACHE\s*:?=.*RAG_CACHE_DIR", MAKEFILE, re.MULTILINE)
