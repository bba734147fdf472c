"""`rag config`: the settings in effect and where each came from; the generated reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import flags_of, settings_of
from rag.config import SECRETS, reference_markdown, setting_sources

config_app = typer.Typer(help="Show the settings in effect; write the configuration reference.", no_args_is_help=True)


@config_app.command("show")
def config_show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False
) -> None:
    """Every setting's effective value and its source: a flag, its RAG_* variable, or the default."""
    settings = settings_of(ctx)
    sources = setting_sources(flags_of(ctx))
    values = settings.model_dump(mode="json")
    values["models_dir"] = str(settings.models_path)  # the folder used: unset means `cache_dir/models`, not none
    for name in SECRETS:
        if values.get(name):
            values[name] = "***"  # printed settings end up in logs and bug reports
    if as_json:
        rows = {name: {"value": values[name], "source": sources[name]} for name in values}
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max(map(len, values))
    for name, value in values.items():
        typer.echo(f"{name:{width}}  {json.dumps(value, ensure_ascii=False):40}  ({sources[name]})")


@config_app.command("docs")
def config_docs(
    out: Annotated[Path | None, typer.Option(help="Write the Markdown here instead of printing it.")] = None,
) -> None:
    """The configuration reference in Markdown, generated from the settings (docs/configuration.md)."""
    from rag.durable import atomic_write_text
    from rag.errors import StorageError

    text = reference_markdown()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:  # atomic: a killed run leaves the old reference whole
        atomic_write_text(out, text)
    except OSError as exc:  # exit 7 by kind, naming the flag (was the catch-all exit 74)
        raise StorageError(f"cannot write --out {out}: {exc.strerror or exc}") from exc
    typer.echo(f"wrote {out}")
