"""Answering speed: the project's pipeline against plain llama-cpp-python given the identical prompt.

    .venv/bin/python bench/bench_answer.py [--limit 16] [--lookup 4,10] [--gold eval/gold.jsonl]

For each answerable gold question (follow-ups skipped, in gold order, German and English
alternating) the same process runs, one after the other on the same question:

  * ``pipeline``: `rag.answer.pipeline.answer` with the default settings (retrieval, prompt, streaming,
    citation check); its final chat messages are recorded;
  * ``plain``: `llama_cpp.Llama(model, n_ctx, n_threads)` with the library's other defaults, given
    exactly those messages through `create_chat_completion(stream=True)`, nothing else around it;
  * ``pipeline+lookup K``: the pipeline with prompt-lookup decoding drafting K tokens per step
    (`llama_cpp.llama_speculative.LlamaPromptLookupDecoding`), one model instance per K;
  * ``plain, no prefix cache``: plain again after `Llama.reset()`, i.e. the whole prompt evaluated
    from scratch; the difference to ``plain`` is what keeping the fixed instructions first buys.

Every variant's first token, total time, prompt tokens and generated tokens (counted with the
model's tokenizer on the produced text, so every variant is counted the same way) are recorded;
decode speed is (tokens - 1) / (total - first token). Ratios are medians of per-question ratios
against ``plain`` measured in this run. Writes bench/results/answer.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import PassThrough, machine, table, write_result  # noqa: E402

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.evaluation.gold import GoldItem, load_gold  # noqa: E402
from rag.models import fetch  # noqa: E402
from rag.models.generate import GenerationSettings, LlamaCppGenerator, Message  # noqa: E402


class Recording(PassThrough):
    """A generator wrapper that keeps the last messages it was given (the pipeline's final prompt)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.messages: list[Message] = []

    def stream(
        self, messages: Sequence[Message], settings: GenerationSettings, *, prefix: str = "", between: Any = None
    ) -> Iterator[str]:
        self.messages = list(messages)
        return self.inner.stream(messages, settings, prefix=prefix, between=between)


def pick_questions(items: list[GoldItem], limit: int) -> list[GoldItem]:
    """Answerable standalone questions, German and English alternating, in gold order."""
    by_lang: dict[str, list[GoldItem]] = {"de": [], "en": []}
    for item in items:
        if item.answerable and not item.follow_up_of and item.lang in by_lang:
            by_lang[item.lang].append(item)
    mixed = [q for pair in zip(by_lang["de"], by_lang["en"], strict=False) for q in pair]
    return mixed[:limit] if limit else mixed


def plain_run(llm: Any, messages: list[Message], max_tokens: int, *, cold: bool) -> dict[str, Any]:
    if cold:
        llm.reset()
    started = time.perf_counter()
    first = None
    pieces: list[str] = []
    for chunk in llm.create_chat_completion(messages=messages, stream=True, max_tokens=max_tokens, temperature=0.0):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            first = first or time.perf_counter()
            pieces.append(piece)
    done = time.perf_counter()
    return {"text": "".join(pieces), "first_token_s": (first or done) - started, "total_s": done - started}


def pipeline_run(answerer: wiring.Answerer, question: str) -> dict[str, Any]:
    a = answerer(question)
    t = a.timings
    return {
        "text": a.text,
        "first_token_s": t["first_token"],
        "total_s": t["total"],
        "generation_s": t.get("generation", 0.0),
        "decode_s": t.get("decode", 0.0),
        "refused": a.refused,
        "generated": "generation" in t,
    }


def count(llm: Any, text: str) -> int:
    return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0


def decode_rate(row: dict[str, Any]) -> float | None:
    seconds = row["total_s"] - row["first_token_s"]
    return (row["tokens"] - 1) / seconds if row["tokens"] > 1 and seconds > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--limit", type=int, default=16, help="questions (0 = every answerable standalone one)")
    parser.add_argument(
        "--lookup", default="4,10", help="prompt-lookup draft lengths to try, comma-separated ('' = none)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "answer.json")
    args = parser.parse_args()

    settings = Settings(answer_cache=0, prompt_lookup=0)
    questions = pick_questions(load_gold(args.gold), args.limit)
    path = fetch.require(settings.models_path, settings.answer_model)
    print(f"loading {settings.answer_model} for {len(questions)} questions ...", flush=True)
    base = wiring.answerer(settings)
    recorder = Recording(base.generator)
    variants: dict[str, wiring.Answerer] = {"pipeline": replace(base, generator=recorder)}
    for k in [int(x) for x in args.lookup.split(",") if x.strip()]:
        gen = LlamaCppGenerator(
            path, model_id=settings.answer_model, n_ctx=settings.n_ctx, threads=settings.threads,
            n_gpu_layers=settings.n_gpu_layers, flash_attn=settings.flash_attn, prompt_lookup=k,
        )  # fmt: skip
        variants[f"pipeline+lookup {k}"] = replace(base, generator=gen)
    from llama_cpp import Llama

    plain = Llama(model_path=str(path), n_ctx=settings.n_ctx, n_threads=settings.threads, verbose=False)
    max_tokens = settings.max_tokens
    for answerer in variants.values():  # warm-up: the fixed instructions in each model's cache
        answerer("Wie viele GPUs nutzte DeepSeek?")
    plain_run(plain, recorder.messages, max_tokens, cold=False)

    rows: list[dict[str, Any]] = []
    for n, item in enumerate(questions, 1):
        per: dict[str, dict[str, Any]] = {}
        per["pipeline"] = pipeline_run(variants["pipeline"], item.question)
        if not per["pipeline"]["generated"]:
            print(f"[{n}/{len(questions)}] {item.id}: refused before generation, skipped", flush=True)
            continue
        messages = recorder.messages
        per["plain"] = plain_run(plain, messages, max_tokens, cold=False)
        for name, answerer in variants.items():
            if name != "pipeline":
                per[name] = pipeline_run(answerer, item.question)
        per["plain, no prefix cache"] = plain_run(plain, messages, max_tokens, cold=True)
        prompt_tokens = len(plain.tokenize(plain_prompt_text(plain, messages), add_bos=False, special=True))
        for name, r in per.items():
            r["tokens"] = count(plain, r["text"])
            rows.append({"id": item.id, "lang": item.lang, "variant": name, "prompt_tokens": prompt_tokens,
                         **{k: v for k, v in r.items() if k != "text"}, "decode_tps": decode_rate(r)})  # fmt: skip
        p = per["pipeline"]
        print(
            f"[{n}/{len(questions)}] {item.id}: pipeline first token {p['first_token_s']:.2f} s, "
            f"plain {per['plain']['first_token_s']:.2f} s, {prompt_tokens} prompt tokens",
            flush=True,
        )
    summary = summarize(rows)
    print()
    print(table(summary, [("variant", "variant"), ("n", "n"), ("first_token_s", "first token s (median)"),
                          ("total_s", "total s"), ("decode_tps", "decode tok/s"), ("tokens", "tokens"),
                          ("prompt_tokens", "prompt tok"), ("decode_ratio", "decode vs plain"),
                          ("first_token_ratio", "first token vs plain")]))  # fmt: skip
    out = write_result("answer", {"machine": machine(), "model": settings.answer_model, "summary": summary,
                                  "rows": rows}, args.out)  # fmt: skip
    print(f"\nwrote {out}")


def plain_prompt_text(llm: Any, messages: list[Message]) -> bytes:
    """The prompt the chat template makes of ``messages`` (to count its tokens)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template", "")
    eos = llm.detokenize([llm.token_eos()]).decode("utf-8", "replace")
    bos = llm.detokenize([llm.token_bos()]).decode("utf-8", "replace")
    prompt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=messages).prompt
    return prompt.encode("utf-8")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    plain = {r["id"]: r for r in rows if r["variant"] == "plain"}
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        rates = [r["decode_tps"] for r in mine if r["decode_tps"]]
        ratios = [
            r["decode_tps"] / plain[r["id"]]["decode_tps"]
            for r in mine
            if r["decode_tps"] and plain[r["id"]]["decode_tps"]
        ]
        ttft_ratios = [r["first_token_s"] / plain[r["id"]]["first_token_s"] for r in mine]
        out.append({
            "variant": variant,
            "n": len(mine),
            "first_token_s": statistics.median(r["first_token_s"] for r in mine),
            "total_s": statistics.median(r["total_s"] for r in mine),
            "decode_tps": statistics.median(rates) if rates else None,
            "tokens": statistics.median(r["tokens"] for r in mine),
            "prompt_tokens": statistics.median(r["prompt_tokens"] for r in mine),
            "decode_ratio": statistics.median(ratios) if ratios else None,
            "first_token_ratio": statistics.median(ttft_ratios),
        })  # fmt: skip
    return out


if __name__ == "__main__":
    main()
