"""The FAISS benchmark runs end to end on a tiny grid and writes a sane result (no models needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_faiss_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "faiss.json"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "bench_faiss.py"),
        "--sizes",
        "1000",
        "2000",
        "--queries",
        "20",
    ]
    cmd += ["--hnsw-ef", "16", "--nprobe", "4", "16", "--query-budget-s", "0.1", "--out", str(out)]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    flat = [r for r in result["rows"] if r["index"] == "flat"]
    assert [r["n"] for r in flat] == [1000, 2000]
    assert all(r["recall"] == 1.0 for r in flat)  # exact search agrees with faiss.knn
    assert {r["index"] for r in result["rows"]} >= {"hnsw", "ivf-flat", "ivf-sq8", "numpy-matvec"}
    assert all(0.0 <= r["recall"] <= 1.0 and r["p95_ms"] >= r["p50_ms"] > 0 for r in result["rows"] if "recall" in r)
    assert result["recommendation"]["switch_threshold_n"] > 0
    assert "RULE:" in done.stdout


def test_bench_load_fake_run(tmp_path: Path) -> None:
    """A few seconds of load on the fake app over loopback; a queue of 1 so that some requests get 503."""
    out = tmp_path / "load.json"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_load.py"), "--fake", "--clients", "6", "--duration", "3"]
    cmd += ["--max-queue", "1", "--drain-s", "60", "--out", str(out)]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    s = result["summary"]
    assert s["ok_200"] > 0 and s["busy_503_retry_after"] > 0, result["outcomes"]
    assert s["other_status"] == 0 and s["lost"] == 0, result["examples"]
    assert s["requests"] == s["ok_200"] + s["busy_503_retry_after"]
    assert {r["kind"] for r in result["per_kind"] if r["200"]} == {"ask", "ask-stream", "chat", "chat-stream"}
    assert s["latency_p95_s"] >= s["latency_median_s"] > 0
    assert result["healthy_after"] and result["questions_in_server_log"] == 0
    assert 0 < result["server_rss_mib"]["start"] <= result["server_rss_mib"]["peak"]
    assert "503 with Retry-After" in done.stdout
