"""Replicas on one index folder: a running service follows the live version another process wrote.

Several `rag serve` replicas may share an index folder (a shared volume); `rag index` may update it
while they run. Every RAG_INDEX_POLL_S seconds the service reads ``CURRENT``; when it names another
version than the one in memory, that version is loaded (outside the model gate, answers go on) and
then swapped in while the service holds the model gate, so no answer runs across the switch.
Writes stay single-writer through the index lock (`rag.retrieval.files.IndexLock`).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from rag import wiring
from rag.config import Settings
from rag.errors import RagError
from rag.retrieval.store import current_version
from rag.serve.gate import ModelGate
from rag.wiring import Answerer

log = logging.getLogger("rag.index")


def live_version(settings: Settings) -> str | None:
    """The version ``CURRENT`` names now (None: no index yet)."""
    path = current_version(settings.index_dir)
    return path.name if path is not None else None


async def refresh_index(app: FastAPI) -> bool:
    """Switch to the live version when it is not the one in memory; True when it switched."""
    settings: Settings = app.state.settings
    answerer: Answerer | None = app.state.answerer
    if answerer is None or live_version(settings) in (None, answerer.retriever.index.version):
        return False
    index = await run_in_threadpool(wiring.open_index, settings)
    gate: ModelGate = app.state.gate
    async with gate.hold():
        # Checked again under the gate: an upload through this replica may have moved on meanwhile.
        if index.version == answerer.retriever.index.version or index.version != live_version(settings):
            return False
        previous = answerer.retriever.index.version
        answerer.retriever.use_index(index)
    fields = {"version": index.version, "previous": previous, "documents": len(index.documents)}
    log.info("index switched", extra={"fields": fields})
    return True


async def follow_index(app: FastAPI, interval_s: float) -> None:
    """Poll forever (until cancelled); a version that fails to load is logged and tried again next time."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await refresh_index(app)
        except RagError as exc:
            log.warning("index not switched", extra={"fields": {"error": str(exc)}})
