"""Speculative decoding on this CPU: what drafting can buy the 1.5B, measured, not assumed.

    .venv/bin/python bench/bench_speculative.py [--limit 16] [--lookup 3,5,8] [--draft 2,4]

Issue 8 asks for prompt-lookup or draft-model speculative decoding (the 0.5B drafting for the
1.5B). llama-cpp-python's own speculative path needs ``logits_all=True`` (bench_answer.py
measures it: 0.57x), so this script runs its own greedy speculative loop on the low-level
llama.cpp API, asking for logits only where verification needs them, and compares it in the
same run with plain greedy decoding of the same prompt:

  1. **cost curve**: one llama.cpp decode of a batch of k tokens after a ~420-token prompt,
     k = 1..11, for the 1.5B (verification) and the 0.5B (drafting). Speculation pays only
     where verifying k+1 tokens costs much less than k+1 single steps;
  2. **per question** (answerable gold questions, German and English alternating, the
     pipeline's final prompt recorded as in bench_answer.py):
       * ``plain greedy``: one token per decode, argmax (what temperature 0 does);
       * ``lookup k``: drafts are the k tokens that followed the latest earlier occurrence
         of the last 3/2/1 tokens in prompt + answer (prompt-lookup decoding);
       * ``draft 0.5B k``: the 0.5B (same tokenizer) drafts k tokens greedily;
     every variant verifies drafts with one 1.5B decode of [last token, drafts] and keeps
     the longest agreeing prefix plus the 1.5B's own next token, so its output is the plain
     greedy output (checked token by token; batched and single-token arithmetic can round
     differently, which the ``same output`` column shows);
  3. **bound**: from the cost curve and the measured acceptance, the time an implementation
     with no overhead at all would need (verification and drafting only), and the ceiling
     with every draft accepted.

Decode speed is tokens after the first over the time after the first token; ratios are medians
of per-question ratios to plain greedy. The 0.5B's prompt evaluation (which would delay the first
token) is reported separately. Writes bench/results/speculative.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine, table, write_result  # noqa: E402
from bench_answer import Recording, pick_questions, plain_prompt_text  # noqa: E402

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.evaluation.gold import load_gold  # noqa: E402
from rag.models import fetch  # noqa: E402

DRAFT_MODEL = "qwen2.5-coder-0.5b"


class Model:
    """A llama.cpp context driven token by token: decode a batch, read the logits it asked for, roll back."""

    def __init__(self, path: Path, *, n_ctx: int, threads: int) -> None:
        from llama_cpp import Llama  # (tests replace _decode and skip this)

        self.llm = Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, flash_attn=True,
            verbose=False,
        )  # fmt: skip
        self.vocab = self.llm.n_vocab()
        self.tokens: list[int] = []  # what the KV cache holds, in order

    def feed(self, tokens: Sequence[int], *, all_logits: bool = False) -> np.ndarray:
        """Evaluate ``tokens`` after what is cached; the argmax of every position (or of the last)."""
        picks = self._decode(list(tokens), len(self.tokens), all_logits)
        self.tokens.extend(tokens)
        return picks

    def _decode(self, tokens: list[int], n_past: int, all_logits: bool) -> np.ndarray:
        llm = self.llm
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        picks: list[int] = []
        for start in range(0, len(tokens), llm.n_batch):
            part = tokens[start : start + llm.n_batch]
            llm._batch.set_batch(batch=part, n_past=n_past + start, logits_all=all_logits)
            llm._ctx.decode(llm._batch)
            if all_logits or start + llm.n_batch >= len(tokens):
                rows = len(part) if all_logits else 1
                logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(rows * self.vocab,))
                picks.extend(int(i) for i in logits.reshape(rows, self.vocab).argmax(axis=1))
        return np.asarray(picks, dtype=np.int64)

    def keep(self, n: int) -> None:
        """Forget everything after the first ``n`` cached tokens (removed from the KV cache on the next feed)."""
        del self.tokens[n:]

    def sync(self, sequence: Sequence[int]) -> int:
        """Make the cache hold ``sequence``; return the argmax after it (reusing the common prefix)."""
        common = 0
        for a, b in zip(self.tokens, sequence, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(sequence) - 1)  # always evaluate one token, to get its logits
        self.keep(common)
        return int(self.feed(sequence[common:])[-1])


@dataclass
class Run:
    tokens: list[int] = field(default_factory=list)
    first_token_s: float = 0.0
    total_s: float = 0.0
    steps: list[tuple[int, int]] = field(default_factory=list)  # (drafted, accepted) per verification
    draft_prompt_s: float = 0.0  # the drafter's own prompt evaluation (delays the first token)


Drafter = Callable[[list[int], int], list[int]]


def lookup_drafter(max_ngram: int = 3) -> Drafter:
    """Prompt-lookup: the tokens after the latest earlier occurrence of the last n tokens (n = 3, 2, 1)."""

    def draft(sequence: list[int], k: int) -> list[int]:
        for n in range(max_ngram, 0, -1):
            if len(sequence) <= n:
                continue
            tail = sequence[-n:]
            for start in range(len(sequence) - n - 1, -1, -1):
                if sequence[start : start + n] == tail:
                    return sequence[start + n : start + n + k]
        return []

    return draft


def model_drafter(model: Model) -> Drafter:
    """The small model continues ``sequence`` greedily for k tokens (its cache keeps the agreed prefix)."""

    def draft(sequence: list[int], k: int) -> list[int]:
        out = [model.sync(sequence)]
        while len(out) < k:
            out.append(int(model.feed([out[-1]])[-1]))
        model.keep(len(sequence))  # the drafts are guesses: the next call re-syncs to what was accepted
        return out

    return draft


def generate(target: Model, prompt: list[int], stop: set[int], max_tokens: int, drafter: Drafter | None, k: int) -> Run:
    """Greedy decoding of ``prompt``; with a drafter, k drafted tokens are verified per 1.5B decode."""
    run = Run()
    started = time.perf_counter()
    token = target.sync(prompt)  # what the cache shares with the prompt (the instructions) is reused
    run.first_token_s = time.perf_counter() - started
    out = [token]
    while len(out) < max_tokens and out[-1] not in stop:
        if drafter is None:
            out.append(int(target.feed([out[-1]])[-1]))
            continue
        drafts = drafter(prompt + out, min(k, max_tokens - len(out)))
        n_cached = len(target.tokens)
        picks = target.feed([out[-1], *drafts], all_logits=True)
        accepted = 0
        while accepted < len(drafts) and drafts[accepted] == picks[accepted] and drafts[accepted] not in stop:
            accepted += 1
        out.extend(drafts[:accepted])
        out.append(int(picks[accepted]))
        target.keep(n_cached + 1 + accepted)  # rejected drafts leave the cache
        run.steps.append((len(drafts), accepted))
    run.total_s = time.perf_counter() - started
    run.tokens = out[:max_tokens]
    if run.tokens and run.tokens[-1] in stop:
        run.tokens.pop()
    return run


def cost_curve(model: Model, prompt: list[int], sizes: Sequence[int], repeat: int = 5) -> dict[int, float]:
    """Seconds for one decode of k tokens (all logits) right after ``prompt``."""
    model.keep(0)
    model.feed(prompt)
    base = len(model.tokens)
    filler = prompt[: max(sizes)]
    costs = {}
    for k in sizes:
        times = []
        for _ in range(repeat + 1):
            model.keep(base)
            started = time.perf_counter()
            model.feed(filler[:k], all_logits=True)
            times.append(time.perf_counter() - started)
        costs[k] = statistics.median(times[1:])
    model.keep(base)
    return costs


def bound_seconds(run: Run, verify: dict[int, float], draft_step: float) -> float:
    """Time with no overhead: each verification of d drafts costs verify[d + 1], each drafted token draft_step."""
    return sum(verify[min(d + 1, max(verify))] + d * draft_step for d, _ in run.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--limit", type=int, default=16, help="questions (0 = every answerable standalone one)")
    parser.add_argument("--lookup", default="3,5,8", help="prompt-lookup draft lengths, comma-separated")
    parser.add_argument("--draft", default="2,4", help="0.5B draft lengths, comma-separated ('' = none)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speculative.json")
    args = parser.parse_args()

    settings = Settings(answer_cache=0, prompt_lookup=0)
    questions = pick_questions(load_gold(args.gold), args.limit)
    lookups = [int(x) for x in args.lookup.split(",") if x.strip()]
    drafts = [int(x) for x in args.draft.split(",") if x.strip()]
    print(f"loading the pipeline, {settings.answer_model} and {DRAFT_MODEL} ...", flush=True)
    base = wiring.answerer(settings)
    recorder = Recording(base.generator)
    answerer = replace(base, generator=recorder)
    target = Model(fetch.require(settings.models_path, settings.answer_model), n_ctx=settings.n_ctx,
                   threads=settings.threads)  # fmt: skip
    small = Model(fetch.require(settings.models_path, DRAFT_MODEL), n_ctx=settings.n_ctx, threads=settings.threads)
    llm = target.llm
    stop = {llm.token_eos(), *llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}

    def prompt_of(messages: list[Any]) -> list[int]:
        return llm.tokenize(plain_prompt_text(llm, messages), add_bos=False, special=True)

    answerer("Wie viele GPUs nutzte DeepSeek?")
    sample = prompt_of(recorder.messages)
    sizes = list(range(1, 12))
    print(f"cost curve after a {len(sample)}-token prompt ...", flush=True)
    verify = cost_curve(target, sample, sizes)
    draft_cost = cost_curve(small, sample, [1])[1]
    # Ceilings with every draft accepted: k tokens per decode of k, drafting free or done by the 0.5B.
    curve = [{"k": k, "ms": verify[k] * 1000, "vs_single_steps": verify[k] / verify[1],
              "ceiling_free": k * verify[1] / verify[k],
              "ceiling_small": k * verify[1] / (verify[k] + (k - 1) * draft_cost)} for k in sizes]  # fmt: skip
    print(table(curve, [("k", "tokens in one 1.5B decode"), ("ms", "ms"),
                        ("vs_single_steps", "cost in single steps"),
                        ("ceiling_free", "speed-up if all drafts right, free drafter"),
                        ("ceiling_small", "same, 0.5B drafter")]))  # fmt: skip
    print(f"0.5B draft step: {draft_cost * 1000:.1f} ms ({draft_cost / verify[1]:.2f} of a 1.5B step)\n")

    variants: list[tuple[str, Drafter | None, int]] = [("plain greedy", None, 1)]
    variants += [(f"lookup {k}", lookup_drafter(), k) for k in lookups]
    variants += [(f"draft 0.5B {k}", model_drafter(small), k) for k in drafts]
    rows: list[dict[str, Any]] = []
    for n, item in enumerate(questions, 1):
        a = answerer(item.question)
        if "generation" not in a.timings:
            print(f"[{n}/{len(questions)}] {item.id}: refused before generation, skipped", flush=True)
            continue
        prompt = prompt_of(recorder.messages)
        small.keep(0)
        started = time.perf_counter()
        small.sync(prompt)  # the drafter's prompt evaluation, measured once, then cached
        draft_prompt_s = time.perf_counter() - started
        runs = {name: generate(target, prompt, stop, settings.max_tokens, d, k) for name, d, k in variants}
        plain = runs["plain greedy"]
        for name, d, k in variants:
            run = runs[name]
            decode_s = run.total_s - run.first_token_s
            tokens_after = len(run.tokens) - 1
            accepted = sum(a for _, a in run.steps)
            drafted = sum(d for d, _ in run.steps)
            step = draft_cost if name.startswith("draft") else 0.0
            rows.append({
                "id": item.id, "lang": item.lang, "variant": name, "k": k, "prompt_tokens": len(prompt),
                "tokens": len(run.tokens), "first_token_s": run.first_token_s, "decode_s": decode_s,
                "decode_tps": tokens_after / decode_s if tokens_after > 0 and decode_s > 0 else None,
                "same_output": run.tokens == plain.tokens,
                "acceptance": accepted / drafted if drafted else None,
                "tokens_per_verify": (tokens_after / len(run.steps)) if run.steps else 1.0,
                "bound_decode_s": bound_seconds(run, verify, step) if run.steps else tokens_after * verify[1],
                "draft_prompt_s": draft_prompt_s if name.startswith("draft") else 0.0,
            })  # fmt: skip
        print(
            f"[{n}/{len(questions)}] {item.id}: {len(plain.tokens)} tokens, "
            + ", ".join(f"{r['variant']} {r['decode_tps'] or 0:.1f} tok/s" for r in rows[-len(variants) :]),
            flush=True,
        )
    summary = summarize(rows, verify[1])
    print()
    print(table(summary, [("variant", "variant"), ("n", "n"), ("decode_tps", "decode tok/s"),
                          ("ratio", "vs plain"), ("acceptance", "drafts accepted"),
                          ("tokens_per_verify", "tokens per 1.5B decode"), ("bound_ratio", "no-overhead bound"),
                          ("same_output", "same output"), ("draft_prompt_s", "0.5B prompt s")]))  # fmt: skip
    out = write_result("speculative", {"machine": machine(), "model": settings.answer_model, "draft": DRAFT_MODEL,
                                       "cost_curve": curve, "draft_step_ms": draft_cost * 1000,
                                       "summary": summary, "rows": rows}, args.out)  # fmt: skip
    print(f"\nwrote {out}")


def summarize(rows: list[dict[str, Any]], single_step: float) -> list[dict[str, Any]]:
    plain = {r["id"]: r for r in rows if r["variant"] == "plain greedy"}
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        timed = [r for r in mine if r["decode_tps"] and plain[r["id"]]["decode_tps"]]
        ratios = [r["decode_tps"] / plain[r["id"]]["decode_tps"] for r in timed]
        accept = [r["acceptance"] for r in mine if r["acceptance"] is not None]
        out.append({
            "variant": variant,
            "n": len(mine),
            "decode_tps": statistics.median(r["decode_tps"] for r in timed) if timed else None,
            "ratio": statistics.median(ratios) if ratios else None,
            "acceptance": statistics.median(accept) if accept else None,
            "tokens_per_verify": statistics.median(r["tokens_per_verify"] for r in mine),
            # plain greedy at the cost curve's single step, against the variant with no overhead
            "bound_ratio": statistics.median(
                (r["tokens"] - 1) * single_step / r["bound_decode_s"] for r in timed if r["bound_decode_s"] > 0
            ) if timed else None,
            "same_output": f"{sum(r['same_output'] for r in mine)}/{len(mine)}",
            "draft_prompt_s": statistics.median(r["draft_prompt_s"] for r in mine),
        })  # fmt: skip
    return out


if __name__ == "__main__":
    main()
