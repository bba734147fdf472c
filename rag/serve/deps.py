"""What the routes share: the loaded Answerer (readiness), one answer at a time, and the SSE stream.

Routes get the Answerer through the `Ready` dependency: 503 (`Busy`) while the models load, the
load error once loading failed. Both answer endpoints run the pipeline through `answer_once`
or `stream_events`, which take the model gate, record metrics, leave the Answer on the request
for its log line, and (streaming) turn the pipeline's events into server-sent event frames with
one renderer per endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import aclosing
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from rag.errors import Busy, ClientGone, InternalError, RagError
from rag.serve.gate import ModelGate, Place
from rag.serve.logs import bug_fields
from rag.serve.metrics import Metrics
from rag.serve.shapes import SSE_SEP
from rag.serve.stream import Cancelled, prepend, stream_answer
from rag.types import Answer
from rag.wiring import Answerer

log = logging.getLogger("rag.serve")

# No proxy or browser cache may keep a stream; nginx must pass each frame on at once.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def ready(request: Request) -> Answerer:
    """The loaded Answerer; `Busy` (503) while loading, the load error once loading failed."""
    answerer: Answerer | None = request.app.state.answerer
    if answerer is None:
        error = request.app.state.load_error
        raise RagError(error) if error else Busy("models are still loading; retry shortly")
    return answerer


Ready = Annotated[Answerer, Depends(ready)]

# Renders one pipeline event ("token" with text, "answer" with the Answer, "error" with a RagError) as SSE frames.
Render = Callable[[str, Any], Iterable[ServerSentEvent]]
Events = AsyncGenerator[tuple[str, Any], None]


_LEFT_QUEUED = "the client closed the connection while its request waited for the model"


async def answer_once(request: Request, answerer: Answerer, question: str, **kw: Any) -> Answer:
    """Answer in a worker thread once the model is free. A client that leaves stops the work: while it waits its
    turn it never takes the model, and once it has it at the model's next token (`ClientGone`). Before, it ran
    to its end and held the model from every request behind it."""
    gate: ModelGate = request.app.state.gate
    stop = threading.Event()

    def on_token(piece: Any) -> None:
        if stop.is_set():
            raise Cancelled

    place = gate.reserve()  # Busy (503) when the queue is full
    gone = asyncio.ensure_future(client_gone(request))
    try:
        take = asyncio.ensure_future(place.take())
        try:
            await asyncio.wait({take, gone}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: never leave `take` waiting alone, it would take the model for good
            try:
                await _stop(take)
            finally:
                if _took(take):
                    gate.release()
            raise
        await _stop(take)
        if not _took(take):
            raise ClientGone(_LEFT_QUEUED)
        try:
            if gone.done():
                raise ClientGone(_LEFT_QUEUED)
            work = asyncio.ensure_future(run_in_threadpool(lambda: answerer(question, on_token=on_token, **kw)))
            try:
                await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.set()  # a no-op once the work is done; else it stops at the next token
                with anyio.CancelScope(shield=True):  # llama.cpp is not re-entrant: free only once the thread ends
                    await asyncio.wait({work})
            try:
                result = work.result()
            except Cancelled:
                raise ClientGone("the client closed the connection before the answer was ready") from None
        finally:
            gate.release()
    finally:
        place.leave()
        await _stop(gone)
    _observe(request, result)
    return result


async def _stop(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` once and wait until it ended; a cancellation of the caller still propagates, after.

    Never ``await task`` here: a caller that is cancelled again and again (anyio repeats the cancel of a task
    group's tasks every loop turn) would pass each cancel on into ``task``, through a shielded wait for the
    worker thread in its `finally`, and the model gate would open while llama.cpp still ran.
    """
    task.cancel()
    await finished(task)
    if not task.cancelled():
        task.exception()  # marked as read (no "never retrieved" warning); where it matters, `_took` looks at it


def _took(take: asyncio.Future[Any]) -> bool:
    return take.done() and not take.cancelled() and take.exception() is None


async def finished(task: asyncio.Future[Any]) -> None:
    """Wait until ``task`` is done without passing a cancellation of the caller on to it; re-raised after."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def client_gone(request: Request) -> None:
    """Returns once the client has closed the connection; for a request whose body was read.

    A waiting receive, as sse-starlette listens: `Request.is_disconnected` looks without waiting, and
    behind the counting middleware that never lets uvicorn read the socket again, so it never saw the client go.
    """
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def stream_events(
    request: Request,
    answerer: Answerer,
    question: str,
    render: Render,
    *,
    head: Iterable[ServerSentEvent] = (),
    tail: Iterable[ServerSentEvent] = (),
    **kw: Any,
) -> EventSourceResponse:
    """A text/event-stream response: ``head`` frames, each pipeline event through ``render``, ``tail`` frames.

    A full queue is always an HTTP status (503): the queue place is reserved before the response
    starts. A failed load is one too (`ready`). When the model is free, the first event is awaited
    before the response starts, for at most one keep-alive interval (RAG_SSE_PING_S), so an error
    before it (a bug: 500; an input the pipeline rejects: 400) is a status as well. When the request
    must wait its turn, or its first event takes longer (a summary's first part), the response starts
    and sse-starlette sends keep-alive comments, so proxies and clients do not time out; anything that
    goes wrong after that arrives as an ``error`` event.
    """
    gate: ModelGate = request.app.state.gate
    ping = request.app.state.settings.sse_ping_s
    waiting = not gate.free
    place = gate.reserve()  # Busy now, while the status can still say so
    source: Events = _events(request, answerer, question, place, **kw)
    events = source
    pending: asyncio.Future[tuple[str, Any]] | None = None
    if waiting:
        events = _errors_as_events(events, request)
    else:
        # Model free: `take` does not wait, so the first event is awaited here and an error before it (a bug,
        # or an input the pipeline rejects, such as a prompt over the model's context) is an HTTP status too.
        pending = asyncio.ensure_future(anext(events))
        gone = asyncio.ensure_future(client_gone(request))
        try:
            done, _ = await asyncio.wait({pending, gone}, timeout=ping, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _stop(gone)
        if gone in done and pending not in done:  # left while it waited: stop the work now, not at the first ping
            await _stop(pending)
            await events.aclose()  # the worker stops at its next token and the model gate is free again
            place.leave()
            raise ClientGone("the client closed the connection before the first event")
        if pending not in done:  # long work before the first event: start, so that keep-alives go out
            events = _errors_as_events(_after(pending, events), request)
        else:
            try:
                first = pending.result()
            except BaseException:
                place.leave()
                raise
            if first[0] == "error":
                await events.aclose()  # the model gate is free again
                place.leave()
                raise first[1]
            # After the first event the response has started: a bug later is an ``error`` event too.
            events = _errors_as_events(prepend(first, events), request)

    async def frames() -> AsyncIterator[ServerSentEvent]:
        # aclosing: a stream closed at a `yield` (client gone) frees the model now, not when collected.
        try:
            async with aclosing(events):
                for frame in head:
                    yield frame
                async for kind, value in events:
                    for frame in render(kind, value):
                        yield frame
        finally:
            # Closed at a head frame (chat's role chunk), `events` had not started and closed nothing beneath it:
            # the first event's task is stopped and the stream beneath closed here (a no-op once they are done).
            if pending is not None:
                await _stop(pending)
            await source.aclose()
        for frame in tail:
            yield frame

    return _EventStream(frames(), place, ping=ping, sep=SSE_SEP, headers=SSE_HEADERS)


class _EventStream(EventSourceResponse):
    """An event stream that gives back a queue place it never used, however the response ended
    (a client gone before the stream began would otherwise keep it forever)."""

    def __init__(self, content: AsyncIterator[ServerSentEvent], place: Place, **kw: Any) -> None:
        super().__init__(content, **kw)
        self._place = place

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._place.leave()


async def _events(request: Request, answerer: Answerer, question: str, place: Place, **kw: Any) -> Events:
    gate: ModelGate = request.app.state.gate
    await place.take()
    try:
        # aclosing: closed at a `yield`, the stream stops its worker before the gate below is released (left to
        # the collector, the gate was free while llama.cpp still ran, and a queued request could enter it).
        async with aclosing(stream_answer(lambda on_token: answerer(question, on_token=on_token, **kw))) as stream:
            async for kind, value in stream:
                if kind == "answer":
                    _observe(request, value)
                yield kind, value
    finally:
        gate.release()


async def _after(first: asyncio.Future[tuple[str, Any]], rest: Events) -> Events:
    """The event ``first`` will be, then (when it was a token or progress) the rest of the stream.

    A client that leaves before it stops ``first`` once and waits for it (`_stop`): awaited directly, every
    repeated cancel of the response's task group went on into it, through its shielded wait for the worker.
    """
    async with aclosing(rest):
        try:
            await asyncio.wait({first})
        except asyncio.CancelledError:
            await _stop(first)
            raise
        async with aclosing(prepend(first.result(), rest)) as events:
            async for item in events:
                yield item


async def _errors_as_events(events: Events, request: Request) -> Events:
    """Errors once the response has started: an ``error`` event. A bug is logged as the request log logs one:
    type and stack, its message only with RAG_LOG_QUESTIONS (it may quote the question)."""
    try:
        async with aclosing(events):  # closed here, the stream beneath stops its worker now (see `_events`)
            async for item in events:
                yield item
    except RagError as exc:
        yield "error", exc
    except Exception as exc:
        fields = bug_fields(exc, log_questions=request.app.state.settings.log_questions)
        log.error("bug while streaming an answer", extra={"fields": {"request_id": _request_id(request), **fields}})
        yield "error", InternalError(f"internal error ({type(exc).__name__}); see the server log")


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def _observe(request: Request, answer: Answer) -> None:
    """Metrics, and the Answer left on the request for its log line (rag.serve.logs)."""
    _metrics(request).observe(answer)
    request.state.answer = answer


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics
