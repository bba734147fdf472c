"""Evaluation against a gold set: retrieval first (recall@k, MRR), split by language and type."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from rag.durable import atomic_write_text
from rag.evaluation.gold import GoldItem
from rag.evaluation.retrieval_metrics import evidence_hit, first_relevant_rank, percentile, summarise
from rag.retrieval.retrieve import RetrievalSettings, Retriever
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from rag.config import Settings

KS = (1, 3, 5, 10)
MODES: dict[str, dict[str, bool]] = {
    "dense": {"dense": True, "keyword": False},
    "keyword": {"dense": False, "keyword": True},
    "fused": {"dense": True, "keyword": True},
}


def hit_texts(hit: Hit) -> str:
    """Text of a hit and the duplicates collapsed into it: all of them count as retrieved."""
    return "\n".join([hit.chunk.text, *(d.text for d in hit.duplicates)])


def evidence_nowhere(items: Sequence[GoldItem], chunks: Sequence[Chunk]) -> list[str]:
    """Ids of answerable items whose evidence no indexed passage holds (a quote the cleaner dropped, one spanning
    two passages, a typo): retrieval cannot find it, so their recall and `evidence_given` count a miss."""
    texts = [chunk.text for chunk in chunks]
    return [i.id for i in items if i.answerable and i.evidence and not any(evidence_hit(i.evidence, t) for t in texts)]


def retrieval_rows(retriever: Retriever, items: Sequence[GoldItem], *, progress: bool = False) -> list[dict[str, Any]]:
    """One row per answerable item: rank of the first hit holding gold evidence, latency."""
    rows = []
    for item in tqdm([i for i in items if i.answerable], desc="retrieval", disable=not progress, unit="q"):
        started = time.perf_counter()
        hits = retriever.search(item.standalone_question, max(KS))
        seconds = time.perf_counter() - started
        rows.append(
            {
                "id": item.id,
                "lang": item.lang,
                "type": item.type,
                "rank": first_relevant_rank(item.evidence, (hit_texts(h) for h in hits)),
                "seconds": seconds,
                "top": [h.chunk.chunk_id for h in hits[:5]],
            }
        )
    return rows


def evaluate_retrieval(
    retriever: Retriever, items: Sequence[GoldItem], modes: Sequence[str] = ("fused",), *, progress: bool = False
) -> dict[str, Any]:
    """Scores for each mode (dense only, keyword only, fused) on the same retriever and items."""
    base = retriever.settings
    report: dict[str, Any] = {"modes": {}}
    try:
        for mode in modes:
            retriever.settings = RetrievalSettings(**{**base.__dict__, **MODES[mode]})
            rows = retrieval_rows(retriever, items, progress=progress)
            latencies = [r["seconds"] for r in rows]
            report["modes"][mode] = {
                "summary": summarise(rows, keys=("lang", "type"), ks=KS),
                "latency_ms": {
                    "median": 1000 * statistics.median(latencies) if latencies else 0.0,
                    "p95": 1000 * percentile(latencies, 0.95),
                },
                "rows": rows,
            }
    finally:
        retriever.settings = base
    return report


def retrieval_table(report: dict[str, Any]) -> str:
    """A plain-text table: one line per mode and group."""
    head = f"{'mode':8} {'group':18} {'n':>4} " + " ".join(f"{'R@' + str(k):>6}" for k in KS) + f" {'MRR':>6}"
    lines = [head, "-" * len(head)]
    for mode, data in report["modes"].items():
        summary = data["summary"]
        groups = [("all", summary["overall"])]
        groups += [(f"lang={k}", v) for k, v in summary["by_lang"].items()]
        groups += [(f"type={k}", v) for k, v in summary["by_type"].items()]
        for name, s in groups:
            cells = " ".join(f"{s[f'recall@{k}']:6.3f}" for k in KS)
            lines.append(f"{mode:8} {name:18} {s['n']:4d} {cells} {s['mrr']:6.3f}")
        lat = data["latency_ms"]
        lines.append(f"{mode:8} {'latency ms':18} median {lat['median']:.1f}  p95 {lat['p95']:.1f}")
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False))


# ----------------------------------------------------------------------------- answers


def variant_items(items: Sequence[GoldItem]) -> list[GoldItem]:
    """The questions of each item's ``variants`` field (the same question reworded), as items of their own."""
    out = []
    for item in items:
        for n, question in enumerate(item.extra.get("variants") or (), 1):
            out.append(replace(item, id=f"{item.id}~{n}", question=question, extra={"variant_of": item.id}))
    return out


def decision_summary(
    rows: Sequence[dict[str, Any]], variant_rows: Sequence[dict[str, Any]], settings: Settings
) -> dict[str, Any]:
    """How the answer-or-refuse decision did: the threshold in use, AUC of P(answerable), the flip rate and
    where the flipped decisions were taken."""
    from rag.answer.pipeline import AnswerSettings
    from rag.evaluation import decision

    langs = sorted({r["lang"] for r in rows})
    return {
        "check": settings.answerable_check,
        "thresholds": dict(settings.answerable_thresholds),
        "auc": decision.auc(rows),
        "auc_by_lang": {lang: decision.auc([r for r in rows if r["lang"] == lang]) for lang in langs},
        "variants": len(variant_rows),
        "flip_rate": decision.flip_rate(rows, variant_rows),
        "flip_causes": decision.flip_causes(rows, variant_rows, AnswerSettings.from_settings(settings).threshold),
    }


def evaluate_answers(answerer: Any, items: Sequence[GoldItem], *, progress: bool = False) -> dict[str, Any]:
    """Run the full pipeline on every item (follow-ups with their first question as history) and score it.

    A question the pipeline will not take (an `InputError`: its prompt over the model's context) is listed
    under ``errors`` with the message and left out of the scores; the run goes on, so one such question
    does not throw away the answers of a run that took tens of minutes. Ctrl-C while a question is answered
    ends the run with the questions answered before it (``interrupted`` true), for the same reason.
    """
    from rag.errors import InputError
    from rag.evaluation.scoring import aggregate, latency, score
    from rag.serialize import answer_to_dict

    documents = answerer.retriever.index.documents
    by_id: dict[str, tuple[GoldItem, Any]] = {}
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    interrupted = False
    for item in tqdm(items, desc="answers", disable=not progress, unit="q"):
        history: list[dict[str, str]] = []
        if item.follow_up_of and item.follow_up_of in by_id:
            first_item, first_answer = by_id[item.follow_up_of]
            history = [
                {"role": "user", "content": first_item.question},
                {"role": "assistant", "content": first_answer.text},
            ]
        try:
            answer = answerer(item.question, history=history)
        except InputError as exc:
            errors.append({"id": item.id, "question": item.question, "error": str(exc)})
            continue
        except KeyboardInterrupt:  # where a run spends its time, so where Ctrl-C lands
            interrupted = True
            break
        by_id[item.id] = (item, answer)
        row = score(item, answer, documents)
        row.update(
            variant_of=item.extra.get("variant_of"),
            question=item.question,
            answer=answer.text,
            refused=answer.refused,
            timings=answer.timings,
            tokens_per_second=answer.tokens_per_second,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            detail=answer_to_dict(answer),
        )
        rows.append(row)
    summary = aggregate(rows)
    return {"summary": summary, "latency": latency(rows), "rows": rows, "errors": errors, "interrupted": interrupted}
