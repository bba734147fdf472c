"""OpenAI-compatible `POST /v1/chat/completions` (plain and streamed) and `GET /v1/models`.

The last user message is the question, earlier turns its history (``system`` and ``developer``
messages are not: the service's own prompt rules). Content is a string or a list of text parts.
Content keeps the ``[n]`` markers; citations travel in a top-level ``citations`` field and the
checks in ``rag`` (in the streamed chunk that carries ``finish_reason``), which OpenAI clients expose
as extra fields. ``model`` must be one this service serves (`served_models`), as OpenAI requires.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, model_validator
from sse_starlette import ServerSentEvent

from rag.answer.pipeline import checked_question
from rag.config import Settings
from rag.errors import InputError, UnknownModel
from rag.models.generate import GenerationSettings
from rag.serialize import answer_to_dict
from rag.serve.deps import Ready, answer_once, stream_events
from rag.serve.shapes import DONE, FilterFields, error_body, sse
from rag.types import Answer

router = APIRouter()

MAX_CONTENT_CHARS = 8000
StopText = Annotated[str, Field(min_length=1, max_length=200)]


class TextPart(BaseModel):
    """One part of a message's content; only text parts are understood."""

    type: Literal["text"]
    text: str = Field(max_length=MAX_CONTENT_CHARS)


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_CONTENT_CHARS)] | Annotated[list[TextPart], Field(max_length=40)]

    @model_validator(mode="after")
    def _fits(self) -> ChatMessage:
        if len(self.text) > MAX_CONTENT_CHARS:
            raise ValueError(f"content has more than {MAX_CONTENT_CHARS} characters")
        return self

    @property
    def text(self) -> str:
        """The content as one string; text parts are joined with newlines."""
        return self.content if isinstance(self.content, str) else "\n".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``: with ``include_usage``, the token counts come in one more chunk at the end."""

    include_usage: bool | None = None  # null: false, as OpenAI reads it


class ChatRequest(FilterFields):
    """OpenAI's request; ``docs``, ``since`` and ``until`` (`FilterFields`) are this service's extension fields."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=40)
    model: str | None = Field(default=None, max_length=200)
    stream: bool | None = False  # null: false, as OpenAI reads it
    stream_options: StreamOptions | None = None  # only with stream true (400 otherwise, as OpenAI answers)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)  # OpenAI's newer name; wins over max_tokens
    # Generation ends before the first of these, as llama.cpp and OpenAI do (at most 4, as OpenAI allows).
    stop: StopText | Annotated[list[StopText], Field(max_length=4)] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, allow_inf_nan=False)
    # One checked answer per question: a client asking for several choices is told so, not sent one.
    n: int | None = Field(default=None, ge=1, le=1)  # null: 1, as OpenAI reads it


def served_models(settings: Settings) -> list[str]:
    """Model names a request may give: the answer model as clients see it first, then the other spellings."""
    names = [settings.answer_model_id, settings.answer_model]
    if settings.llm_model:
        names.append(settings.llm_model)
    return list(dict.fromkeys(names))


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    model = {"id": settings.answer_model_id, "object": "model", "created": request.app.state.started, "owned_by": "rag"}
    return {"object": "list", "data": [model]}


@router.post("/v1/chat/completions")
async def chat(body: ChatRequest, request: Request, answerer: Ready) -> Response:
    settings: Settings = request.app.state.settings
    served = served_models(settings)
    if body.model is not None and body.model not in served:
        raise UnknownModel(f"model {body.model[:80]!r} is not served here; use {served[0]!r} (GET /v1/models)")
    if body.stream_options is not None and not body.stream:
        raise InputError("stream_options is only allowed when stream is true")
    users = [i for i, t in enumerate(body.messages) if t.role == "user"]
    if not users:
        raise InputError("messages hold no user message to answer")
    last = users[-1]
    question = body.messages[last].text
    checked_question(question)  # blank or too long is a 400 now, also while the stream would wait its turn
    history = [{"role": t.role, "content": t.text} for t in body.messages[:last] if t.role in ("user", "assistant")]
    base = answerer.settings
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    generation = GenerationSettings(
        max_tokens=body.max_completion_tokens or body.max_tokens or base.generation.max_tokens,
        temperature=base.generation.temperature if body.temperature is None else body.temperature,
        stop=tuple(dict.fromkeys([*base.generation.stop, *stop])),
    )
    where = body.where()
    if where is not None:
        answerer.retriever.rows_for(where)  # a filter that allows nothing is a 400 now, not an error event later
    kw: dict[str, Any] = {"history": history, "settings": replace(base, generation=generation), "where": where}
    model = settings.answer_model_id
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
                "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(result)}],
                "usage": _usage(result),
                **_rag_fields(result),
            }
        )

    # With include_usage, OpenAI's shape: every chunk says "usage": null, and one more chunk after the
    # finish_reason holds no choices and the usage. Without it, usage stays on the finish_reason chunk,
    # where this service has always sent it (clients read it there; OpenAI's clients accept it).
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> ServerSentEvent:
        usage = {"usage": None} if include_usage else {}
        return sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": choices, **usage, **extra})  # fmt: skip

    def choice(delta: dict[str, str], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "finish_reason": finish}]

    def frames(kind: str, value: Any) -> Iterator[ServerSentEvent]:
        if kind == "token":
            yield chunk(choice({"content": value}))
        elif kind == "answer" and include_usage:
            yield chunk(choice({}, _finish_reason(value)), **_rag_fields(value))
            yield chunk([], usage=_usage(value))
        elif kind == "answer":
            yield chunk(choice({}, _finish_reason(value)), usage=_usage(value), **_rag_fields(value))
        elif kind == "error":
            yield sse(error_body(type(value).__name__, str(value)))

    return await stream_events(
        request, answerer, question, frames, head=[chunk(choice({"role": "assistant"}))], tail=[DONE], **kw
    )


def _finish_reason(a: Answer) -> str:
    """OpenAI's reason: "length" when max_tokens cut the answer, else "stop"."""
    return "length" if a.truncated else "stop"


def _usage(a: Answer) -> dict[str, int]:
    return {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            "total_tokens": a.prompt_tokens + a.completion_tokens}  # fmt: skip


def _rag_fields(a: Answer) -> dict[str, Any]:
    d = answer_to_dict(a)
    keys = ("text", "refused", "grounded", "conflicts", "unsupported", "rewritten_question", "timings", "cached")
    return {"citations": d["citations"], "conflict_sources": d["conflict_sources"], "rag": {k: d[k] for k in keys}}
