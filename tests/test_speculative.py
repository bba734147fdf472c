"""bench/bench_speculative.py's greedy speculative loop, on a deterministic fake model.

Whatever the drafter proposes, verification must give exactly the tokens plain greedy decoding
gives, and the cache must hold exactly the agreed tokens afterwards; otherwise the benchmark would
compare speeds of different outputs.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_speculative import Model, bound_seconds, generate, lookup_drafter, model_drafter

STOP = 0
PROMPT = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
# Copies from the prompt in places (what prompt lookup hopes for), invents tokens elsewhere.
ANSWER = [13, 14, 15, 40, 41, 17, 18, 19, 42, 13, 14, 43]


def scripted(sequence: Sequence[int]) -> int:
    """The fake 1.5B: after PROMPT it says ANSWER then stops; off the script it answers noise."""
    seq = list(sequence)
    if seq[: len(PROMPT)] == PROMPT and seq[len(PROMPT) :] == ANSWER[: len(seq) - len(PROMPT)]:
        i = len(seq) - len(PROMPT)
        return ANSWER[i] if i < len(ANSWER) else STOP
    return 100 + zlib.crc32(bytes(str(seq), "ascii")) % 50


def sloppy(sequence: Sequence[int]) -> int:
    """The fake 0.5B: right except at every third answer position."""
    i = len(sequence) - len(PROMPT)
    return 99 if i >= 0 and i % 3 == 2 else scripted(sequence)


class FakeModel(Model):
    def __init__(self, next_token: Callable[[Sequence[int]], int]) -> None:  # no llama.cpp
        self.next_token = next_token
        self.tokens = []
        self.decoded = 0  # tokens run through the "model"

    def _decode(self, tokens: list[int], n_past: int, all_logits: bool) -> np.ndarray:
        seq = self.tokens[:n_past]
        assert len(seq) == n_past
        picks = [self.next_token(seq + tokens[: j + 1]) for j in range(len(tokens))]
        self.decoded += len(tokens)
        return np.asarray(picks if all_logits else picks[-1:], dtype=np.int64)


def plain() -> list[int]:
    return generate(FakeModel(scripted), PROMPT, {STOP}, 50, None, 1).tokens


def test_plain_greedy_follows_the_script() -> None:
    assert plain() == ANSWER


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_prompt_lookup_gives_the_greedy_output_and_a_clean_cache(k: int) -> None:
    target = FakeModel(scripted)
    run = generate(target, PROMPT, {STOP}, 50, lookup_drafter(), k)
    assert run.tokens == ANSWER
    assert target.tokens == PROMPT + ANSWER  # every rejected draft left the cache; the stop token is not fed
    assert any(accepted for _, accepted in run.steps)  # the copied spans were accepted
    assert len(run.steps) < len(ANSWER)  # fewer 1.5B decodes than tokens


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_draft_model_that_is_sometimes_wrong_changes_nothing_but_speed(k: int) -> None:
    target, small = FakeModel(scripted), FakeModel(sloppy)
    run = generate(target, PROMPT, {STOP}, 50, model_drafter(small), k)
    assert run.tokens == ANSWER
    drafted = sum(d for d, _ in run.steps)
    accepted = sum(a for _, a in run.steps)
    assert 0 < accepted < drafted
    assert small.tokens == (PROMPT + ANSWER)[: len(small.tokens)]  # the drafter keeps only agreed tokens


def test_a_drafter_that_is_always_wrong_costs_decodes_but_not_correctness() -> None:
    target = FakeModel(scripted)
    run = generate(target, PROMPT, {STOP}, 50, lambda seq, k: [7] * k, 3)
    assert run.tokens == ANSWER
    assert all(accepted == 0 for _, accepted in run.steps)
    assert target.decoded > len(PROMPT) + len(ANSWER)  # the rejected drafts were evaluated too


def test_max_tokens_cuts_the_answer() -> None:
    run = generate(FakeModel(scripted), PROMPT, {STOP}, 5, lookup_drafter(), 4)
    assert run.tokens == ANSWER[:5]


def test_prompt_lookup_prefers_the_longest_latest_match() -> None:
    draft = lookup_drafter()
    assert draft([1, 2, 3, 9, 1, 2, 4, 5, 1, 2], 2) == [4, 5]  # latest occurrence of (1, 2)
    assert draft([5, 1, 2, 3, 8, 1, 2, 3, 9, 1, 2, 3], 3) == [9, 1, 2]  # the 3-gram wins over older ones
    assert draft([1, 2, 3], 4) == []  # nothing repeats


def test_bound_charges_verification_by_batch_size_and_drafting_per_token() -> None:
    run = generate(FakeModel(scripted), PROMPT, {STOP}, 50, lookup_drafter(), 2)
    verify = {1: 1.0, 2: 1.5, 3: 2.0}
    expected = sum(verify[d + 1] + d * 0.25 for d, _ in run.steps)
    assert bound_seconds(run, verify, 0.25) == pytest.approx(expected)
