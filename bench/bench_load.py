"""Load on loopback: N clients at once for T seconds against `/v1/ask` and `/v1/chat/completions`.

    .venv/bin/python bench/bench_load.py                      # `rag serve`, real models, 50 clients, 60 s
    .venv/bin/python bench/bench_load.py --fake --duration 5  # the app with fake models (seconds, no models)

Starts the server as a subprocess on a free loopback port: `rag serve` with the default settings
(environment as given), or with ``--fake`` the same app factory serving the deterministic fakes of
the tests (`tests/fakes.py`) over an index built with the fake embedder, the generator slowed to
``--fake-token-ms`` per token so that requests queue as they do in front of the real model.

Each client sends one request after the other until the time is up, cycling through the four kinds
(`/v1/ask` and `/v1/chat/completions`, streaming and not) and through the gold questions (follow-ups
left out). A 503 is expected once ``max_queue`` requests wait: the client then waits Retry-After
seconds, as a well-behaved client does (``--ignore-retry-after`` hammers instead). Requests still
running when the time is up are awaited (up to ``--drain-s``).

Reported: requests by outcome (200 / 503 with Retry-After / other status / lost: no response,
transport error or a stream that ended without its final event), latency median and p95 of the
200s (to the last byte; for streams also to the first token), the server's RSS after start-up,
at its peak and at the end, whether `/health` answers 200 afterwards, and how often a question's
text appears in the server's log (should be never). Writes bench/results/load.json (``--fake``:
load_fake.json).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    fmt,
    free_port,
    machine,
    stop_server,
    table,
    wait_healthy,
    write_result,
)
from _common import process_rss_mib as rss_mib  # noqa: E402

from rag.evaluation.gold import load_gold  # noqa: E402
from rag.evaluation.retrieval_metrics import percentile  # noqa: E402

KINDS = ("ask", "ask-stream", "chat", "chat-stream")
STARTUP_S = 300


# ----------------------------------------------------------------------------- the server


def start_server(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if args.max_queue is not None:
        env["RAG_MAX_QUEUE"] = str(args.max_queue)
    if args.fake:
        cmd = [sys.executable, __file__, "--serve-fake", str(port), "--fake-token-ms", str(args.fake_token_ms)]
    else:
        cmd = [str(Path(sys.executable).with_name("rag")), "serve", "--port", str(port)]
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_healthy(proc, port, STARTUP_S, log)
    return proc


def serve_fake(port: int, token_ms: float) -> None:
    """The app factory with the test fakes over an index of corpus/ built with the fake embedder."""
    sys.path.insert(0, str(ROOT / "tests"))
    from dataclasses import replace

    import uvicorn
    from fakes import FakeEmbedder, FakeGenerator
    from test_api import fake_answerer

    from rag import wiring
    from rag.config import Settings
    from rag.ingest.load import load_documents
    from rag.serve.app import create_app

    class SlowGenerator(FakeGenerator):
        def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
            for piece in super().stream(messages, settings, prefix=prefix, between=between):
                time.sleep(token_ms / 1000)
                yield piece

    wiring.token_counter = lambda s: lambda t: len(t.split())  # type: ignore[assignment]
    wiring.embedder = lambda s: FakeEmbedder(768)  # type: ignore[assignment]
    work = Path(tempfile.mkdtemp(prefix="rag-load-fake-"))
    settings = Settings(index_dir=work / "index", corpus_dir=ROOT / "corpus", min_dense_score=0.1)
    docs, _ = load_documents([settings.corpus_dir])
    wiring.index_documents(settings, docs)

    def build(s: Settings) -> wiring.Answerer:
        return replace(fake_answerer(s), generator=SlowGenerator())

    uvicorn.run(create_app(settings, build=build), host="127.0.0.1", port=port, log_level="warning")


# ----------------------------------------------------------------------------- the clients


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    latency_s: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    first_token_s: list[float] = field(default_factory=list)
    uncached_s: list[float] = field(default_factory=list)
    cached: int = 0
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, outcome: str, detail: str = "") -> None:
        self.outcomes[outcome] += 1
        self.by_kind[(kind, outcome)] += 1
        if detail and outcome not in self.examples:
            self.examples[outcome] = detail[:300]


def _body(kind: str, question: str) -> tuple[str, dict[str, Any]]:
    stream = kind.endswith("stream")
    if kind.startswith("ask"):
        return "/v1/ask", {"question": question, "stream": stream}
    # No `model`: the served one answers (an unknown name would be a 404).
    return "/v1/chat/completions", {"messages": [{"role": "user", "content": question}], "stream": stream}


async def one_request(http: httpx.AsyncClient, kind: str, question: str, tally: Tally) -> float | None:
    """Send one request and record its outcome; returns the seconds to wait before the next (Retry-After)."""
    path, body = _body(kind, question)
    started = time.perf_counter()
    try:
        async with http.stream("POST", path, json=body) as r:
            if r.status_code != 200:
                text = (await r.aread()).decode(errors="replace")
                if r.status_code == 503 and "retry-after" in r.headers:
                    tally.add(kind, "503 Retry-After")
                    return float(r.headers["retry-after"])
                tally.add(kind, f"{r.status_code}", text)
                return None
            first, cached = None, False
            if kind.endswith("stream"):
                complete, failed = False, ""
                async for line in r.aiter_lines():
                    if first is None and (
                        line == "event: token" or (line.startswith("data: {") and '"content"' in line)
                    ):
                        first = time.perf_counter() - started
                    complete = complete or line in ("event: answer", "data: [DONE]")
                    cached = cached or (line.startswith("data: {") and '"cached": true' in line)
                    failed = failed or (line if line.startswith(("event: error", 'data: {"error"')) else "")
                if failed or not complete:
                    tally.add(kind, "lost (stream cut or error event)", failed or "no final event")
                    return None
            else:
                answer = json.loads(await r.aread())
                if not (answer.get("text") or answer.get("choices")):
                    tally.add(kind, "lost (200 without an answer)", json.dumps(answer)[:300])
                    return None
                cached = bool(answer.get("cached") or answer.get("rag", {}).get("cached"))
    except httpx.TimeoutException as exc:
        tally.add(kind, "lost (timeout)", repr(exc))
        return None
    except httpx.TransportError as exc:
        tally.add(kind, "lost (transport error)", repr(exc))
        return None
    tally.add(kind, "200")
    tally.latency_s[kind].append(time.perf_counter() - started)
    if cached:  # the answer cache (RAG_ANSWER_CACHE) served a question asked before
        tally.cached += 1
    else:
        tally.uncached_s.append(time.perf_counter() - started)
    if first is not None:
        tally.first_token_s.append(first)
    return None


async def run_load(url: str, args: argparse.Namespace, questions: list[str], tally: Tally) -> dict[str, float]:
    deadline = time.monotonic() + args.duration
    counter = itertools.count()
    limits = httpx.Limits(max_connections=args.clients + 5, max_keepalive_connections=args.clients + 5)
    timeout = httpx.Timeout(args.drain_s + args.duration, connect=10)

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            i = next(counter)
            wait = await one_request(http, KINDS[i % len(KINDS)], questions[i % len(questions)], tally)
            if wait and not args.ignore_retry_after:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(args.clients)]
        await asyncio.sleep(args.duration)
        sent_by_deadline = sum(tally.outcomes.values())
        done, pending = await asyncio.wait(tasks, timeout=args.drain_s)
        for task in pending:  # still waiting after the drain: no response in time
            task.cancel()
            tally.add("?", "lost (unfinished after drain)")
        for task in done:
            task.result()  # a bug in this script should not pass as a result
    return {"duration_s": args.duration, "wall_s": time.monotonic() - started, "finished_by_deadline": sent_by_deadline}


# ----------------------------------------------------------------------------- report


def summarize(tally: Tally) -> dict[str, Any]:
    ok = [s for values in tally.latency_s.values() for s in values]
    lost = sum(n for outcome, n in tally.outcomes.items() if outcome.startswith("lost"))
    other = sum(
        n for o, n in tally.outcomes.items() if o not in ("200", "503 Retry-After") and not o.startswith("lost")
    )
    return {
        "requests": sum(tally.outcomes.values()),
        "ok_200": tally.outcomes["200"],
        "busy_503_retry_after": tally.outcomes["503 Retry-After"],
        "other_status": other,
        "lost": lost,
        "latency_median_s": statistics.median(ok) if ok else None,
        "latency_p95_s": percentile(ok, 0.95) if ok else None,
        "ok_from_cache": tally.cached,
        "uncached_latency_median_s": statistics.median(tally.uncached_s) if tally.uncached_s else None,
        "uncached_latency_p95_s": percentile(tally.uncached_s, 0.95) if tally.uncached_s else None,
        "first_token_median_s": statistics.median(tally.first_token_s) if tally.first_token_s else None,
        "first_token_p95_s": percentile(tally.first_token_s, 0.95) if tally.first_token_s else None,
    }


def per_kind_rows(tally: Tally) -> list[dict[str, Any]]:
    rows = []
    for kind in KINDS:
        ok = tally.latency_s[kind]
        rows.append({
            "kind": kind,
            "200": tally.by_kind[(kind, "200")],
            "503": tally.by_kind[(kind, "503 Retry-After")],
            "other": sum(n for (k, o), n in tally.by_kind.items() if k == kind and o not in ("200", "503 Retry-After")),
            "median_s": statistics.median(ok) if ok else None,
            "p95_s": percentile(ok, 0.95) if ok else None,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds during which clients send requests")
    parser.add_argument("--drain-s", type=float, default=300.0, help="longest wait for requests still running")
    parser.add_argument("--fake", action="store_true", help="serve the test fakes instead of the real models")
    parser.add_argument("--fake-token-ms", type=float, default=20.0, help="--fake: seconds/1000 per token")
    parser.add_argument("--max-queue", type=int, help="RAG_MAX_QUEUE for the server (default: its setting)")
    parser.add_argument("--ignore-retry-after", action="store_true", help="send again at once after a 503")
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/load[_fake].json)")
    parser.add_argument("--serve-fake", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake, args.fake_token_ms)
        return

    questions = [item.question for item in load_gold(args.gold) if item.follow_up_of is None]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="rag-load-")) / "server.log"
    what = "the fake app" if args.fake else "rag serve (real models)"
    print(f"starting {what} on {url} ...", flush=True)
    t0 = time.monotonic()
    server = start_server(args, port, log)
    startup_s = time.monotonic() - t0
    rss_start = rss_mib(server.pid)
    peak = [rss_start]
    tally = Tally()

    async def sample_rss() -> None:
        while True:
            peak.append(rss_mib(server.pid))
            await asyncio.sleep(1)

    async def load() -> dict[str, float]:
        sampler = asyncio.create_task(sample_rss())
        try:
            return await run_load(url, args, questions, tally)
        finally:
            sampler.cancel()

    try:
        print(f"ready after {startup_s:.1f} s, RSS {rss_start:.0f} MiB; {args.clients} clients for "
              f"{args.duration:g} s ...", flush=True)  # fmt: skip
        timing = asyncio.run(load())
        rss_end = rss_mib(server.pid)
        health = httpx.get(f"{url}/health", timeout=30)
        healthy = health.status_code == 200
    finally:
        stop_server(server)
    server_log = log.read_text(encoding="utf-8", errors="replace")
    leaked = sum(q in server_log for q in questions)

    summary = summarize(tally)
    print()
    print(table(per_kind_rows(tally), [("kind", "kind"), ("200", "200"), ("503", "503+Retry-After"),
                                       ("other", "other/lost"), ("median_s", "latency s (median)"),
                                       ("p95_s", "p95 s")]))  # fmt: skip
    print()
    for outcome, n in sorted(tally.outcomes.items()):
        print(f"  {outcome:<34} {n}" + (f"   e.g. {tally.examples[outcome]}" if outcome in tally.examples else ""))
    print(f"\n{summary['requests']} requests in {timing['wall_s']:.0f} s: {summary['ok_200']} answered (200), "
          f"{summary['busy_503_retry_after']} busy (503 with Retry-After), {summary['other_status']} other status, "
          f"{summary['lost']} lost; {summary['ok_from_cache']} of the 200s came from the answer cache")  # fmt: skip
    print("latency of the 200s: " + ", ".join(
        f"{label} median {fmt(summary[k + '_median_s'])} s, p95 {fmt(summary[k + '_p95_s'])} s"
        for k, label in (("latency", "all"), ("uncached_latency", "not from the cache"), ("first_token", "first token"))
    ))  # fmt: skip
    print(f"server RSS {rss_start:.0f} MiB after start-up, {max(peak):.0f} MiB peak, {rss_end:.0f} MiB at the end; "
          f"/health afterwards: {health.status_code}; questions found in the server log: {leaked}")  # fmt: skip
    payload = {
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "serve_fake"},
        "server": "fake" if args.fake else "rag serve",
        "startup_s": startup_s,
        **timing,
        "summary": summary,
        "outcomes": dict(tally.outcomes),
        "examples": tally.examples,
        "per_kind": per_kind_rows(tally),
        "server_rss_mib": {"start": rss_start, "peak": max(peak), "end": rss_end},
        "healthy_after": healthy,
        "questions_in_server_log": leaked,
    }
    out = write_result("load_fake" if args.fake else "load", payload, args.out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
