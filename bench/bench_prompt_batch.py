"""What reading prompts in batches costs the first token, and how soon a client that left can stop the model.

    .venv/bin/python bench/bench_prompt_batch.py [--limit 16] [--passes 2] [--gold eval/gold.jsonl]

The answer model reads each prompt in batches of `PROMPT_BATCH` tokens (128) and calls the pipeline's
``on_token("")`` before each, so a client that left stops the work there (`rag/models/generate.py`).
Before, the whole prompt was read in one call (llama.cpp's `eval` loops over batches of 512 tokens without a
callback); the "512" passes stand for that with prompts under 512 tokens, as answers' prompts are (~400).
Passes alternate 512 / 128 over the same questions (as `bench_check.py` does on / off), the answer cache
off and the threshold 0 (every question is checked and answered). Reported per setting: the median first
token, the median of per-question differences, and the longest wait between two ``on_token`` calls before
the first token (the most a client that left waits for the model to stop, medians and max over questions).
Writes bench/results/prompt_batch.json.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine, table, write_result  # noqa: E402
from bench_check import alternating_setup  # noqa: E402

from rag.models import generate  # noqa: E402

SETTINGS = {"512": 512, "128": generate.PROMPT_BATCH}


def timed(answerer: Any, question: str) -> tuple[float, float] | None:
    """The answer's first token, and the longest wait before it between two ``on_token`` calls, the start and the
    first token; None for a question refused before the model reads anything (no passage about it, a gate)."""
    calls = [time.perf_counter()]
    answer = answerer(question, on_token=lambda piece: calls.append(time.perf_counter()))
    first = answer.timings.get("first_token")
    if first is None or ("check" not in answer.timings and answer.refused):
        return None
    points = [t for t in calls if t - calls[0] < first] + [calls[0] + first]
    return first, max(b - a for a, b in itertools.pairwise(points))


def main() -> None:
    args, settings, answerer, questions = alternating_setup(__doc__)
    answerer(questions[-1].question)  # warm both contexts' instructions before timing
    answerer(questions[-2].question)
    first: dict[str, dict[str, list[float]]] = {name: {} for name in SETTINGS}
    gaps: dict[str, dict[str, list[float]]] = {name: {} for name in SETTINGS}
    for n in range(len(SETTINGS) * args.passes):
        name = list(SETTINGS)[n % len(SETTINGS)]
        generate.PROMPT_BATCH = SETTINGS[name]
        for item in questions:
            if (measured := timed(answerer, item.question)) is not None:
                first[name].setdefault(item.id, []).append(measured[0])
                gaps[name].setdefault(item.id, []).append(measured[1])
        print(f"pass {n + 1}/{len(SETTINGS) * args.passes} (batch {name}) done", file=sys.stderr)
    generate.PROMPT_BATCH = SETTINGS["128"]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    rows: list[dict[str, Any]] = []
    for name in SETTINGS:
        per_q = {q: mean(v) for q, v in first[name].items()}
        longest = [max(v) for v in gaps[name].values()]
        rows.append({
            "batch": name,
            "first_token_median_s": statistics.median(per_q.values()),
            "minus_512_median_s": statistics.median(per_q[q] - mean(first["512"][q]) for q in per_q),
            "longest_wait_median_s": statistics.median(longest),
            "longest_wait_max_s": max(longest),
        })  # fmt: skip
    print(table(rows, [(k, k) for k in rows[0]]))
    payload = {"machine": machine(), "model": settings.answer_model, "questions": len(questions), "rows": rows}
    out = write_result("prompt_batch", {**payload, "passes": args.passes}, args.out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
