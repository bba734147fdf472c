"""Eval reports: report.json, report.md (tables + failed questions) and PNG plots; comparing two reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.durable import atomic_write_text
from rag.evaluation.scoring import RATES

_HEADLINE = (
    "correct",
    "refusal_ok",
    "false_refusal",
    "cites",
    "citation_precision",
    "citation_recall",
    "lang_match",
    "evidence_given",
)
# What `rag eval threshold` and `rag eval compare` read of a report.json: each question's row, the summary.
_ROW_KEYS = ("id", "lang", "answerable", "refused", "correct")
_SUMMARY = ("overall", "by_lang")


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}"


def summary_table(summary: dict[str, Any], measures: tuple[str, ...] = _HEADLINE) -> str:
    """Markdown table: one row per group (all, each language, each type)."""
    head = "| group | n | " + " | ".join(measures) + " |"
    lines = [head, "|" + "---|" * (len(measures) + 2)]
    groups = [("all", summary["overall"])]
    groups += [(f"lang={k}", v) for k, v in summary["by_lang"].items()]
    groups += [(f"type={k}", v) for k, v in summary["by_type"].items()]
    for name, block in groups:
        lines.append(f"| {name} | {block['n']} | " + " | ".join(_fmt(block[m]) for m in measures) + " |")
    return "\n".join(lines)


def latency_table(lat: dict[str, dict[str, float]]) -> str:
    lines = ["| stage | median | p95 | n |", "|---|---|---|---|"]
    for stage, v in lat.items():
        unit = "tok/s" if stage == "tokens_per_second" else "s"
        lines.append(f"| {stage} | {v['median']:.2f} {unit} | {v['p95']:.2f} {unit} | {v['n']} |")
    return "\n".join(lines)


def failures(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        what = []
        if r.get("correct") is False:
            what.append("false refusal" if r.get("false_refusal") else "wrong answer")
        if r.get("refusal_ok") is False:
            what.append("answered an unanswerable question")
        if r.get("lang_match") is False:
            what.append("wrong language")
        if r.get("citation_precision") is not None and r["citation_precision"] < 1:
            what.append(f"citation precision {r['citation_precision']:.2f}")
        if r.get("cites") is False:
            what.append("no citation")
        if what:
            out.append(
                f"- **{r['id']}** ({r['lang']}, {r['type']}) {r['question']}  \n"
                f"  → {r['answer']!r}  \n  *{', '.join(what)}*"
            )
    return out


def write_reports(out: Path, report: dict[str, Any]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "report.md"]
    atomic_write_text(paths[0], json.dumps(report, indent=2, ensure_ascii=False, default=str))
    cut = " (interrupted with Ctrl-C: the scores cover only these)" if report.get("interrupted") else ""
    md = [
        f"# Evaluation report\n\ngold: `{report.get('gold')}`, model: `{report.get('model')}`, "
        f"questions: {len(report['rows'])}{cut}\n",
        "## Answers\n", summary_table(report["summary"]),
        "\n## Latency\n", latency_table(report["latency"]),
    ]  # fmt: skip
    if "decision" in report:
        md += ["\n## Answer or refuse\n", decision_lines(report["decision"])]
    if "retrieval" in report:
        md += ["\n## Retrieval (fused)\n", "```", report["retrieval"], "```"]
    md += ["\n## Failed questions\n", *(failures(report["rows"]) or ["none"])]
    if report.get("errors"):
        md += ["\n## Questions not answered (left out of the scores)\n"]
        md += [f"- **{e['id']}** {e['question'][:80]!r}: {e['error']}" for e in report["errors"]]
    paths[1].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths += _plots(out, report)
    return paths


def _plots(out: Path, report: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, key in zip(axes, ("by_lang", "by_type"), strict=True):
        groups = list(summary[key])
        width = 0.8 / len(_HEADLINE)
        for i, measure in enumerate(_HEADLINE):
            vals = [summary[key][g][measure] or 0.0 for g in groups]
            ax.bar([x + i * width for x in range(len(groups))], vals, width, label=measure)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"metrics {key.replace('_', ' ')}")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    metrics_png = out / "metrics.png"
    fig.savefig(metrics_png, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    stages = ["retrieve", "first_token", "total"]
    data = [[r["timings"][s] for r in report["rows"] if s in r["timings"]] for s in stages]
    ax.boxplot(data, tick_labels=stages)
    ax.set_ylabel("seconds")
    ax.set_title("latency per question")
    fig.tight_layout()
    latency_png = out / "latency.png"
    fig.savefig(latency_png, dpi=110)
    plt.close(fig)
    return [metrics_png, latency_png]


def load_report(path: Path, *, summary: bool = False) -> dict[str, Any]:
    """A report.json, given the file or its folder; InputError when it cannot be read or is no eval report
    (rows of `_ROW_KEYS`; with ``summary``, also the summary `compare` reads)."""
    from rag.errors import InputError

    file = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read report {file}: {exc}") from exc
    # Checked here, not where a key is used: another JSON file (the retrieval.json of --retrieval-only is
    # written to the same folder) ended `rag eval threshold|compare` with a KeyError traceback.
    rows = report.get("rows") if isinstance(report, dict) else None
    rows_ok = isinstance(rows, list) and all(isinstance(r, dict) and set(_ROW_KEYS) <= r.keys() for r in rows)
    blocks = report.get("summary") if rows_ok else None
    summary_ok = not summary or (isinstance(blocks, dict) and all(isinstance(blocks.get(k), dict) for k in _SUMMARY))
    if not (rows_ok and summary_ok):
        needs = f"rows of {', '.join(_ROW_KEYS)}" + (f" and a summary of {', '.join(_SUMMARY)}" if summary else "")
        raise InputError(f"{file} is not a report of `rag eval` ({needs}); `rag eval --retrieval-only` writes none")
    return dict(report)


def decision_lines(decision: dict[str, Any]) -> str:
    """The answer-or-refuse decision in a few lines: threshold, AUC overall and by language, flip rate."""
    if not decision.get("check"):
        return "answerability check: off"
    by_lang = ", ".join(f"{k} {_fmt(v)}" for k, v in decision["auc_by_lang"].items())
    limits = ", ".join(f"{k} {v:.2f}" for k, v in decision["thresholds"].items())
    lines = [f"answerability check: thresholds {limits}; AUC {_fmt(decision['auc'])} ({by_lang})"]
    if decision.get("variants"):
        lines.append(
            f"decision flips on {decision['variants']} reworded questions: {_fmt(decision['flip_rate'])} "
            f"(unchanged {_fmt(1 - decision['flip_rate'])})"
        )
        causes = decision.get("flip_causes")
        if causes and any(causes.values()):
            lines.append(
                f"the flipped refusals came from: P(answerable) under the threshold {causes['check']}, "
                f"a gate before the check {causes['gate']}, the answer's checks or the model {causes['answer']}"
            )
    return "\n".join(lines)


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Metric deltas (B - A) overall and by language, and the questions whose correctness flipped."""
    lines = [f"{'measure':22} {'A':>6} {'B':>6} {'delta':>7}"]
    for group, name in [("overall", "all"), *((f"by_lang.{k}", f"lang={k}") for k in b["summary"]["by_lang"])]:
        ga, gb = _get(a["summary"], group), _get(b["summary"], group)
        if ga is None or gb is None:
            continue
        for m in RATES:
            va, vb = ga.get(m), gb.get(m)
            if va is None or vb is None:
                continue
            lines.append(f"{name + ' ' + m:22.22} {va:6.3f} {vb:6.3f} {vb - va:+7.3f}")
    rows_a = {r["id"]: r for r in a["rows"]}
    ids_b = {r["id"] for r in b["rows"]}
    only_a, only_b = len(rows_a.keys() - ids_b), len(ids_b - rows_a.keys())
    if only_a or only_b:  # a --limit run against a full one: the deltas were printed as if they compared alike
        lines.insert(0, f"note: {only_a} question(s) only in A, {only_b} only in B: the rates are over different sets")
    flipped = []
    for r in b["rows"]:
        old = rows_a.get(r["id"])
        for m in ("correct", "refusal_ok"):
            if old is not None and old.get(m) is not None and old.get(m) != r.get(m):
                flipped.append(f"  {r['id']} {m}: {old[m]} -> {r.get(m)}  ({r.get('question', '')[:60]})")
    return "\n".join([*lines, "questions that flipped:", *(flipped or ["  none"])])


def _get(summary: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    node: Any = summary
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
