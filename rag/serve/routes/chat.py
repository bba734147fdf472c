"""OpenAI-compatible `POST /v1/chat/completions` (plain and streamed) and `GET /v1/models`.

The last user message is the question, earlier turns its history. Content keeps the ``[n]``
markers; citations travel in a top-level ``citations`` field and the checks in ``rag`` (in the
last streamed chunk before ``data: [DONE]``), which OpenAI clients expose as extra fields.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from rag.errors import InputError
from rag.models.generate import GenerationSettings
from rag.serialize import answer_to_dict
from rag.serve.deps import Ready, answer_once, stream_events
from rag.serve.routes.ask import Turn
from rag.serve.shapes import error_body, sse
from rag.types import Answer

router = APIRouter()


class ChatRequest(BaseModel):
    messages: list[Turn] = Field(min_length=1, max_length=40)
    model: str | None = Field(default=None, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    model = request.app.state.settings.answer_model
    return {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "local"}]}


@router.post("/v1/chat/completions")
async def chat(body: ChatRequest, request: Request, answerer: Ready) -> Response:
    users = [i for i, t in enumerate(body.messages) if t.role == "user"]
    if not users:
        raise InputError("messages hold no user message to answer")
    last = users[-1]
    question = body.messages[last].content
    history = [t.model_dump() for t in body.messages[:last] if t.role != "system"]
    base = answerer.settings
    generation = GenerationSettings(
        max_tokens=body.max_tokens or base.generation.max_tokens,
        temperature=base.generation.temperature if body.temperature is None else body.temperature,
    )
    kw: dict[str, Any] = {"history": history, "settings": replace(base, generation=generation)}
    model = request.app.state.settings.answer_model
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    if not body.stream:
        result = await answer_once(request, answerer, question, **kw)
        message = {"role": "assistant", "content": result.text}
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": _usage(result),
                **_rag_fields(result),
            }
        )

    def chunk(delta: dict[str, str], finish: str | None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [choice], **extra})  # fmt: skip

    def frames(kind: str, value: Any) -> Iterator[str]:
        if kind == "token":
            yield chunk({"content": value}, None)
        elif kind == "answer":
            yield chunk({}, "stop", usage=_usage(value), **_rag_fields(value))
        elif kind == "error":
            yield sse(error_body(type(value).__name__, str(value)))

    return await stream_events(
        request, answerer, question, frames, head=[chunk({"role": "assistant"}, None)], tail=["data: [DONE]\n\n"], **kw
    )


def _usage(a: Answer) -> dict[str, int]:
    return {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            "total_tokens": a.prompt_tokens + a.completion_tokens}  # fmt: skip


def _rag_fields(a: Answer) -> dict[str, Any]:
    d = answer_to_dict(a)
    keys = ("text", "refused", "grounded", "conflicts", "unsupported", "rewritten_question", "timings", "cached")
    return {"citations": d["citations"], "rag": {k: d[k] for k in keys}}
