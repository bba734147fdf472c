"""`rag eval`: score the pipeline against a gold set, and compare two reports."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rag.cli.common import answer_settings, settings_of
from rag.config import PROJECT_ROOT

if TYPE_CHECKING:
    from rag.evaluation.gold import GoldItem

# The project's eval/ folder, whatever the working folder (as for the index and corpus defaults): relative
# to it, `rag eval` run elsewhere found no gold file, or wrote its reports into an eval/ folder of its own.
# An installed package has none beside it: there the working folder's eval/ is meant.
EVAL_DIR = PROJECT_ROOT / "eval" if (PROJECT_ROOT / "eval").is_dir() else Path("eval")
GOLD = EVAL_DIR / "gold.jsonl"
REPORTS = EVAL_DIR / "reports" / "latest"

eval_app = typer.Typer(help="Score the pipeline against a gold question set.")


@eval_app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    gold: Annotated[Path, typer.Option(help="Gold file (JSON lines, format in docs/gold-format.md).")] = GOLD,
    out: Annotated[Path, typer.Option(help="Folder for the reports.")] = REPORTS,
    retrieval_only: Annotated[bool, typer.Option(help="Score retrieval only (no answer model).")] = False,
    modes: Annotated[
        str | None, typer.Option(help="With --retrieval-only: the modes to compare (default dense,keyword,fused).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    ids: Annotated[str | None, typer.Option(help="Only these question ids, comma-separated.")] = None,
    model: Annotated[str | None, typer.Option(help="Answer model.")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, max=20, help="Passages given to the model.")] = None,
    answerable_threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Refuse below this P(answerable); 0 to record P for `rag eval threshold`."),
    ] = None,
    variants: Annotated[
        bool, typer.Option(help="Also ask each question's `variants` and report how often the decision flips.")
    ] = False,
) -> None:
    """Run every gold question and score it; print tables, write reports (JSON, Markdown, PNG) under --out."""
    if ctx.invoked_subcommand is not None:
        return
    from rag import wiring
    from rag.errors import InputError
    from rag.evaluation import reports
    from rag.evaluation import run as evaluate
    from rag.evaluation.gold import load_gold

    if not gold.exists():  # named in full, with the flag: the default is easy to miss in a long --help
        raise InputError(f"gold file not found: {gold.absolute()}; pass one with --gold FILE (docs/gold-format.md)")
    items = load_gold(gold)
    if ids is not None:
        items = _with_ids(items, ids, gold)
    items = items[:limit]
    # A flag the kind of run does not use was ignored: `--modes dense` still answered from fused retrieval.
    unused = (
        {"--variants": variants, "--model": model, "--k": k, "--answerable-threshold": answerable_threshold}
        if retrieval_only
        else {"--modes": modes}
    )
    given = [flag for flag, value in unused.items() if value is not None and value is not False]
    if given:
        kind = "with --retrieval-only" if retrieval_only else "without --retrieval-only (answers use fused retrieval)"
        raise InputError(f"{', '.join(given)}: no effect {kind}; drop {'it' if len(given) == 1 else 'them'}")
    modes = ",".join(evaluate.MODES) if modes is None else modes
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    if [m for m in chosen if m not in evaluate.MODES] or not chosen:
        raise InputError(f"--modes {modes!r}: use one or more of {', '.join(evaluate.MODES)}")
    asked = evaluate.variant_items(items) if variants else []
    if variants and not asked:  # checked before answering: the answers of a long run are not thrown away
        raise InputError(f"--variants: no question in {gold} has a `variants` field")
    thresholds = None if answerable_threshold is None else dict.fromkeys(("de", "en"), answerable_threshold)
    settings = answer_settings(ctx, model, k, None, answerable_thresholds=thresholds)
    _writable_folder(out)
    if retrieval_only:
        retriever = wiring.open_retriever(settings)
        _warn_evidence_nowhere(evaluate.evidence_nowhere(items, retriever.index.chunks))
        retrieval = evaluate.evaluate_retrieval(retriever, items, chosen, progress=True)
        retrieval["gold"] = str(gold)
        typer.echo(evaluate.retrieval_table(retrieval))
        evaluate.write_json(out / "retrieval.json", retrieval)
        typer.echo(f"wrote {out / 'retrieval.json'}")
        return
    answerer = wiring.answerer(settings)
    _warn_evidence_nowhere(evaluate.evidence_nowhere(items, answerer.retriever.index.chunks))
    retrieval = evaluate.evaluate_retrieval(answerer.retriever, items, ["fused"])
    report = evaluate.evaluate_answers(answerer, items, progress=True)
    report.update(gold=str(gold), model=settings.answer_model, retrieval=evaluate.retrieval_table(retrieval))
    report["retrieval_summary"] = retrieval["modes"]["fused"]["summary"]
    variant_rows = []
    if asked and not report["interrupted"]:
        variants_run = evaluate.evaluate_answers(answerer, asked, progress=True)
        variant_rows = report["variant_rows"] = variants_run["rows"]
        report["errors"] += variants_run["errors"]
        report["interrupted"] = variants_run["interrupted"]
    evaluate.write_json(out / "report.json", report)  # the answers are kept even if a summary below fails
    report["decision"] = evaluate.decision_summary(report["rows"], variant_rows, settings)
    typer.echo(reports.summary_table(report["summary"]))
    typer.echo(reports.latency_table(report["latency"]))
    typer.echo(reports.decision_lines(report["decision"]))
    for path in reports.write_reports(out, report):
        typer.echo(f"wrote {path}")
    if report["interrupted"]:
        typer.echo(
            f"interrupted: the reports hold the {len(report['rows'])} of {len(items)} questions answered", err=True
        )
        raise typer.Exit(code=130)  # as a shell reports Ctrl-C: a script must not take the partial run for a full one
    if report["errors"]:  # after the reports: the other answers are kept, and the exit code still says it failed
        first = report["errors"][0]
        raise InputError(
            f"{len(report['errors'])} question(s) not answered, left out of the scores (listed in "
            f"{out / 'report.md'}); {first['id']}: {first['error']}"
        )


def _with_ids(items: list[GoldItem], ids: str, gold: Path) -> list[GoldItem]:
    """The items ``--ids`` names, in file order. An unknown id is an error before any model loads: a typo
    used to run nothing (or quietly less), write an empty report and exit 0."""
    from rag.errors import InputError

    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    if not wanted:
        raise InputError(f"--ids {ids!r}: give question ids, comma-separated, e.g. q001,q017")
    known = {item.id for item in items}
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise InputError(f"--ids: no question with id {', '.join(map(repr, unknown))} in {gold}")
    chosen = [item for item in items if item.id in wanted]
    picked = {item.id for item in chosen}
    # A follow-up is asked with its first question's answer as chat history; alone it was asked without
    # any, and scored as if that were the gold question.
    alone = [f"{i.id} follows up {i.follow_up_of}" for i in chosen if i.follow_up_of and i.follow_up_of not in picked]
    if alone:
        raise InputError(f"--ids: {'; '.join(alone)}; add the first question to --ids too (its answer is the history)")
    return chosen


def _warn_evidence_nowhere(ids: list[str]) -> None:
    """Said before the run: a gold line's evidence that no indexed passage holds scores as a retrieval miss."""
    if ids:
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        typer.echo(
            f"warning: no indexed passage holds the evidence of {shown}: their retrieval and evidence_given count "
            "a miss (check the quotes against the article text, or index the articles)",
            err=True,
        )


