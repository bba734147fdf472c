"""`GET /health`, `GET /metrics` (Prometheus) and the web chat page at `/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag.serve.guard import authorized
from rag.serve.metrics import Metrics
from rag.serve.shapes import RETRY_AFTER_S
from rag.wiring import Answerer

router = APIRouter()

WEB_PAGE = Path(__file__).resolve().parent.parent / "web" / "index.html"


@router.get("/health")  # HEAD too, as on every GET route (rag.serve.app.HeadAsGet): uptime probes send it
async def health(request: Request) -> JSONResponse:
    """503 while the models load (or after loading failed), then 200 with what is loaded.

    Public, so the load error (which can name server paths) is shown only with the API key, when one is set.
    """
    answerer: Answerer | None = request.app.state.answerer
    if answerer is None:
        error: str | None = request.app.state.load_error
        if error is None:  # loading: ready in seconds
            return JSONResponse(
                {"status": "loading", "detail": None}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
            )
        if not authorized(request.scope["headers"], request.app.state.settings.api_key):
            error = "loading the models or the index failed; send `Authorization: Bearer <RAG_API_KEY>` to see why"
        return JSONResponse({"status": "error", "detail": error}, status_code=503)
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


# The page holds the API key and can delete documents: no other site may frame it (clickjacking), and it
# talks to this origin only. Its script and style are inline, in the one file.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    html = WEB_PAGE.read_text(encoding="utf-8") if WEB_PAGE.is_file() else "<h1>rag</h1>"
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    m: Metrics = request.app.state.metrics
    m.queue.set(request.app.state.gate.waiting)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
