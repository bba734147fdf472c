"""Logs: one line per request, as text or JSON, with a request id the client gets back.

`RequestLog` (outermost ASGI middleware) gives every request an id (the client's ``X-Request-ID``
when it is a plain token of at most 64 characters, else a new one), returns it in the
``X-Request-ID`` header, and when the response has ended logs one line on ``rag.request``: id,
method, route, status, seconds, and for answers the stage timings and whether it was refused.

Question and document text never reach the log unless RAG_LOG_QUESTIONS=1: the line names the
route's template (``/v1/documents/{doc_id}``), not the path, and a bug is logged with its type and
stack but without its message (which may quote a question or an article) and answered with the
one error shape here, so no server logs it a second time with the message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.config import Settings
from rag.serve.shapes import error_response

log = logging.getLogger("rag.request")
HEADER = "X-Request-ID"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """The ``rag`` loggers write to ``stream`` (stderr) at RAG_LOG_LEVEL, as text or JSON (RAG_LOG_FORMAT)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    logger = logging.getLogger("rag")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(settings.log_level.upper())
    logger.propagate = False
    return handler


class TextFormatter(logging.Formatter):
    """``2026-11-23T10:15:00Z INFO rag.request request id=… route=/v1/ask status=200 …``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields: dict[str, Any] = getattr(record, "fields", {})
        return line + "".join(f" {key}={_text(value)}" for key, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{_text(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or re.search(r"\s|\"", text) else text


class RequestLog:
    """ASGI middleware: the request id, its response header, and one log line when the response ends."""

    def __init__(self, app: ASGIApp, *, log_questions: bool = False) -> None:
        self.app = app
        self.log_questions = log_questions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.lower().encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("bug", extra={"fields": {"request_id": request_id, **self._bug(exc)}})
            if status is not None:  # the response had started: all that is left is to end it
                raise
            status = 500
            response = error_response(
                500, "InternalError", f"internal error ({type(exc).__name__}); see the server log"
            )
            await response(scope, receive, send_with_id)
        finally:
            log.info("request", extra={"fields": self._fields(scope, request_id, status, started)})

    def _fields(self, scope: Scope, request_id: str, status: int | None, started: float) -> dict[str, Any]:
        route = getattr(scope.get("route"), "path", None)
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": scope["method"],
            "route": route or "-",
            "status": status if status is not None else 499,  # nothing sent: the client went away first
            "seconds": round(time.perf_counter() - started, 4),
        }
        if route is None:  # no route matched: the path is all that says what was asked for
            fields["path"] = scope["path"][:200]
        answer = scope.get("state", {}).get("answer")
        if answer is not None:
            fields.update(
                refused=answer.refused,
                cached=answer.cached,
                timings={k: round(v, 4) for k, v in answer.timings.items()},
                completion_tokens=answer.completion_tokens,
            )
            if self.log_questions:
                fields["question"] = answer.question
        return fields

    def _bug(self, exc: Exception) -> dict[str, Any]:
        return bug_fields(exc, log_questions=self.log_questions)


def bug_fields(exc: BaseException, *, log_questions: bool) -> dict[str, Any]:
    """A bug for the log: its type and stack, its message only with RAG_LOG_QUESTIONS (it may quote a question)."""
    stack = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    message = str(exc) if log_questions else "(withheld: it may quote a question; RAG_LOG_QUESTIONS=1)"
    return {"error": kind, "error_message": message, "stack": stack}


def _request_id(scope: Scope) -> str:
    given = next((v for k, v in scope["headers"] if k.lower() == HEADER.lower().encode()), b"")
    text = given.decode("latin-1")
    return text if _CLIENT_ID.fullmatch(text) else uuid.uuid4().hex
