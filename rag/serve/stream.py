"""The bridge from the pipeline's token callback (a worker thread) to a streamed response (the event loop).

`stream_answer` runs the pipeline in a thread and yields its tokens as they come, then the Answer.
A client that disconnects stops the iteration; the next token then raises `Cancelled` inside the
pipeline, which stops generation and frees the model. The pipeline calls ``on_token("")`` after every
generated token while it checks a sentence, so a disconnect stops generation within a token, not a
sentence; those empty pieces are not passed on. A `Progress` given to the same callback (a summary's
finished part) is passed on as a ("progress", Progress) event between the tokens.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio

from rag.errors import RagError
from rag.types import Answer


class Cancelled(Exception):
    """Raised inside the token callback when the client went away."""


# Event kinds after which the stream goes on; any other ("answer", "error", "cancelled") ends it.
ONGOING = ("token", "progress")


@dataclass(frozen=True)
class Progress:
    """A step of long work, sent through the token callback: ``kind`` names it ("part"), ``value`` is it."""

    kind: str
    value: Any


async def stream_answer(
    run: Callable[[Callable[[Any], None]], Answer],
) -> AsyncGenerator[tuple[str, Any], None]:
    """Run ``run(on_token)`` in a thread; yield ("token", text) and ("progress", Progress) as they come,
    then ("answer", Answer).

    If the consumer stops iterating (client disconnected), generation is cancelled at the next token.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def on_token(piece: str | Progress) -> None:
        if stop.is_set():
            raise Cancelled
        if isinstance(piece, Progress):
            loop.call_soon_threadsafe(queue.put_nowait, ("progress", piece))
        elif piece:  # "" only lets a disconnected client stop generation between checked sentences
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
            if kind not in ONGOING:
                break
    finally:
        stop.set()
        # The model is free again before the gate is released. Shielded: sse-starlette cancels the
        # response's task group when the client goes away, and anyio would cancel this wait too.
        with anyio.CancelScope(shield=True):
            await worker


async def prepend(
    first: tuple[str, Any], rest: AsyncGenerator[tuple[str, Any], None]
) -> AsyncGenerator[tuple[str, Any], None]:
    """``first`` then, when it was a token or progress, the rest of the stream (awaited once to learn the status).
    Closing it closes ``rest``."""
    async with aclosing(rest):
        yield first
        if first[0] in ONGOING:
            async for item in rest:
                yield item
