"""The HTTP service: the app factory, its lifespan, middleware and error mapping.

Models and the index load once, in the lifespan (in a thread, so `/health` answers 503 while
loading); routes (`rag.serve.routes`) reach them through the `Ready` dependency. Errors leave in
one JSON shape, ``{"error": {"type": "...", "message": "..."}}``, mapped here once by type (a bug:
in `rag.serve.logs.RequestLog`, which also logs each request). While it runs, the service follows
new index versions another process writes (`rag.serve.follow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag import __version__, wiring
from rag.config import Settings
from rag.errors import IndexLockedError, RagError
from rag.serve.follow import follow_index
from rag.serve.gate import ModelGate
from rag.serve.guard import Guard, PayloadTooLarge
from rag.serve.logs import RequestLog
from rag.serve.metrics import Metrics
from rag.serve.routes import ask, chat, documents, search, system
from rag.serve.routes.summarize import router as summarize_router
from rag.serve.shapes import ERROR_RESPONSES, RETRY_AFTER_S, error_response
from rag.serve.uploads import recover_uploads
from rag.wiring import Answerer

PUBLIC_PATHS = frozenset({"/health", "/"})  # the page asks for the key itself; browsers cannot send one


def create_app(settings: Settings, build: Callable[[Settings], Answerer] | None = None) -> FastAPI:
    """The service. ``build`` makes the Answerer (default: the real models); tests pass fakes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.answerer = None
        app.state.load_error = None

        def load() -> None:
            try:
                answerer = (build or wiring.answerer)(settings)
                recover_uploads(settings, answerer)
                app.state.answerer = answerer
            except RagError as exc:
                app.state.load_error = str(exc)

        loader = threading.Thread(target=load, name="model-loader", daemon=True)
        loader.start()
        follower = asyncio.create_task(follow_index(app, settings.index_poll_s)) if settings.index_poll_s else None
        yield
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        loader.join(timeout=0)

    # No /docs or /redoc: FastAPI's pages load scripts and fonts from CDNs, on the origin whose page keeps the
    # API key, and nothing may leave the machine. /openapi.json stays.
    app = FastAPI(
        title="rag",
        version=__version__,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.gate = ModelGate(settings.max_queue)
    app.state.metrics = Metrics()
    app.state.started = int(time.time())  # `created` of the model in GET /v1/models

    # Added last is outermost: CORS answers preflights (which carry no key) and puts its headers on a
    # 401 too, so a page on an allowed origin can read why; then the counter (a 401 counts as route
    # "other"); the guard is innermost, as its body limit must raise inside the route (a 413 counts there).
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
            CORSWithErrorShape,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            # Not CORS-safelisted: without these a page on that origin cannot read when to retry, or which id to quote.
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(HeadAsGet)
    # Outermost: every response, a 401 or a CORS refusal too, carries the request id and is logged.
    app.add_middleware(RequestLog, log_questions=settings.log_questions)
    _install_error_handlers(app)
    for router in (system.router, ask.router, chat.router, search.router, documents.router):
        app.include_router(router)
    app.include_router(summarize_router)
    return app


class HeadAsGet:
    """ASGI middleware: HEAD on every GET route, as RFC 9110 asks (FastAPI's routes answer it 405); uptime
    probes and ``curl -I`` send it.

    The request runs as GET in a copy of the scope and its response goes out without the body (the headers,
    Content-Length too, as GET sends them). The server keeps its own scope, which still says HEAD, so it sends
    no body either (uvicorn's httptools backend failed "shorter than Content-Length" when the method was
    changed in place); the route the router notes is copied back for the request log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        inner = {**scope, "method": "GET"}
        try:
            await self.app(inner, receive, without_body)
        finally:
            scope.update({k: v for k, v in inner.items() if k != "method"})


class CORSWithErrorShape(CORSMiddleware):
    """Starlette's CORS middleware, whose refused preflight leaves in the service's error shape (its own is
    the plain text "Disallowed CORS origin").

    Starlette still decides, with the same status (400) and CORS headers; the message names each refused
    value, asked of the middleware's own settings (the app allows every header, so headers are never refused).
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        origin, method = request_headers["origin"], request_headers["access-control-request-method"]
        refused = []
        if not self.is_allowed_origin(origin=origin):
            refused.append(f"origin {origin[:200]!r} is not in RAG_CORS_ORIGINS")
        if method not in self.allow_methods:
            refused.append(f"method {method[:40]!r} is not allowed")
        if "access-control-request-private-network" in request_headers and not self.allow_private_network:
            refused.append("private network access (Access-Control-Request-Private-Network) is not allowed")
        message = "CORS preflight refused: " + ("; ".join(refused) or "not allowed")
        cors = {k: v for k, v in response.headers.items() if k.startswith("access-control-") or k == "vary"}
        return error_response(response.status_code, "CORSRefused", message, cors)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        retry = exc.http_status == 503 or isinstance(exc, IndexLockedError)
        headers = {"Retry-After": str(RETRY_AFTER_S)} if retry else None
        message = str(exc)
        if isinstance(exc, IndexLockedError):  # it names the lock file's path: for the server's operator, not a client
            message = "another process is writing the index; retry after Retry-After seconds"
        return error_response(exc.http_status, type(exc).__name__, message, headers)

    @app.exception_handler(PayloadTooLarge)
    async def too_large(request: Request, exc: PayloadTooLarge) -> JSONResponse:
        return error_response(413, "PayloadTooLarge", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return error_response(422, "ValidationError", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI reports any failure to read a JSON body but a JSONDecodeError as 400 "There was an error parsing
        # the body"; json.loads fails with RecursionError on arrays or objects nested past Python's recursion
        # limit, and that is malformed JSON like any other.
        if isinstance(exc.__cause__, RecursionError):
            limit = sys.getrecursionlimit()
            return error_response(422, "ValidationError", f"body: JSON nested too deep (at most about {limit} levels)")
        # Its headers too: a 405 must name the methods the route allows (RFC 9110 `Allow`).
        return error_response(exc.status_code, "HTTPError", str(exc.detail), exc.headers)
