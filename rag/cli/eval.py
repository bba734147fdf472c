"""`rag eval`: score the pipeline against a gold set, and compare two reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import answer_settings

GOLD = Path("eval/gold.jsonl")

eval_app = typer.Typer(help="Score the pipeline against a gold question set.")


@eval_app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    gold: Annotated[Path, typer.Option(help="Gold file (JSON lines, format in docs/gold-format.md).")] = GOLD,
    out: Annotated[Path, typer.Option(help="Folder for the reports.")] = Path("eval/reports/latest"),
    retrieval_only: Annotated[bool, typer.Option(help="Score retrieval only (no answer model).")] = False,
    modes: Annotated[
        str, typer.Option(help="Retrieval modes to compare: dense,keyword,fused.")
    ] = "dense,keyword,fused",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    ids: Annotated[str | None, typer.Option(help="Only these question ids, comma-separated.")] = None,
    model: Annotated[str | None, typer.Option(help="Answer model.")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, max=20, help="Passages given to the model.")] = None,
) -> None:
    """Run every gold question and score it; print tables, write reports (JSON, Markdown, PNG) under --out."""
    if ctx.invoked_subcommand is not None:
        return
    from rag import wiring
    from rag.errors import InputError
    from rag.evaluation import reports
    from rag.evaluation import run as evaluate
    from rag.evaluation.gold import load_gold

    items = load_gold(gold)
    if ids:
        wanted = {i.strip() for i in ids.split(",")}
        items = [i for i in items if i.id in wanted]
    items = items[:limit]
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    if [m for m in chosen if m not in evaluate.MODES] or not chosen:
        raise InputError(f"--modes {modes!r}: use one or more of {', '.join(evaluate.MODES)}")
    settings = answer_settings(ctx, model, k, None)
    if retrieval_only:
        retrieval = evaluate.evaluate_retrieval(wiring.open_retriever(settings), items, chosen, progress=True)
        retrieval["gold"] = str(gold)
        typer.echo(evaluate.retrieval_table(retrieval))
        evaluate.write_json(out / "retrieval.json", retrieval)
        typer.echo(f"wrote {out / 'retrieval.json'}")
        return
    answerer = wiring.answerer(settings)
    retrieval = evaluate.evaluate_retrieval(answerer.retriever, items, ["fused"])
    report = evaluate.evaluate_answers(answerer, items, progress=True)
    report.update(gold=str(gold), model=settings.answer_model, retrieval=evaluate.retrieval_table(retrieval))
    report["retrieval_summary"] = retrieval["modes"]["fused"]["summary"]
    typer.echo(reports.summary_table(report["summary"]))
    typer.echo(reports.latency_table(report["latency"]))
    for path in reports.write_reports(out, report):
        typer.echo(f"wrote {path}")


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="Older report.json (or its folder).")],
    b: Annotated[Path, typer.Argument(help="Newer report.json (or its folder).")],
) -> None:
    """Print what changed between two reports: metric deltas and questions that flipped."""
    from rag.errors import InputError
    from rag.evaluation import reports

    loaded = []
    for path in (a, b):
        file = path / "report.json" if path.is_dir() else path
        try:
            loaded.append(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read report {file}: {exc}") from exc
    typer.echo(reports.compare(loaded[0], loaded[1]))
