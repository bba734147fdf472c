"""Other wordings of the answerability check, replayed on a stored `rag eval` report.

    .venv/bin/python bench/bench_check_wordings.py REPORT_DIR OUT.jsonl

For every question of the report (variants left out) the answer prompt is rebuilt from the report's
own passages and each wording is asked as one more user turn; P(Yes) against P(No) (P(Ja) against
P(Nein) for the German wording) is read from the first token's logits as the pipeline's check does.
Prints the AUC of answerable against unanswerable questions per language for each wording and for
the report's own P(answerable). Tune wordings on the gold report only; docs/experiments.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import auc  # noqa: E402

import rag.models.generate as generate  # noqa: E402
from rag import wiring  # noqa: E402
from rag.answer.prompt import format_passages  # noqa: E402
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
ANSWER_WORDS = {
    "en": (generate._YES, generate._NO),
    "de": (("Ja", "ja", "JA", " Ja", " ja"), ("Nein", "nein", "NEIN", " Nein", " nein")),
}


def score(row: dict[str, Any], generator: Any, templates: Any) -> dict[str, Any]:
    passages = [SimpleNamespace(number=p["number"], text=p["text"]) for p in row["detail"]["passages"]]
    messages = templates.for_language(row["lang"]).render(passages=format_passages(passages), question=row["question"])
    out = {k: row[k] for k in ("id", "lang", "answerable", "answerable_p")}
    try:
        for name, (lang, text) in WORDINGS.items():
            generate._YES, generate._NO = ANSWER_WORDS[lang]  # read by yes_probability at call time
            out[name] = generator.yes_probability([*messages, {"role": "user", "content": text}])
    finally:
        generate._YES, generate._NO = ANSWER_WORDS["en"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a `rag eval` report folder (with answers)")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    settings = Settings()
    generator, templates = wiring.generator(settings), wiring.templates(settings)
    rows = json.loads((args.report / "report.json").read_text(encoding="utf-8"))["rows"]
    scored = []
    with args.out.open("w", encoding="utf-8") as out:
        for row in rows:
            if row.get("variant_of") or row.get("answerable_p") is None or not row["detail"].get("passages"):
                continue
            scored.append(score(row, generator, templates))
            out.write(json.dumps(scored[-1]) + "\n")
            print(json.dumps(scored[-1]), flush=True)
    print("AUC, answerable against unanswerable:")
    for key in ("answerable_p", *WORDINGS):
        cells = []
        for lang in ("de", "en", None):
            sub = [r for r in scored if lang is None or r["lang"] == lang]
            value = auc([r[key] for r in sub if r["answerable"]], [r[key] for r in sub if not r["answerable"]])
            cells.append(f"{lang or 'all'} {'-' if value is None else f'{value:.3f}'}")
        print(f"{key:13} " + "  ".join(cells))


if __name__ == "__main__":
    main()
