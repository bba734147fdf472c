"""`/v1/documents`: list, read, upload (indexed at once) and delete the articles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from rag.errors import DocumentNotFound, InputError
from rag.serve.deps import Ready
from rag.serve.uploads import add_document, remove_document

router = APIRouter()

_SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")  # fullmatch: "$" passes "\n"


def _checked_name(filename: str | None) -> str:
    """The upload's file name, when it is safe and has a suffix the loader reads (in any case, as the loader
    takes it); InputError naming those suffixes otherwise."""
    from rag.ingest.load import SUPPORTED_SUFFIXES  # here: the loader imports pypdf and selectolax

    path = Path(filename or "")
    name = path.name
    if name != filename or path.suffix.lower() not in SUPPORTED_SUFFIXES or not _SAFE_STEM.fullmatch(path.stem):
        suffixes = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise InputError(
            f"file name {filename!r} not accepted: use letters, digits, . _ - and a suffix {suffixes} (in any case)"
        )
    return name


def _not_found(doc_id: str) -> DocumentNotFound:
    return DocumentNotFound(f"no document {doc_id!r}; GET /v1/documents lists them")


@router.get("/v1/documents")
async def documents(answerer: Ready) -> dict[str, Any]:
    info = answerer.retriever.index.manifest["documents"]
    return {
        "documents": [
            {
                "doc_id": d,
                **{k: info[d][k] for k in ("title", "chunks", "tokens", "lang")},
                # absent from a manifest written before metadata was extracted
                **{k: info[d].get(k) for k in ("published", "author", "url")},
            }
            for d in sorted(info)
        ]
    }


@router.get("/v1/documents/{doc_id}")
async def document(doc_id: str, answerer: Ready) -> dict[str, Any]:
    doc = answerer.retriever.index.documents.get(doc_id)
    if doc is None:
        raise _not_found(doc_id)
    return {
        "doc_id": doc.doc_id,
        "title": doc.title,
        "published": doc.published,
        "author": doc.author,
        "url": doc.url,
        "text": doc.text,
    }


@router.post("/v1/documents", status_code=201)
async def upload(request: Request, answerer: Ready, file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
    name = _checked_name(file.filename)
    settings = request.app.state.settings
    limit = settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{name} is over the upload limit of {limit} bytes")
    async with request.app.state.gate:
        report = await run_in_threadpool(lambda: add_document(settings, answerer, name, data))
        chunks = answerer.retriever.index.manifest["documents"].get(name, {}).get("chunks", 0)
    return {"doc_id": name, "added": bool(report.added), "changed": bool(report.changed), "chunks": chunks}


@router.delete("/v1/documents/{doc_id}")
async def delete(doc_id: str, request: Request, answerer: Ready) -> dict[str, Any]:
    if doc_id not in answerer.retriever.index.documents:
        raise _not_found(doc_id)
    async with request.app.state.gate:
        await run_in_threadpool(lambda: remove_document(request.app.state.settings, answerer, doc_id))
    return {"doc_id": doc_id, "deleted": True}
