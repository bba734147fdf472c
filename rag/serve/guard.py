"""ASGI middleware in front of every route: the API key, then the size of the request body."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.serve.shapes import error_response


class PayloadTooLarge(HTTPException):
    """A request body passed its limit while it was being read.

    An HTTPException because FastAPI lets those through from body parsing (anything else
    it reports as "There was an error parsing the body").
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


def bearer_token(header: bytes) -> bytes:
    """The token of an ``Authorization: Bearer <token>`` header, the scheme in any case; b"" for others.

    Exactly one space before the token; anything else is part of the token (and so a wrong key).

    >>> bearer_token(b"bearer s3cret"), bearer_token(b"BEARER s3cret"), bearer_token(b"Basic czM=")
    (b's3cret', b's3cret', b'')
    """
    scheme, _, token = header.partition(b" ")
    return token if scheme.lower() == b"bearer" else b""


def authorized(headers: Iterable[tuple[bytes, bytes]], api_key: str | None) -> bool:
    """Does a request with these (ASGI) headers carry the API key? Always, when no key is set.

    The token of its ``Authorization: Bearer`` header compared in constant time; public routes that
    show more to a client with the key (`/health`'s load error) ask here, as the guard does.
    """
    if not api_key:
        return True
    given = next((v for k, v in headers if k.lower() == b"authorization"), b"")
    return hmac.compare_digest(bearer_token(given), api_key.encode())


class Guard:
    """ASGI middleware in front of every route: the API key first, then the size of the body.

    Every path but ``public`` needs ``Authorization: Bearer <api_key>`` when a key is set (the
    scheme in any case, as RFC 7235 has it; the key compared as bytes in constant time). A body
    over ``limit_for(path)`` bytes that a route reads gets 413 whether or not Content-Length said so:
    an announced length is refused at the route's first read, before a byte is read, a chunked body
    is counted as it arrives and reading stops at the limit, so a client cannot fill memory or the
    disk (uploads spool to temporary files) by leaving the length out. Both are raised inside the
    route, so the 413 carries its route in the metrics and the log; a route that reads no body (a GET,
    a DELETE) is served whatever length is announced, and the server reads none of it.
    """

    def __init__(
        self, app: ASGIApp, *, api_key: str | None, public: frozenset[str], limit_for: Callable[[str], int]
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.public = public
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path not in self.public and not authorized(scope["headers"], self.api_key):
            message = "missing or wrong API key; send `Authorization: Bearer <RAG_API_KEY>`"
            challenge = {"WWW-Authenticate": 'Bearer realm="rag"'}  # RFC 9110: a 401 names its scheme
            await error_response(401, "Unauthorized", message, challenge)(scope, receive, send)
            return
        limit = self.limit_for(path)
        length = Headers(scope=scope).get("content-length")
        if length is not None and not length.isdigit():
            refusal = error_response(400, "BadRequest", f"Content-Length {length[:40]!r} is not a number")
            await refusal(scope, receive, send)
            return
        # Refused at the route's first read, not here: a 413 sent here would be counted and logged as route "other".
        over = length is not None and int(length) > limit
        received = 0

        async def counted() -> Message:
            nonlocal received
            if over:
                raise PayloadTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, counted, send)
