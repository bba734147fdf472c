"""`POST /v1/ask`: one question, answered with citations (the Answer object), or streamed as SSE.

``system`` turns in ``history`` are accepted and dropped, as `/v1/chat/completions` drops client system
messages: the service's own instructions decide how it answers, and a client's never reach the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sse_starlette import ServerSentEvent

from rag.answer.pipeline import MAX_QUESTION_CHARS, checked_question
from rag.serialize import answer_to_dict
from rag.serve.deps import Ready, answer_once, stream_events
from rag.serve.shapes import FilterFields, error_body, sse

router = APIRouter()


class Turn(BaseModel):
    # `system` is accepted (clients send their chat as it is) and dropped before answering, as chat drops it.
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = Field(max_length=8000)


class AskRequest(FilterFields):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[Turn] = Field(default_factory=list, max_length=20)
    k: int | None = Field(default=None, ge=1, le=20)
    lang: str | None = Field(default=None, pattern="^(de|en)$")
    stream: bool = False


def _frames(kind: str, value: Any) -> Iterator[ServerSentEvent]:
    if kind == "token":
        yield sse({"text": value}, "token")
    elif kind == "answer":
        yield sse(answer_to_dict(value), "answer")
    elif kind == "error":
        yield sse(error_body(type(value).__name__, str(value)), "error")


@router.post("/v1/ask")
async def ask(body: AskRequest, request: Request, answerer: Ready) -> Response:
    checked_question(body.question)  # a blank question is a 400 now, also while the stream would wait its turn
    where = body.where()
    if where is not None:
        answerer.retriever.rows_for(where)  # a filter that allows nothing is a 400 now, not an error event later
    history = [t.model_dump() for t in body.history if t.role != "system"]  # as chat: never sent to the model
    kw: dict[str, Any] = {"lang": body.lang, "history": history, "where": where}
    if body.k is not None:
        kw["settings"] = answerer.settings.with_passages(body.k)
    if body.stream:
        return await stream_events(request, answerer, body.question, _frames, **kw)
    return JSONResponse(answer_to_dict(await answer_once(request, answerer, body.question, **kw)))
