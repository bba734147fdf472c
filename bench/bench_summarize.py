"""Summary speed: time to the first token and in total for each indexed article, with the real models.

    .venv/bin/python bench/bench_summarize.py [--docs ID ...] [--repeat 1] [--lang de|en] [--part-tokens N]

Loads what `rag summarize DOC` loads (the index, the answer model, the token counter; no embedding
model) once, then summarises every document of the index (or ``--docs``) ``--repeat`` times, one
after the other, with the default settings. Per document: its size, passages and parts, the
model's first generated token of the final summary (``first_token``), the first checked sentence
shown (``first_shown``), the total, tokens generated, decode speed of the final pass, citations and
left-out sentences; then the medians over all runs. ``--part-tokens`` caps the passages per prompt
to force the map/reduce path. The machine may be shared: the load average at the start is recorded.
Writes bench/results/summarize.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine, table, write_result  # noqa: E402

from rag import wiring  # noqa: E402
from rag.answer.summarize import SummarySettings, SummaryTemplates, summarize_document  # noqa: E402
from rag.config import load_settings  # noqa: E402

COLUMNS = [
    ("doc_id", "document"),
    ("chars", "chars"),
    ("passages", "passages"),
    ("parts", "parts"),
    ("first_token_s", "first token s"),
    ("first_shown_s", "first shown s"),
    ("total_s", "total s"),
    ("completion_tokens", "tokens"),
    ("tokens_per_second", "tok/s"),
    ("citations", "citations"),
    ("left_out", "left out"),
]


def run_one(doc_id: str, **kw: Any) -> dict[str, Any]:
    started = time.perf_counter()
    summary = summarize_document(doc_id, **kw)
    wall = time.perf_counter() - started
    a = summary.answer
    index = kw["index"]
    return {
        "doc_id": doc_id,
        "chars": len(index.documents[doc_id].text),
        "passages": len(a.passages),
        "parts": len(summary.parts),
        "first_token_s": round(a.timings.get("first_token", wall), 2),
        "first_shown_s": round(a.timings.get("first_shown", wall), 2),
        "total_s": round(wall, 2),
        "completion_tokens": a.completion_tokens,
        "tokens_per_second": round(a.tokens_per_second, 1),
        "citations": len(a.citations),
        "left_out": len(a.unsupported),
        "refused": a.refused,
        "truncated": a.truncated,
        "text": a.text,
        "parts_text": [p.text for p in summary.parts],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", nargs="*", help="document ids (default: every indexed document)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per document")
    parser.add_argument("--lang", choices=("de", "en"), help="summary language (default: the document's)")
    parser.add_argument("--part-tokens", type=int, help="cap on passages per prompt (forces parts)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "summarize.json")
    args = parser.parse_args()

    settings = load_settings()
    start = machine()
    t = time.perf_counter()
    index, generator = wiring.open_index(settings), wiring.generator(settings)
    count, templates = wiring.token_counter(settings), SummaryTemplates.load(settings.prompts_dir)
    load_s = time.perf_counter() - t
    summary_settings = SummarySettings.from_settings(settings)
    if args.part_tokens:
        summary_settings = replace(summary_settings, part_tokens=args.part_tokens)
    docs = args.docs or sorted(index.documents)
    print(f"loaded in {load_s:.1f} s; {len(docs)} documents x {args.repeat}, model {settings.answer_model}, "
          f"load average {start['loadavg_at_start']}", file=sys.stderr)  # fmt: skip
    rows = []
    for _ in range(args.repeat):
        for doc_id in docs:
            row = run_one(
                doc_id, index=index, generator=generator, templates=templates, count_tokens=count,
                settings=summary_settings, lang=args.lang,
            )  # fmt: skip
            rows.append(row)
            print(f"{doc_id}: {row['total_s']} s, {row['parts']} parts: {row['text']}", file=sys.stderr)
    medians: dict[str, Any] = {"doc_id": "median"}
    for key, _ in COLUMNS[1:]:
        medians[key] = round(statistics.median(r[key] for r in rows), 2)
    print(table([*rows, medians], COLUMNS))
    end_load = [round(x, 2) for x in os.getloadavg()]
    print(f"(load average at start {start['loadavg_at_start']}, at end {end_load}: shared machine, noisy figures)")
    out = write_result(
        "summarize",
        {
            "machine": start,
            "model": settings.answer_model,
            "n_ctx": settings.n_ctx,
            "max_tokens": settings.max_tokens,
            "part_tokens": args.part_tokens,
            "lang": args.lang,
            "load_s": round(load_s, 2),
            "rows": rows,
            "median": medians,
        },
        args.out,
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
