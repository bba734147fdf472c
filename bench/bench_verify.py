"""Would a second Yes/No check *after* the answer catch wrong answers? Replayed on stored `rag eval` reports.

    .venv/bin/python bench/bench_verify.py OUT.jsonl REPORT_DIR... [--tuned REPORT_DIR]

For every answered (not refused) question in each report, the answer prompt is rebuilt from the
report's own passages, the model's answer is appended as its turn, and the answer model is asked
one more user turn, reading P(Yes) from the first token's logits as the answerability check does:
"all": is every statement in your answer stated in the passages; "all_q": does it answer the question
as asked and is every statement stated; "sent_min": per answer sentence, is it stated in its cited
passage(s) with the same names and numbers (the lowest P over the sentences). Printed: the AUC of
each score (and of the answerability check's own P) for good answers (answerable and correct)
against bad ones (wrong, or an answer to an unanswerable question), by language, separately for the
tuned report (``--tuned``) and the held-out ones. Writes one JSON line per answer to OUT.jsonl.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import auc, report_passages  # noqa: E402

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.ground.citations import split_answer_sentences  # noqa: E402

CHECKS = {
    "all": "Is every statement in your answer stated in the passages? Reply Yes or No.",
    "all_q": "Does your answer answer the question exactly as asked, and is every statement in it stated in the "
    "passages? Reply Yes or No.",
}
SENTENCE = 'Is this sentence stated in passage {n}, with the same names and numbers? Sentence: "{s}" Reply Yes or No.'
SCORES = ("answerable_p", *CHECKS, "sent_min")


def score(row: dict[str, Any], generator: Any, templates: Any) -> dict[str, Any]:
    messages = templates.for_language(row["lang"]).render(passages=report_passages(row), question=row["question"])
    answered = [*messages, {"role": "assistant", "content": row["answer"]}]
    out = {k: row[k] for k in ("id", "lang", "answerable", "correct", "answerable_p")}
    for name, question in CHECKS.items():
        out[name] = generator.yes_probability([*answered, {"role": "user", "content": question}])
    sentences = []
    for a, b in split_answer_sentences(row["answer"]):
        sentence = row["answer"][a:b].strip()
        numbers = list(dict.fromkeys(re.findall(r"\[(\d+)\]", sentence)))
        claim = re.sub(r"\s*\[\d+\]", "", sentence).strip()
        if numbers and claim:
            ask = SENTENCE.format(n=" and ".join(numbers), s=claim)
            sentences.append(generator.yes_probability([*answered, {"role": "user", "content": ask}]))
    out["sent_min"] = min(sentences) if sentences else None
    return out


def summary(rows: list[dict[str, Any]], label: str) -> None:
    for key in SCORES:
        cells = []
        for lang in ("de", "en", None):
            sub = [r for r in rows if (lang is None or r["lang"] == lang) and r[key] is not None]
            good = [r[key] for r in sub if r["answerable"] and r["correct"]]
            bad = [r[key] for r in sub if not (r["answerable"] and r["correct"])]
            value = auc(good, bad)
            cells.append(f"{lang or 'all'} {'-' if value is None else f'{value:.3f}'} ({len(good)}/{len(bad)})")
        print(f"{label:8} {key:13} " + "  ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("reports", type=Path, nargs="+", help="held-out `rag eval` report folders")
    parser.add_argument("--tuned", type=Path, help="the report of the set the thresholds were tuned on")
    args = parser.parse_args()
    settings = Settings()
    generator, templates = wiring.generator(settings), wiring.templates(settings)
    results: dict[str, list[dict[str, Any]]] = {"tuned": [], "held out": []}
    with args.out.open("w", encoding="utf-8") as out:
        for group, folders in (("tuned", [args.tuned] if args.tuned else []), ("held out", args.reports)):
            for folder in folders:
                for row in json.loads((folder / "report.json").read_text(encoding="utf-8"))["rows"]:
                    if row["refused"] or row.get("variant_of"):
                        continue
                    scored = {"report": str(folder), **score(row, generator, templates)}
                    results[group].append(scored)
                    out.write(json.dumps(scored) + "\n")
                    print(json.dumps(scored), flush=True)
    print("AUC, good answers against bad ones (good/bad counts):")
    for group, rows in results.items():
        if rows:
            summary(rows, group)


if __name__ == "__main__":
    main()
