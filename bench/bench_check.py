"""What the answerability check costs the first token: the pipeline with and without it, one process.

    .venv/bin/python bench/bench_check.py [--limit 16] [--passes 2] [--gold eval/gold.jsonl]

With the default answer prompts the check is one more user turn ("Is the answer stated in the
passages?"), rolled back for the answer: its own ~20 tokens, not a second prompt. With prompts that
declare a decision word (RAG_ANSWER_PROMPT=answer-decide, `<!-- decision: Ja / Nein -->`) the check is
the reply's own first word: P(Ja) against P(Nein) is read from the logits after the answer prompt, and
the answer then evaluates only the given yes-word, so the check should cost one small evaluation.

Questions: the gold set's standalone questions in gold order, German and English alternating, answerable
and unanswerable alike. Passes alternate check on / check off (on, off, on, off, ...), each over all
questions in the same order, so in both settings each question finds the previous question's prompt in
llama.cpp's cache. The answer cache is off and the threshold 0 (every question is answered, so both
settings generate). Reported: median first token (the model's first generated token) per setting, the
median of per-question differences (on - off, each question's passes averaged), and the check's own
seconds. Writes bench/results/check.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine, table, write_result  # noqa: E402

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.evaluation.gold import GoldItem, load_gold  # noqa: E402


def pick_questions(items: list[GoldItem], limit: int) -> list[GoldItem]:
    """Standalone questions, German and English alternating, in gold order."""
    by_lang: dict[str, list[GoldItem]] = {"de": [], "en": []}
    for item in items:
        if not item.follow_up_of and item.lang in by_lang:
            by_lang[item.lang].append(item)
    mixed = [q for pair in zip(by_lang["de"], by_lang["en"], strict=False) for q in pair]
    return mixed[:limit] if limit else mixed


def alternating_setup(description: str | None) -> tuple[argparse.Namespace, Settings, Any, list[GoldItem]]:
    """The options of a bench that alternates two settings over gold questions, and the pipeline it times: the
    answer cache off and the threshold 0, so every question is checked and answered."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--limit", type=int, default=16, help="questions (0 = all standalone ones)")
    parser.add_argument("--passes", type=int, default=2, help="passes per setting, alternating")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings(answer_cache=0, answerable_thresholds={"de": 0.0, "en": 0.0})
    return args, settings, wiring.answerer(settings), pick_questions(load_gold(args.gold), args.limit)


def main() -> None:
    args, settings, answerer, questions = alternating_setup(__doc__)
    on, off = answerer.settings, replace(answerer.settings, answerable_check=False)
    answerer(questions[-1].question, settings=on)  # warm both contexts' instructions before timing
    answerer(questions[-2].question, settings=on)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {"on": {}, "off": {}}
    for n in range(2 * args.passes):
        name, answer_settings = ("on", on) if n % 2 == 0 else ("off", off)
        for item in questions:
            timings = answerer(item.question, settings=answer_settings).timings
            runs[name].setdefault(item.id, []).append(timings)
        print(f"pass {n + 1}/{2 * args.passes} ({name}) done", file=sys.stderr)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    first = {name: {q: mean([t["first_token"] for t in ts]) for q, ts in by_q.items()} for name, by_q in runs.items()}
    checks = [t["check"] for ts in runs["on"].values() for t in ts if "check" in t]
    diffs = [first["on"][q] - first["off"][q] for q in first["on"]]
    summary: dict[str, Any] = {
        "questions": len(questions),
        "passes_per_setting": args.passes,
        "first_token_on_median_s": statistics.median(first["on"].values()),
        "first_token_off_median_s": statistics.median(first["off"].values()),
        "first_token_cost_median_s": statistics.median(diffs),
        "check_median_s": statistics.median(checks) if checks else None,
    }
    print(table([summary], [(k, k) for k in summary]))
    rows = [{"id": q, "on_s": first["on"][q], "off_s": first["off"][q], "cost_s": first["on"][q] - first["off"][q]}
            for q in first["on"]]  # fmt: skip
    out = write_result("check", {"machine": machine(), "model": settings.answer_model, "summary": summary,
                                 "rows": rows}, args.out)  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
