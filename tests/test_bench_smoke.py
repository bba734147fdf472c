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
