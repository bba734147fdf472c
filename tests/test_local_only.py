"""Local only: nothing reaches the network at run time, and serving beyond loopback without a key warns."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fakes import fake_answerer, wait_ready
from typer.testing import CliRunner

from rag.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.mark.parametrize(
    ("host", "key", "warned"),
    [("127.0.0.1", None, False), ("::1", None, False), ("0.0.0.0", None, True), ("0.0.0.0", "s3cret", False)],
)
def test_serve_beyond_loopback_without_a_key_warns(
    monkeypatch: pytest.MonkeyPatch, host: str, key: str | None, warned: bool
) -> None:
    import socket

    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: [s.close() for s in sockets or ()])
    monkeypatch.setattr("rag.serve.app.create_app", lambda settings: None)
    if key:
        monkeypatch.setenv("RAG_API_KEY", key)
    else:
        monkeypatch.delenv("RAG_API_KEY", raising=False)
    with socket.socket() as probe:  # a free port: the command binds it before it serves
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = runner.invoke(app, ["serve", "--host", host, "--port", str(port)])
    assert result.exit_code == 0, result.output
    assert ("without RAG_API_KEY" in result.output) is warned


def test_cors_is_closed_by_default(app_settings) -> None:
    """No RAG_CORS_ORIGINS: a page on another origin can neither preflight nor read a response."""
    from fastapi.testclient import TestClient

    from rag.serve.app import create_app

    assert app_settings.cors_origins == []
    with TestClient(create_app(app_settings, build=fake_answerer)) as c:
        wait_ready(c)
        origin = {"Origin": "https://evil.example"}
        pre = c.options("/v1/ask", headers={**origin, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers
        for response in (
            c.get("/v1/documents", headers=origin),
            c.post("/v1/ask", json={"question": "x"}, headers=origin),
        ):
            assert "access-control-allow-origin" not in response.headers
            assert "access-control-allow-credentials" not in response.headers


# Every way out is closed before anything of the project is imported; the environment holds no
# HF_HUB_OFFLINE, so the adapters themselves must not try (local_files_only, a local GGUF path).
_NO_NETWORK = textwrap.dedent(
    """
    import socket, sys
    def refuse(*args, **kwargs):
        raise OSError("network access attempted: " + repr(args[:2]))
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from rag import wiring
    from rag.config import Settings
    from rag.models.generate import GenerationSettings

    settings = Settings(answer_model="qwen2.5-coder-0.5b", n_ctx=512)
    vectors = wiring.embedder(settings).embed(["DeepSeek trainierte R1 mit 2.048 GPUs."], "document")
    text = "".join(wiring.generator(settings).stream([{"role": "user", "content": "Say hi."}], GenerationSettings(8)))
    print("ok", vectors.shape, repr(text))
    """
)


@pytest.mark.real_models
def test_models_load_and_run_with_the_network_closed() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "RAG_ANSWER"))}
    done = subprocess.run(
        [sys.executable, "-c", _NO_NETWORK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "network access attempted" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.startswith("ok (1, 768)"), done.stdout
