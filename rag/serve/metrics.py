"""Prometheus metrics of the service: requests, seconds per pipeline stage, queue, decode speed, refusals."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rag.types import Answer


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
