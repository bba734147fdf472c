"""Other wordings of the answerability check, replayed on a stored `rag eval` report.

    .venv/bin/python bench/bench_check_wordings.py REPORT_DIR OUT.jsonl

For every question of the report (variants left out) the answer prompt is rebuilt from the report's
own passages (with their article headers) and each wording is asked as one more user turn; P(Yes)
against P(No) (P(Ja) against P(Nein) for the German wording) is read from the first token's logits as
the pipeline's check does. Two more scores keep the kept wording and change its surroundings:
``en_instructions`` asks it under the English answer prompt for German questions too, and
``calibrated`` subtracts the log-odds the same check gives with no passages at all (the question's own
pull towards "Yes", contextual calibration). ``REPLY_WORDINGS`` begin the model's reply instead of asking
in a turn of their own. Prints the AUC of answerable against unanswerable
questions per language for each score and for the report's own P(answerable). Tune on the tuning
sets' reports only; docs/experiments.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import auc, report_passages  # noqa: E402

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402

WORDINGS = {
    "kept": ("en", "Is the answer to the question stated in the passages? Reply Yes or No."),
    "german": ("de", "Steht die Antwort auf die Frage in den Textstellen? Antworte mit Ja oder Nein."),
    "detail": (
        "en",
        "Does a passage state exactly the fact the question asks for (the very number, name, date or place "
        "asked about), not only facts on the same topic? Reply Yes or No.",
    ),
    "quote": ("en", "Could you answer the question by quoting one sentence of the passages? Reply Yes or No."),
}
# Wordings that begin the model's own reply instead of asking in a user turn (the generator writes them after
# the answer prompt's opened assistant turn): their few tokens are all the check adds to the answer's prompt.
REPLY_WORDINGS = {
    "stated_reply": ("en", "Stated (Yes/No):"),
    "short_reply": ("en", "Stated in the passages (Yes/No):"),
    "given_reply": ("en", "Answer given (Yes/No):"),
}
EMPTY = {"de": "(keine)", "en": "(none)"}  # the passages of the calibration prompt
SCORES = (*WORDINGS, *REPLY_WORDINGS, "en_instructions", "calibrated")
ANSWER_WORDS = {"en": ("Yes", "No"), "de": ("Ja", "Nein")}


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def score(row: dict[str, Any], generator: Any, templates: Any) -> dict[str, Any]:
    passages = report_passages(row)
    template = templates.for_language(row["lang"])
    messages = template.render(passages=passages, question=row["question"])
    out = {k: row[k] for k in ("id", "lang", "answerable", "answerable_p")}
    asked = [(WORDINGS, "user"), (REPLY_WORDINGS, "assistant")]
    for wordings, role in asked:
        for name, (lang, text) in wordings.items():
            turn = {"role": role, "content": text}
            out[name] = generator.yes_probability([*messages, turn], words=ANSWER_WORDS[lang])
    check = {"role": "user", "content": WORDINGS["kept"][1]}
    if row["lang"] == "en":
        out["en_instructions"] = out["kept"]
    else:
        english = templates.for_language("en").render(passages=passages, question=row["question"])
        out["en_instructions"] = generator.yes_probability([*english, check])
    empty = template.render(passages=EMPTY[row["lang"]], question=row["question"])
    out["no_passages"] = generator.yes_probability([*empty, check])
    out["calibrated"] = _log_odds(out["kept"]) - _log_odds(out["no_passages"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a `rag eval` report folder (with answers)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="score only the first N questions (0: all)")
    args = parser.parse_args()
    settings = Settings()
    generator, templates = wiring.generator(settings), wiring.templates(settings)
    rows = json.loads((args.report / "report.json").read_text(encoding="utf-8"))["rows"]
    scored: list[dict[str, Any]] = []
    with args.out.open("w", encoding="utf-8") as out:
        for row in rows:
            if row.get("variant_of") or row.get("answerable_p") is None or not row["detail"].get("passages"):
                continue
            if args.limit and len(scored) >= args.limit:
                break
            scored.append(score(row, generator, templates))
            out.write(json.dumps(scored[-1]) + "\n")
            print(json.dumps(scored[-1]), flush=True)
    print("AUC, answerable against unanswerable:")
    for key in ("answerable_p", *SCORES):
        cells = []
        for lang in ("de", "en", None):
            sub = [r for r in scored if lang is None or r["lang"] == lang]
            value = auc([r[key] for r in sub if r["answerable"]], [r[key] for r in sub if not r["answerable"]])
            cells.append(f"{lang or 'all'} {'-' if value is None else f'{value:.3f}'}")
        print(f"{key:13} " + "  ".join(cells))


if __name__ == "__main__":
    main()
