"""HTTP service: `/v1/ask`, OpenAI-compatible `/v1/chat/completions`, documents, health, metrics, web page.

Models and the index load once, in the lifespan (in a thread, so `/health` answers 503
while loading); routes reach them through `app.state`. Errors leave in one JSON shape:
``{"error": {"type": "...", "message": "..."}}``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.config import Settings
from rag.documents import add_document, recover_uploads, remove_document
from rag.errors import InputError, RagError
from rag.generate import GenerationSettings
from rag.runtime import Answerer
from rag.serialize import answer_to_dict
from rag.service import (
    ERROR_RESPONSES,
    Busy,
    Guard,
    Metrics,
    ModelGate,
    PayloadTooLarge,
    error_response,
    prepend,
    stream_answer,
)
from rag.types import Answer

WEB_PAGE = Path(__file__).parent / "web" / "index.html"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.(txt|md|html|htm|pdf)")  # fullmatch: "$" passes "\n"
PUBLIC_PATHS = frozenset({"/health", "/"})  # the page asks for the key itself; browsers cannot send one
# Not 5: a client that waits exactly uvicorn's keep-alive timeout (5 s) reuses its connection as the server
# closes it, and the request is lost (1 in 500 under load in bench_load.py, 12 in 300 with a busy event loop).
RETRY_AFTER_S = 10


# ----------------------------------------------------------------------------- request bodies


class Turn(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = Field(max_length=8000)


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    history: list[Turn] = Field(default_factory=list, max_length=20)
    k: int | None = Field(default=None, ge=1, le=20)
    lang: str | None = Field(default=None, pattern="^(de|en)$")
    stream: bool = False


class ChatRequest(BaseModel):
    messages: list[Turn] = Field(min_length=1, max_length=40)
    model: str | None = Field(default=None, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)


# ----------------------------------------------------------------------------- app factory


def create_app(settings: Settings, build: Callable[[Settings], Answerer] | None = None) -> FastAPI:
    """The service. ``build`` makes the Answerer (default: the real models); tests pass fakes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.answerer = None
        app.state.load_error = None

        def load() -> None:
            try:
                from rag import runtime

                answerer = (build or runtime.answerer)(settings)
                recover_uploads(settings, answerer)
                app.state.answerer = answerer
            except RagError as exc:
                app.state.load_error = str(exc)

        loader = threading.Thread(target=load, name="model-loader", daemon=True)
        loader.start()
        yield
        loader.join(timeout=0)

    app = FastAPI(title="rag", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES)
    app.state.settings = settings
    app.state.gate = ModelGate(settings.max_queue)
    app.state.metrics = Metrics()

    # Added last is outermost: CORS answers preflights (which carry no key) and puts its headers on a
    # 401 too, so a page on an allowed origin can read why; then the counter (refused requests count
    # as route "other"); the guard is innermost, as its body counting must raise inside the route.
    app.add_middleware(
        Guard,
        api_key=settings.api_key,
        public=PUBLIC_PATHS,
        limit_for=lambda path: settings.max_upload_bytes if path == "/v1/documents" else settings.max_request_bytes,
    )

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        # The route's template, not the raw path: one label per route, however many paths scanners try.
        route = getattr(request.scope.get("route"), "path", "other")
        app.state.metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    _install_error_handlers(app)
    _install_routes(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(exc, Busy) or exc.http_status == 503 else None
        return error_response(exc.http_status, type(exc).__name__, str(exc), headers)

    @app.exception_handler(PayloadTooLarge)
    async def too_large(request: Request, exc: PayloadTooLarge) -> JSONResponse:
        return error_response(413, "PayloadTooLarge", str(exc.detail))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        # Runs in Starlette's outermost layer, which re-raises `exc` afterwards, so the server log keeps
        # the traceback. The client gets the one error shape and the exception's type, not its message
        # (which may quote a document or a question).
        return error_response(500, "InternalError", f"internal error ({type(exc).__name__}); see the server log")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return error_response(422, "ValidationError", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "HTTPError", str(exc.detail))


def _ready(request: Request) -> Answerer:
    answerer: Answerer | None = request.app.state.answerer
    if answerer is None:
        error = request.app.state.load_error
        raise RagError(error) if error else Busy("models are still loading; retry shortly")
    return answerer


def _sse(event: str | None, data: Any) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


# ----------------------------------------------------------------------------- routes


def _install_routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        answerer: Answerer | None = request.app.state.answerer
        if answerer is None:
            status = "error" if request.app.state.load_error else "loading"
            return JSONResponse({"status": status, "detail": request.app.state.load_error}, status_code=503)
        index = answerer.retriever.index
        return JSONResponse(
            {
                "status": "ok",
                "model": answerer.generator.model_id,
                "embedding_model": answerer.retriever.embedder.model_id,
                "index": index.version,
                "documents": len(index.documents),
                "chunks": len(index.chunks),
            }
        )

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(WEB_PAGE.read_text(encoding="utf-8") if WEB_PAGE.is_file() else "<h1>rag</h1>")

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        m: Metrics = request.app.state.metrics
        m.queue.set(request.app.state.gate.waiting)
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        model = request.app.state.settings.answer_model
        return {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "local"}]}

    async def run_answer(request: Request, question: str, history: list[dict[str, str]], **kw: Any) -> Answer:
        answerer = _ready(request)
        async with request.app.state.gate:
            from starlette.concurrency import run_in_threadpool

            result = await run_in_threadpool(lambda: answerer(question, history=history, **kw))
        request.app.state.metrics.observe(result)
        return result

    async def streamed(
        request: Request, question: str, history: list[dict[str, str]], **kw: Any
    ) -> AsyncIterator[tuple[str, Any]]:
        answerer = _ready(request)
        gate: ModelGate = request.app.state.gate
        await gate.__aenter__()
        try:
            async for kind, value in stream_answer(
                lambda on_token: answerer(question, history=history, on_token=on_token, **kw)
            ):
                if kind == "answer":
                    request.app.state.metrics.observe(value)
                yield kind, value
        finally:
            await gate.__aexit__()

    @app.post("/v1/ask")
    async def ask(body: AskRequest, request: Request) -> Response:
        history = [t.model_dump() for t in body.history]
        kw: dict[str, Any] = {"lang": body.lang}
        if body.k is not None:
            kw["settings"] = replace(_ready(request).settings, max_passages=body.k, k=max(body.k, 5))
        if not body.stream:
            return JSONResponse(answer_to_dict(await run_answer(request, body.question, history, **kw)))
        events = streamed(request, body.question, history, **kw)
        first = await anext(events)  # raise Busy / loading errors as a status code, before the stream starts

        async def body_iter() -> AsyncIterator[str]:
            async for kind, value in prepend(first, events):
                if kind == "token":
                    yield _sse("token", {"text": value})
                elif kind == "answer":
                    yield _sse("answer", answer_to_dict(value))
                elif kind == "error":
                    yield _sse("error", {"error": {"type": type(value).__name__, "message": str(value)}})

        return StreamingResponse(body_iter(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> Response:
        users = [i for i, t in enumerate(body.messages) if t.role == "user"]
        if not users:
            raise InputError("messages hold no user message to answer")
        last = users[-1]
        question = body.messages[last].content
        history = [t.model_dump() for t in body.messages[:last] if t.role != "system"]
        base = _ready(request).settings
        generation = GenerationSettings(
            max_tokens=body.max_tokens or base.generation.max_tokens,
            temperature=base.generation.temperature if body.temperature is None else body.temperature,
        )
        kw = {"settings": replace(base, generation=generation)}
        model = request.app.state.settings.answer_model
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not body.stream:
            result = await run_answer(request, question, history, **kw)
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": result.text}, "finish_reason": "stop"}
                    ],
                    "usage": _usage(result),
                    **_rag_fields(result),
                }
            )
        events = streamed(request, question, history, **kw)
        first = await anext(events)

        async def body_iter() -> AsyncIterator[str]:
            def chunk(delta: dict[str, str], finish: str | None, **extra: Any) -> str:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                return _sse(None, {"id": ident, "object": "chat.completion.chunk", "created": created,
                                   "model": model, "choices": [choice], **extra})  # fmt: skip

            yield chunk({"role": "assistant"}, None)
            async for kind, value in prepend(first, events):
                if kind == "token":
                    yield chunk({"content": value}, None)
                elif kind == "answer":
                    yield chunk({}, "stop", usage=_usage(value), **_rag_fields(value))
                elif kind == "error":
                    yield _sse(None, {"error": {"type": type(value).__name__, "message": str(value)}})
            yield "data: [DONE]\n\n"

        return StreamingResponse(body_iter(), media_type="text/event-stream")

    @app.get("/v1/documents")
    async def documents(request: Request) -> dict[str, Any]:
        index = _ready(request).retriever.index
        info = index.manifest["documents"]
        return {
            "documents": [
                {"doc_id": d, **{k: info[d][k] for k in ("title", "chunks", "tokens", "lang")}} for d in sorted(info)
            ]
        }

    @app.get("/v1/documents/{doc_id}")
    async def document(doc_id: str, request: Request) -> dict[str, Any]:
        doc = _ready(request).retriever.index.documents.get(doc_id)
        if doc is None:
            raise DocumentNotFound(f"no document {doc_id!r}; GET /v1/documents lists them")
        return {"doc_id": doc.doc_id, "title": doc.title, "text": doc.text}

    @app.post("/v1/documents", status_code=201)
    async def upload(request: Request, file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
        from starlette.concurrency import run_in_threadpool

        name = Path(file.filename or "").name
        if not _SAFE_NAME.fullmatch(name) or name != (file.filename or ""):
            raise InputError(
                f"file name {file.filename!r} not accepted: use letters, digits, . _ - and a .txt/.md/.html/.pdf suffix"
            )
        limit = request.app.state.settings.max_upload_bytes
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise InputError(f"{name} is over the upload limit of {limit} bytes")
        answerer = _ready(request)
        async with request.app.state.gate:
            report = await run_in_threadpool(lambda: add_document(request.app.state.settings, answerer, name, data))
        return {"doc_id": name, "added": bool(report.added), "changed": bool(report.changed), "chunks": report.chunks}

    @app.delete("/v1/documents/{doc_id}")
    async def delete(doc_id: str, request: Request) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        answerer = _ready(request)
        if doc_id not in answerer.retriever.index.documents:
            raise DocumentNotFound(f"no document {doc_id!r}; GET /v1/documents lists them")
        async with request.app.state.gate:
            await run_in_threadpool(lambda: remove_document(request.app.state.settings, answerer, doc_id))
        return {"doc_id": doc_id, "deleted": True}


class DocumentNotFound(RagError):
    http_status = 404


def _usage(a: Answer) -> dict[str, int]:
    return {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            "total_tokens": a.prompt_tokens + a.completion_tokens}  # fmt: skip


def _rag_fields(a: Answer) -> dict[str, Any]:
    d = answer_to_dict(a)
    keys = ("text", "refused", "grounded", "conflicts", "unsupported", "rewritten_question", "timings", "cached")
    return {"citations": d["citations"], "rag": {k: d[k] for k in keys}}
