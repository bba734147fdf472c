"""What the routes share: the loaded Answerer (readiness), one answer at a time, and the SSE stream.

Routes get the Answerer through the `Ready` dependency: 503 (`Busy`) while the models load, the
load error once loading failed. Both answer endpoints run the pipeline through `answer_once`
or `stream_events`, which take the model gate, record metrics, and (streaming) turn the
pipeline's events into server-sent event frames with one renderer per endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag.errors import Busy, RagError
from rag.serve.gate import ModelGate
from rag.serve.metrics import Metrics
from rag.serve.stream import prepend, stream_answer
from rag.types import Answer
from rag.wiring import Answerer


def ready(request: Request) -> Answerer:
    """The loaded Answerer; `Busy` (503) while loading, the load error once loading failed."""
    answerer: Answerer | None = request.app.state.answerer
    if answerer is None:
        error = request.app.state.load_error
        raise RagError(error) if error else Busy("models are still loading; retry shortly")
    return answerer


Ready = Annotated[Answerer, Depends(ready)]

# Renders one pipeline event ("token" with text, "answer" with the Answer, "error" with a RagError) as SSE frames.
Render = Callable[[str, Any], Iterable[str]]


async def answer_once(request: Request, answerer: Answerer, question: str, **kw: Any) -> Answer:
    """Answer in a worker thread once the model is free."""
    gate: ModelGate = request.app.state.gate
    async with gate:
        result = await run_in_threadpool(lambda: answerer(question, **kw))
    _metrics(request).observe(result)
    return result


async def stream_events(
    request: Request,
    answerer: Answerer,
    question: str,
    render: Render,
    *,
    head: Iterable[str] = (),
    tail: Iterable[str] = (),
    **kw: Any,
) -> StreamingResponse:
    """A text/event-stream response: ``head`` frames, each pipeline event through ``render``, ``tail`` frames.

    The first event is awaited before the response starts, so a full queue or a failed load is an
    HTTP status, not an error frame inside a 200 stream.
    """
    events = _events(request, answerer, question, **kw)
    first = await anext(events)

    async def frames() -> AsyncIterator[str]:
        for frame in head:
            yield frame
        async for kind, value in prepend(first, events):
            for frame in render(kind, value):
                yield frame
        for frame in tail:
            yield frame

    return StreamingResponse(frames(), media_type="text/event-stream")


async def _events(request: Request, answerer: Answerer, question: str, **kw: Any) -> AsyncIterator[tuple[str, Any]]:
    gate: ModelGate = request.app.state.gate
    await gate.__aenter__()
    try:
        async for kind, value in stream_answer(lambda on_token: answerer(question, on_token=on_token, **kw)):
            if kind == "answer":
                _metrics(request).observe(value)
            yield kind, value
    finally:
        await gate.__aexit__()


def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics
