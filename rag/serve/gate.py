"""One model user at a time: llama.cpp is not re-entrant, so requests take turns at a bounded queue.

`ModelGate` lets one request use the model while at most ``max_queue`` wait; beyond that it raises
`Busy`, which the API answers with 503 and Retry-After.
"""

from __future__ import annotations

import asyncio

from rag.errors import Busy


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
