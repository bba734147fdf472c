"""The HTTP layer's cost: first streamed token and total time over loopback against the same pipeline in-process.

    .venv/bin/python bench/bench_http.py [--limit 8] [--concurrency 1,2,4] [--per-client 2]

Starts `rag serve` (default models and index, answer cache off) on a free loopback port and, in
this process, the same pipeline (`wiring.answerer`, cache off). For each answerable gold question
(German and English alternating) it measures, one after the other:

  * ``in-process``: `Answerer(question, on_token=...)`, what `rag ask` does;
  * ``/v1/ask stream``: time to the first ``event: token`` and to the final ``event: answer``;
  * ``/v1/chat/completions stream``: time to the first chunk with content and to ``[DONE]``.

The overhead is the median of the per-question differences to ``in-process``. Then several clients
at once (each sends ``--per-client`` questions, one after the other) measure throughput and latency
as the model serves one request at a time and the others queue. Reports the server's RSS before
and after. Writes bench/results/http.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    free_port,
    machine,
    stop_server,
    table,
    wait_healthy,
    write_result,
)
from _common import process_rss_mib as rss_mib  # noqa: E402
from bench_answer import pick_questions  # noqa: E402

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.evaluation.gold import load_gold  # noqa: E402
from rag.evaluation.retrieval_metrics import percentile  # noqa: E402


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RAG_ANSWER_CACHE": "0", "HF_HUB_OFFLINE": "1", "RAG_MAX_QUEUE": "16"}
    rag = Path(sys.executable).with_name("rag")
    proc = subprocess.Popen([str(rag), "serve", "--port", str(port)], env=env, cwd=ROOT)
    wait_healthy(proc, port, 300)
    return proc


def in_process(answerer: wiring.Answerer, question: str) -> dict[str, float]:
    started = time.perf_counter()
    first: list[float] = []
    answerer(question, on_token=lambda _piece: first or first.append(time.perf_counter()))
    done = time.perf_counter()
    return {"first_token_s": (first[0] if first else done) - started, "total_s": done - started}


def streamed(client: httpx.Client, path: str, body: dict[str, Any], is_token: Any) -> dict[str, float]:
    started = time.perf_counter()
    first = None
    with client.stream("POST", path, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and is_token(line):
                first = time.perf_counter()
    done = time.perf_counter()
    return {"first_token_s": (first or done) - started, "total_s": done - started}


def ask_token(line: str) -> bool:
    return line == "event: token"


def chat_token(line: str) -> bool:
    return line.startswith("data: {") and '"content"' in line


async def concurrent(url: str, questions: list[str], clients: int, per_client: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def client(offset: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600) as http:
            for i in range(per_client):
                q = questions[(offset * per_client + i) % len(questions)]
                t = time.perf_counter()
                r = await http.post("/v1/ask", json={"question": q})
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": clients * per_client,
        "statuses": statuses,
        "wall_s": wall,
        "answers_per_min": 60 * len(latencies) / wall,
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": percentile(latencies, 0.95) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--limit", type=int, default=8, help="questions for the overhead comparison")
    parser.add_argument("--concurrency", default="1,2,4", help="client counts, comma-separated ('' = skip)")
    parser.add_argument("--per-client", type=int, default=2, help="questions each concurrent client sends")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "http.json")
    args = parser.parse_args()

    questions = [i.question for i in pick_questions(load_gold(args.gold), args.limit)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"starting rag serve on {url} and the in-process pipeline ...", flush=True)
    server = start_server(port)
    rss_start = rss_mib(server.pid)
    try:
        answerer = wiring.answerer(Settings(answer_cache=0))
        http = httpx.Client(base_url=url, timeout=600)
        for q in questions[:1]:  # warm-up: the fixed instructions in both model caches
            in_process(answerer, q)
            streamed(http, "/v1/ask", {"question": q, "stream": True}, ask_token)
        rows: list[dict[str, Any]] = []
        for n, q in enumerate(questions, 1):
            chat_body = {"messages": [{"role": "user", "content": q}], "stream": True}  # the served model
            per = {
                "in-process": in_process(answerer, q),
                "/v1/ask stream": streamed(http, "/v1/ask", {"question": q, "stream": True}, ask_token),
                "/v1/chat/completions stream": streamed(http, "/v1/chat/completions", chat_body, chat_token),
            }
            for name, r in per.items():
                rows.append({"question": q, "variant": name, **r})
            print(f"[{n}/{len(questions)}] " + ", ".join(f"{k} {v['first_token_s']:.2f} s" for k, v in per.items()))
        summary = summarize(rows)
        print()
        print(table(summary, [("variant", "variant"), ("n", "n"), ("first_token_s", "first token s (median)"),
                              ("total_s", "total s"), ("first_token_overhead_ms", "first token overhead ms"),
                              ("total_overhead_ms", "total overhead ms")]))  # fmt: skip
        loads = []
        for c in [int(x) for x in args.concurrency.split(",") if x.strip()]:
            loads.append(asyncio.run(concurrent(url, questions, c, args.per_client)))
            print(f"{c} clients: {loads[-1]}", flush=True)
        if loads:
            print()
            print(table(loads, [("clients", "clients"), ("requests", "requests"), ("answers_per_min", "answers/min"),
                                ("latency_median_s", "latency s (median)"), ("latency_p95_s", "p95 s"),
                                ("wall_s", "wall s")]))  # fmt: skip
        rss_end = rss_mib(server.pid)
        healthy = httpx.get(f"{url}/health", timeout=5).status_code == 200
        print(f"\nserver RSS {rss_start:.0f} MiB after start, {rss_end:.0f} MiB at the end; healthy: {healthy}")
        out = write_result("http", {"machine": machine(), "summary": summary, "concurrency": loads, "rows": rows,
                                    "server_rss_mib": [rss_start, rss_end], "healthy_after": healthy},
                           args.out)  # fmt: skip
        print(f"wrote {out}")
    finally:
        stop_server(server)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = {r["question"]: r for r in rows if r["variant"] == "in-process"}
    out = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        out.append({
            "variant": variant,
            "n": len(mine),
            "first_token_s": statistics.median(r["first_token_s"] for r in mine),
            "total_s": statistics.median(r["total_s"] for r in mine),
            "first_token_overhead_ms": 1000 * statistics.median(
                r["first_token_s"] - base[r["question"]]["first_token_s"] for r in mine),
            "total_overhead_ms": 1000 * statistics.median(r["total_s"] - base[r["question"]]["total_s"] for r in mine),
        })  # fmt: skip
    return out


if __name__ == "__main__":
    main()
