"""Small helpers shared by the benchmark scripts: timing summaries, memory, tables, JSON results."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class PassThrough:
    """A generator that hands every call to ``inner`` (a `rag.models.generate.Generator`): a wrapper that watches
    or changes a call overrides only that method."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id

    @property
    def last_usage(self) -> Any:
        return self.inner.last_usage

    def stream(self, messages: Any, settings: Any, *, prefix: str = "", between: Any = None) -> Any:
        return self.inner.stream(messages, settings, prefix=prefix, between=between)

    def yes_probability(self, messages: Any, *, words: tuple[str, str] = ("Yes", "No"), between: Any = None) -> Any:
        return self.inner.yes_probability(messages, words=words, between=between)


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (no psutil needed)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def trim_memory() -> None:
    """Hand freed heap pages back to the OS so the next RSS delta starts from a clean base."""
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: RSS deltas are then less exact
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "n": len(ms),
    }


def auc(good: Sequence[float], bad: Sequence[float]) -> float | None:
    """How often a good case scores above a bad one (ties count half); None without both kinds."""
    if not good or not bad:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(good) + [0] * len(bad), [*good, *bad]))


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits}g}".rstrip(".")
    if isinstance(value, int) and abs(value) >= 10000:
        return f"{value:,}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table; ``columns`` are (key, header) pairs."""
    cells = [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.rjust(w) for (_, h), w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def mib(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else n_bytes / 2**20


def write_result(name: str, payload: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``bench/results/<name>.json`` (or ``out``) atomically: write beside, then rename."""
    path = out if out is not None else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_rss_mib(pid: int) -> float:
    """VmRSS of another process from /proc (psutil is not a dependency)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_healthy(proc: Any, port: int, timeout_s: float, log: Path | None = None, path: str = "/health") -> None:
    """Poll ``path`` of a server subprocess until 200; exit with its log tail if it dies or stalls."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            raise SystemExit(f"the server exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the server did not answer {path} with 200 within {timeout_s:.0f} s")


def stop_server(proc: Any, wait_s: float = 30) -> None:
    """SIGINT (uvicorn's graceful shutdown), then SIGKILL if it does not end in time."""
    import signal
    import subprocess

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def report_passages(row: dict[str, Any]) -> str:
    """A stored `rag eval` row's passages formatted as the answer prompt shows them, article headers
    (date, author) included, so replays score the prompt the pipeline built."""
    from types import SimpleNamespace

    from rag.answer.prompt import format_passages
    from rag.types import Chunk

    passages = []
    for p in row["detail"]["passages"]:
        h = p["hit"]
        chunk = Chunk(
            h["chunk_id"], h["doc_id"], h["title"], h["start"], h["end"], h["text"], 0,
            published=h.get("published"), author=h.get("author"),
        )  # fmt: skip
        passages.append(SimpleNamespace(number=p["number"], text=p["text"], hit=SimpleNamespace(chunk=chunk)))
    return format_passages(passages)  # type: ignore[arg-type]  # duck-typed stand-ins for Passage
