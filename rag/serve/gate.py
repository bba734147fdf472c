"""One model user at a time: llama.cpp is not re-entrant, so requests take turns at a bounded queue.

`ModelGate` lets one request use the model while at most ``max_queue`` wait; beyond that it raises
`Busy`, which the API answers with 503 and Retry-After. `hold` waits for the model without counting
against the queue, for the service's own work between requests (switching to a new index version).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rag.errors import Busy


class ModelGate:
    def __init__(self, max_queue: int) -> None:
        self._lock = asyncio.Lock()
        self._max_queue = max_queue
        self.waiting = 0

    @property
    def free(self) -> bool:
        """Nobody uses the model: entering now does not wait."""
        return not self._lock.locked()

    def reserve(self) -> Place:
        """A place in the queue, taken now (`Busy` when the queue is full); `Place.take` waits for the model."""
        if self._lock.locked() and self.waiting >= self._max_queue:
            raise Busy(f"the model is busy and {self.waiting} requests are waiting; retry shortly")
        self.waiting += 1
        return Place(self)

    async def __aenter__(self) -> ModelGate:
        await self.reserve().take()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Free the model (synchronous: safe in a `finally` of a cancelled task)."""
        self._lock.release()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """The model to ourselves, however long the queue: nothing answers until the block ends."""
        async with self._lock:
            yield


class Place:
    """A place in the model queue: taken by `ModelGate.reserve`, left when the model is ours or on `leave`.

    A streamed response reserves its place before it starts (so a full queue is still a 503) and
    waits for the model inside the stream; `leave` gives the place back if the stream never got there.
    """

    def __init__(self, gate: ModelGate) -> None:
        self._gate = gate
        self._queued = True

    async def take(self) -> None:
        """Wait for the model; the queue place is left either way (got the model, or cancelled)."""
        try:
            await self._gate._lock.acquire()
        finally:
            self.leave()

    def leave(self) -> None:
        if self._queued:
            self._queued = False
            self._gate.waiting -= 1
