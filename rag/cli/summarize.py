"""`rag summarize DOC` and `rag summarize --topic TEXT`: a cited summary, streamed as it is checked."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rag.cli.common import answer_settings
from rag.errors import InputError


def summarize_cmd(
    ctx: typer.Context,
    doc: Annotated[str | None, typer.Argument(help="Document id: its file name (`rag index --stats`).")] = None,
    topic: Annotated[str | None, typer.Option(help="Summarise what the articles say about this instead.")] = None,
    lang: Annotated[str | None, typer.Option(help="Summary language (de|en); default: the text's.")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=20, help="With --topic: passages searched.")] = None,
    model: Annotated[str | None, typer.Option(help="Answer model, e.g. qwen2.5-coder-0.5b.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary object as JSON.")] = False,
) -> None:
    """Summarise an article (or a topic across the articles) in a few cited sentences, streaming.

    A long article is summarised in parts first (shown on stderr), then the parts together.
    """
    from dataclasses import replace

    from rag import wiring
    from rag.answer.summarize import (
        Part,
        SummarySettings,
        SummaryTemplates,
        checked_topic,
        require_document,
        summarize_document,
        summarize_topic,
    )
    from rag.cli.main import _emit, _show

    if (doc is None) == (topic is None):
        raise InputError("give a document id or --topic TEXT (one of them); `rag index --stats` lists the ids")
    if doc is not None and k is not None:  # it was ignored: an article's summary reads all of its passages
        raise InputError("--k: only with --topic (a document's summary reads all its passages); drop it")
    if topic is not None:
        topic = checked_topic(topic)  # before any model loads
    settings = answer_settings(ctx, model, None, lang)
    summary_settings = SummarySettings.from_settings(settings)
    if k is not None:
        summary_settings = replace(summary_settings, topic_passages=k)
    templates = SummaryTemplates.load(settings.prompts_dir)

    def part_done(part: Part) -> None:
        typer.echo(f"  part {part.number}/{part.of} (passages {part.first}-{part.last}): {part.text}", err=True)

    count = wiring.token_counter(settings)
    on_token, on_part = (None, None) if as_json else (_emit, part_done)
    if doc is not None:
        # The document and its passages are in the index: no embedding model to load, and an unknown
        # id is refused before the answer model loads.
        index = wiring.open_index(settings)
        require_document(index, doc)
        summary = summarize_document(
            doc, index=index, generator=wiring.generator(settings), templates=templates, count_tokens=count,
            settings=summary_settings, lang=lang, on_token=on_token, on_part=on_part,
        )  # fmt: skip
    else:
        summary = summarize_topic(
            topic or "", retriever=wiring.open_retriever(settings), generator=wiring.generator(settings),
            templates=templates, count_tokens=count, settings=summary_settings, lang=lang, on_token=on_token,
            on_part=on_part,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    if summary.left_out:  # said before the summary's sources, not lost in the part lines above
        typer.echo(
            f"  {len(summary.left_out)} sentence(s) of the part summaries did not fit the final prompt and are not in "
            "the summary (--json lists them as left_out; a larger RAG_N_CTX or smaller RAG_MAX_TOKENS keeps them)",
            err=True,
        )
    _show(summary.answer)
