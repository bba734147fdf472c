"""What every `rag` subcommand shares: the settings the root command built, and per-command overrides."""

from __future__ import annotations

from typing import Any, get_args

import typer

from rag.config import AnswerModel, Settings, load_settings
from rag.errors import InputError
from rag.language import LANGUAGES


def settings_of(ctx: typer.Context) -> Settings:
    """The `Settings` built by the root command's callback (environment plus global flags)."""
    root = ctx.find_root()
    settings = root.obj
    if not isinstance(settings, Settings):  # only when a subcommand is invoked without the root group
        raise InputError("no settings: run this through the `rag` command")
    return settings


def flags_of(ctx: typer.Context) -> dict[str, Any]:
    """The global flags the user gave (field name -> value), for `rag config show`."""
    return dict(ctx.find_root().meta.get("rag.flags", {}))


def answer_settings(
    ctx: typer.Context, model: str | None, k: int | None, lang: str | None, **extra: object
) -> Settings:
    """The root settings with the answer options of `ask`, `chat` and `eval` applied and checked.

    ``extra`` are further `Settings` fields a command's flags set (None: not given).
    """
    settings = settings_of(ctx)
    if lang is not None and lang not in LANGUAGES:
        raise InputError(f"--lang {lang!r}: use one of {', '.join(LANGUAGES)}")
    update: dict[str, object] = {name: value for name, value in extra.items() if value is not None}
    if model is not None:
        answer_models = get_args(AnswerModel)  # a typo is an input error (2), and the embedding model is none
        if model not in answer_models:
            raise InputError(f"--model {model!r}: use one of {', '.join(answer_models)}")
        update["answer_model"] = model
    if k is not None:
        update["max_passages"] = k
    return load_settings(**{**settings.model_dump(), **update}) if update else settings
