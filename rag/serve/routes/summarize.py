"""`POST /v1/summarize`: a cited summary of one document or of a topic, as JSON or streamed as SSE.

It runs through the same gate, stream and error mapping as `/v1/ask` (`rag.serve.deps`): one
model user at a time, ``token`` events carrying checked sentences only, a ``part`` event as each part of
an article too long for one prompt is summarised and checked, then one ``summary`` event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, model_validator
from sse_starlette import ServerSentEvent

from rag.answer.summarize import (
    MAX_TOPIC_CHARS,
    Summary,
    SummarySettings,
    SummaryTemplates,
    checked_topic,
    require_document,
    summarize_document,
    summarize_topic,
)
from rag.serve.deps import Ready, answer_once, stream_events
from rag.serve.shapes import error_body, sse
from rag.serve.stream import Progress
from rag.types import Answer
from rag.wiring import Answerer

router = APIRouter()


class SummarizeRequest(BaseModel):
    doc_id: str | None = Field(default=None, min_length=1, max_length=200)
    topic: str | None = Field(default=None, min_length=1, max_length=MAX_TOPIC_CHARS)
    lang: str | None = Field(default=None, pattern="^(de|en)$")
    k: int | None = Field(default=None, ge=1, le=20)
    stream: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> SummarizeRequest:
        if (self.doc_id is None) == (self.topic is None):
            raise ValueError("give `doc_id` or `topic`, one of them")
        if self.doc_id is not None and self.k is not None:  # as `rag summarize DOC --k`: it would be ignored
            raise ValueError("`k` only with `topic` (a document's summary reads all its passages); drop it")
        return self


@dataclass
class _Summarizing:
    """What the shared answer plumbing calls like an Answerer, ``(target, on_token=...) -> Answer``;
    the whole Summary is kept for the response."""

    answerer: Answerer
    templates: SummaryTemplates
    settings: SummarySettings
    body: SummarizeRequest
    summary: Summary | None = field(default=None)

    def __call__(self, target: str, on_token: Callable[[Any], None] | None = None) -> Answer:
        # Through the stream's callback: each finished part is a `part` event (progress on long articles).
        on_part = (lambda part: on_token(Progress("part", part))) if on_token is not None else None
        common: dict[str, Any] = {
            "generator": self.answerer.generator,
            "templates": self.templates,
            "count_tokens": self.answerer.count_tokens,
            "settings": self.settings,
            "lang": self.body.lang,
            "on_token": on_token,
            "on_part": on_part,
        }
        if self.body.doc_id is not None:
            self.summary = summarize_document(target, index=self.answerer.retriever.index, **common)
        else:
            self.summary = summarize_topic(target, retriever=self.answerer.retriever, **common)
        return self.summary.answer


def _templates(request: Request) -> SummaryTemplates:
    """The summary prompts, read once per app on first use."""
    templates: SummaryTemplates | None = getattr(request.app.state, "summary_templates", None)
    if templates is None:
        templates = SummaryTemplates.load(request.app.state.settings.prompts_dir)
        request.app.state.summary_templates = templates
    return templates


@router.post("/v1/summarize")
async def summarize(body: SummarizeRequest, request: Request, answerer: Ready) -> Response:
    settings = SummarySettings.from_settings(request.app.state.settings)
    if body.k is not None:
        settings = replace(settings, topic_passages=body.k)
    if body.doc_id is not None:
        require_document(answerer.retriever.index, body.doc_id)  # a 404 before the queue, not an error event
    else:
        checked_topic(body.topic or "")  # a blank topic is a 400 now, also while the stream would wait its turn
    run = _Summarizing(answerer, _templates(request), settings, body)
    target = body.doc_id if body.doc_id is not None else body.topic or ""
    # The shared plumbing only calls it as `run(target, on_token=...)` and reads the Answer it returns.
    as_answerer = cast(Answerer, run)
    if body.stream:

        def frames(kind: str, value: Any) -> Iterator[ServerSentEvent]:
            if kind == "token":
                yield sse({"text": value}, "token")
            elif kind == "progress" and value.kind == "part":
                yield sse(asdict(value.value), "part")
            elif kind == "answer" and run.summary is not None:
                yield sse(run.summary.to_dict(), "summary")
            elif kind == "error":
                yield sse(error_body(type(value).__name__, str(value)), "error")

        return await stream_events(request, as_answerer, target, frames)
    await answer_once(request, as_answerer, target)
    assert run.summary is not None  # set by the call that returned
    return JSONResponse(run.summary.to_dict())
