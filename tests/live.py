"""A live server on a free loopback port for tests that need real sockets (browser, openai client)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from rag.serve.app import create_app
from rag.wiring import Answerer

WAIT_S = 10


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def wait_healthy(
    url: str,
    alive: Callable[[], bool],
    wait_s: float = WAIT_S,
    path: str = "/health",
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if httpx.get(f"{url}{path}", timeout=1, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not alive():
            raise AssertionError(f"the server did not become ready at {url}")
        time.sleep(0.05)


@contextmanager
def serve(settings: Any, build: Callable[[Any], Answerer], wait_s: float = WAIT_S) -> Iterator[str]:
    """The app on a free loopback port, uvicorn in a background thread; yields its base URL."""
    with serve_asgi(create_app(settings, build=build), wait_s=wait_s) as url:
        yield url


@contextmanager
def serve_asgi(app: Any, wait_s: float = WAIT_S, path: str = "/health") -> Iterator[str]:
    """Any ASGI app on a free loopback port, ready once ``path`` answers 200; yields its base URL."""
    import uvicorn

    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_healthy(url, thread.is_alive, wait_s, path=path)
        yield url
    finally:
        server.should_exit = True
        thread.join(wait_s)
        sock.close()