def _writable_folder(out: Path) -> None:
    """Create ``--out`` and write a file in it before the first question: a folder that cannot take the
    reports used to be found only after every question was answered, and the whole run was lost."""
    from rag.errors import StorageError

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise StorageError(f"cannot write the reports to --out {out}: {exc.strerror or exc}") from exc


@eval_app.command("threshold")
def eval_threshold(
    ctx: typer.Context,
    report_paths: Annotated[
        list[Path],
        typer.Argument(
            help="report.json (or its folder) of runs with --answerable-threshold 0; the questions of several "
            "runs (tuning sets) are pooled."
        ),
    ],
) -> None:
    """Replay every P(answerable) threshold on reports and print the one that handles most questions right."""
    from rag.errors import InputError
    from rag.evaluation import decision
    from rag.evaluation.reports import load_report

    rows = []
    for report_path in report_paths:
        report = load_report(report_path)
        mine = report["rows"]
        if any(r.get("answerable_p") is None for r in mine if not r["refused"]):
            raise InputError(f"{report_path}: rows without answerable_p; run `rag eval` with the check on")
        # A question the run's own threshold refused stays refused in every replay: below that threshold the
        # sweep is wrong. The note below caught only runs whose thresholds were all over 0.5.
        used = report.get("decision", {}).get("thresholds", {})
        if any(value > 0 for value in used.values()):
            typer.echo(
                f"note: {report_path} was made with thresholds {json.dumps(used)}: below them the sweep is wrong; "
                "make it with `rag eval --answerable-threshold 0`",
                err=True,
            )
        rows += mine
    if not any(r.get("answerable_p") is not None for r in rows):  # no rows, or every one refused by a gate
        raise InputError(
            f"{', '.join(map(str, report_paths))}: no question with a P(answerable) to set a threshold from; "
            "make a report with `rag eval --answerable-threshold 0` (RAG_ANSWERABLE_CHECK on)"
        )
    if not any(r["refused"] is False and r.get("answerable_p", 1) < 0.5 for r in rows):
        typer.echo("note: no answered question has P < 0.5; was the run made with --answerable-threshold 0?", err=True)
    typer.echo(f"AUC {_auc(decision.auc(rows))} over {len(rows)} questions")
    best = decision.choose_thresholds(rows)
    for lang, chosen in best.items():
        mine = [r for r in rows if r["lang"] == lang]
        typer.echo(f"\n{lang}: {len(mine)} questions, AUC {_auc(decision.auc(mine))}")
        typer.echo(f"{'threshold':>9} {'ok':>6} {'correct':>8} {'refusal_ok':>10} {'false_refusal':>13}")
        for o in decision.sweep(mine, steps=20):
            typer.echo(f"{o.threshold:9.2f} {o.ok:6.3f} {o.correct:8.3f} {o.refusal_ok:10.3f} {o.false_refusal:13.3f}")
        typer.echo(
            f"best for {lang}: {chosen.threshold:.2f} (ok {chosen.ok:.3f}, correct {chosen.correct:.3f}, "
            f"refusal_ok {chosen.refusal_ok:.3f}, false_refusal {chosen.false_refusal:.3f})"
        )
    thresholds = {lang: round(o.threshold, 2) for lang, o in best.items()}
    overall = decision.replay(rows, thresholds)
    # The setting needs a threshold for every language: one without questions here keeps the current one
    # (the line printed was refused as a setting when the reports held one language only).
    current = settings_of(ctx).answerable_thresholds
    kept = [lang for lang in current if lang not in thresholds]
    note = f" ({', '.join(kept)}: the current threshold, no question in the reports)" if kept else ""
    typer.echo(
        f"\nRAG_ANSWERABLE_THRESHOLDS='{json.dumps({**current, **thresholds})}': ok {overall.ok:.3f}, "
        f"correct {overall.correct:.3f}, refusal_ok {overall.refusal_ok:.3f}, "
        f"false_refusal {overall.false_refusal:.3f}{note}"
    )


def _auc(value: float | None) -> str:
    """An AUC, or "-" where the questions are all answerable or all unanswerable and it has no value."""
    return "-" if value is None else f"{value:.3f}"


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="Older report.json (or its folder).")],
    b: Annotated[Path, typer.Argument(help="Newer report.json (or its folder).")],
) -> None:
    """Print what changed between two reports: metric deltas and questions that flipped."""
    from rag.evaluation import reports

    typer.echo(reports.compare(reports.load_report(a, summary=True), reports.load_report(b, summary=True)))
