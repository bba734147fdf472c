"""`POST /v1/search`: retrieval only, for clients that bring their own model (the `rag search --json` shape)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from rag.answer.pipeline import MAX_QUESTION_CHARS, checked_question
from rag.errors import InputError
from rag.serialize import hit_to_dict
from rag.serve.deps import Ready
from rag.serve.shapes import FilterFields

router = APIRouter()


class SearchRequest(FilterFields):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(default=None, ge=1, le=50)
    dense: bool = True
    keyword: bool = True


@router.post("/v1/search")
async def search(body: SearchRequest, answerer: Ready) -> dict[str, Any]:
    """Ranked passages with each side's rank and score; does not wait for the answer model.

    Runs on a shallow copy of the retriever: its own settings and timings, and the index version
    of the moment, even if the service switches to a newer one meanwhile.
    """
    question = checked_question(body.question)  # the message /v1/ask and `rag search` give
    if not (body.dense or body.keyword):
        raise InputError("dense and keyword are both off; keep at least one side of the search")
    where = body.where()
    retriever = copy.copy(answerer.retriever)
    retriever.settings = replace(retriever.settings, dense=body.dense, keyword=body.keyword)
    hits = await run_in_threadpool(lambda: retriever.search(question, body.k, where=where))
    return {"question": question, "hits": [hit_to_dict(h) for h in hits], "timings": retriever.last_timings}
