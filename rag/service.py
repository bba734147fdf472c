"""Serving machinery kept apart from the routes: one model user at a time, a bounded queue, metrics.

llama.cpp is not re-entrant, so `ModelGate` lets one request generate while at most
``max_queue`` wait; beyond that the API answers 503 with Retry-After. Streaming runs the
pipeline in a worker thread and hands tokens to the event loop; a client that disconnects
sets a flag the token callback checks, which stops generation and frees the model.
`Guard` checks the API key and caps request bodies as they arrive.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import RagError
from rag.types import Answer


class Busy(RagError):
    """The queue in front of the model is full."""

    http_status = 503


class PayloadTooLarge(HTTPException):
    """A request body passed its limit while it was being read.

    An HTTPException because FastAPI lets those through from body parsing (anything else
    it reports as "There was an error parsing the body").
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# Declared for every operation, so the OpenAPI document tells clients (and fuzzers) the truth.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Malformed input"),
        (401, "Missing or wrong API key (when RAG_API_KEY is set)"),
        (404, "No such document"),
        (413, "Request body over its limit"),
        (422, "Invalid request or unreadable document"),
        (503, "Busy or still loading; retry after Retry-After seconds"),
    )
}


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one shape every error leaves the service in."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


class Guard:
    """ASGI middleware in front of every route: the API key first, then the size of the body.

    Every path but ``public`` needs ``Authorization: Bearer <api_key>`` when a key is set
    (compared as bytes in constant time). A body over ``limit_for(path)`` bytes gets 413
    whether or not Content-Length said so: an announced length is refused before a byte is
    read, a chunked body is counted as it arrives and reading stops at the limit, so a client
    cannot fill memory or the disk (uploads spool to temporary files) by leaving the length out.
    """

    def __init__(
        self, app: ASGIApp, *, api_key: str | None, public: frozenset[str], limit_for: Callable[[str], int]
    ) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None
        self.public = public
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.expected is not None and path not in self.public:
            given = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                message = "missing or wrong API key; send `Authorization: Bearer <RAG_API_KEY>`"
                await error_response(401, "Unauthorized", message)(scope, receive, send)
                return
        limit = self.limit_for(path)
        length = Headers(scope=scope).get("content-length")
        refusal = None
        if length is not None and not length.isdigit():
            refusal = error_response(400, "BadRequest", f"Content-Length {length[:40]!r} is not a number")
        elif length is not None and int(length) > limit:
            refusal = error_response(413, "PayloadTooLarge", f"request body over {limit} bytes")
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, counted, send)


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
        # A bug (not a RagError) still ends the stream: "failed" wakes the consumer, which then
        # re-raises the exception from `await worker`. Without it the request would wait forever
        # and hold the model gate, and every later request would queue behind it.
        result: tuple[str, Any] = ("failed", None)
        try:
            result = ("answer", run(on_token))
        except Cancelled:
            result = ("cancelled", None)
        except RagError as exc:
            result = ("error", exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, result)

    worker = loop.run_in_executor(None, work)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "failed":
                break
            yield kind, value
            if kind != "token":
                break
    finally:
        stop.set()
        await worker  # the model is free again before the gate is released


async def prepend(first: tuple[str, Any], rest: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[tuple[str, Any]]:
    """``first`` then, when it was a token, the rest of the stream (awaited once to learn the status)."""
    yield first
    if first[0] == "token":
        async for item in rest:
            yield item
