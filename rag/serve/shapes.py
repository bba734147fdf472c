"""Shapes shared by the routes: the request fields of the document filter, the one error shape, and
server-sent event frames (sse-starlette)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sse_starlette import ServerSentEvent
from starlette.responses import JSONResponse

from rag.errors import InputError
from rag.retrieval.filters import MAX_DOCS, make_filter
from rag.types import Filter

# Frames end in "\n\n" (sse-starlette's default is "\r\n"): what clients and the web page have always read.
SSE_SEP = "\n"
# Seconds a 503 asks a client to wait. Not 5: a client that waits exactly uvicorn's keep-alive timeout (5 s)
# reuses its connection as the server closes it, and the request is lost (1 in 500 under load in
# bench_load.py, 12 in 300 with a busy event loop).
RETRY_AFTER_S = 10


class FilterFields(BaseModel):
    """Request fields that limit retrieval to some articles (on /v1/ask, /v1/search, /v1/chat/completions)."""

    docs: list[Annotated[str, Field(max_length=300)]] | None = Field(
        default=None, max_length=MAX_DOCS, description="Only these document ids (GET /v1/documents lists them)."
    )
    since: str | None = Field(
        default=None, max_length=40, description="Only articles published on or after this date (YYYY-MM-DD)."
    )
    until: str | None = Field(
        default=None, max_length=40, description="Only articles published on or before this date (YYYY-MM-DD)."
    )

    def where(self) -> Filter | None:
        """The checked filter (InputError, 400, for a bad date or an empty ``docs``); None when no field restricts
        anything."""
        if self.docs == []:  # not "no restriction": a client that selected nothing must not get the whole corpus
            raise InputError("docs must name at least one document id, or be left out to use all documents")
        return make_filter(self.docs, self.since, self.until)


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# Declared for every operation, so the OpenAPI document tells clients (and fuzzers) the truth.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Malformed input"),
        (401, "Missing or wrong API key (when RAG_API_KEY is set)"),
        (404, "No such document, or a model this service does not serve"),
        (409, "Another process or replica is writing the index; retry once it is done"),
        (413, "Request body over its limit"),
        (422, "Invalid request or unreadable document"),
        (502, "The generation server (RAG_LLM_URL) refused or failed the request"),
        (503, "Busy or still loading; retry after Retry-After seconds"),
    )
}


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def error_response(status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The one shape every error leaves the service in."""
    return JSONResponse(error_body(kind, message), status_code=status, headers=headers)


# Not line ends in SSE, but in httpx's `iter_lines` and `str.splitlines`: escaped, so no client splits a frame.
_LINE_BREAKERS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def sse(data: Any, event: str | None = None) -> ServerSentEvent:
    """One server-sent event frame with ``data`` as JSON (and an ``event:`` line when named).

    >>> sse({"text": "Hallo"}, "token").encode()
    b'event: token\\ndata: {"text": "Hallo"}\\n\\n'
    >>> sse({"text": "a\u2028b"}).encode()
    b'data: {"text": "a\\\\u2028b"}\\n\\n'
    """
    return ServerSentEvent(json.dumps(data, ensure_ascii=False).translate(_LINE_BREAKERS), event=event, sep=SSE_SEP)


# OpenAI's end of a streamed completion.
DONE = ServerSentEvent("[DONE]", sep=SSE_SEP)
