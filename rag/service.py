"""Serving machinery kept apart from the routes: one model user at a time, a bounded queue, metrics.

llama.cpp is not re-entrant, so `ModelGate` lets one request generate while at most
``max_queue`` wait; beyond that the API answers 503 with Retry-After. Streaming runs the
pipeline in a worker thread and hands tokens to the event loop; a client that disconnects
sets a flag the token callback checks, which stops generation and frees the model.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rag.errors import RagError
from rag.types import Answer


class Busy(RagError):
    """The queue in front of the model is full."""

    http_status = 503


class Cancelled(Exception):
    """Raised inside the token callback when the client went away."""


class ModelGate:
    def __init__(self, max_queue: int) -> None:
        self._lock = asyncio.Lock()
        self._max_queue = max_queue
        self.waiting = 0

    async def __aenter__(self) -> ModelGate:
        if self._lock.locked() and self.waiting >= self._max_queue:
            raise Busy(f"the model is busy and {self.waiting} requests are waiting; retry shortly")
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("rag_requests_total", "HTTP requests", ["path", "status"], registry=r)
        self.stage = Histogram(
            "rag_stage_seconds", "Seconds per pipeline stage", ["stage"], registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
        )  # fmt: skip
        self.queue = Gauge("rag_queue_length", "Requests waiting for the model", registry=r)
        self.tokens_per_second = Gauge("rag_generation_tokens_per_second", "Last answer's decode speed", registry=r)
        self.refusals = Counter("rag_refusals_total", "Answers that were refusals", registry=r)

    def observe(self, answer: Answer) -> None:
        for stage, seconds in answer.timings.items():
            self.stage.labels(stage).observe(seconds)
        if answer.tokens_per_second:
            self.tokens_per_second.set(answer.tokens_per_second)
        if answer.refused:
            self.refusals.inc()


async def stream_answer(
    run: Callable[[Callable[[str], None]], Answer],
) -> AsyncIterator[tuple[str, Any]]:
    """Run ``run(on_token)`` in a thread; yield ("token", text) as they come, then ("answer", Answer).

    If the consumer stops iterating (client disconnected), generation is cancelled at the next token.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def on_token(piece: str) -> None:
        if stop.is_set():
            raise Cancelled
        loop.call_soon_threadsafe(queue.put_nowait, ("token", piece))

    def work() -> None:
        try:
            result: tuple[str, Any] = ("answer", run(on_token))
        except Cancelled:
            result = ("cancelled", None)
        except RagError as exc:
            result = ("error", exc)
        loop.call_soon_threadsafe(queue.put_nowait, result)

    worker = loop.run_in_executor(None, work)
    try:
        while True:
            kind, value = await queue.get()
            yield kind, value
            if kind != "token":
                break
    finally:
        stop.set()
        await worker  # the model is free again before the gate is released
