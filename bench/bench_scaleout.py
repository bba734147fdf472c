"""Answers per minute with 1, 2 and 4 clients: `rag serve` alone against `rag serve` with its model
behind a local llama.cpp server (`python -m llama_cpp.server`, the same GGUF file).

    .venv/bin/python bench/bench_scaleout.py                    # 1, 2, 4 clients, 90 s each, both setups
    .venv/bin/python bench/bench_scaleout.py --clients 1 2 --duration 30

Each setup starts its server(s) once on free loopback ports; then, for each client count, the clients
of bench_load.py send requests one after the other (cycling `/v1/ask` and `/v1/chat/completions`,
streaming and not, through the gold questions) for ``--duration`` seconds, and the requests still
running are awaited. The answer cache is off (RAG_ANSWER_CACHE=0) so that every request reaches the
model. Reported per setup and client count: answers (200s) per minute of wall time, median and p95
latency, first-token median of the streamed ones, and anything that was not a 200.

The llama.cpp server runs with ``--logits_all true`` so that the answerability check (one token's
log-probabilities) works as it does in-process; it gets the same context size and thread count as
`rag serve`. Writes bench/results/scaleout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _common import free_port, machine, stop_server, table, wait_healthy, write_result  # noqa: E402
from bench_load import Tally, run_load, summarize  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.evaluation.gold import load_gold  # noqa: E402
from rag.models import fetch  # noqa: E402

STARTUP_S = 300
ALIAS = "local-llm"


def start(cmd: list[str], env: dict[str, str], port: int, log: Path, path: str = "/health") -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_healthy(proc, port, STARTUP_S, log, path=path)  # llama_cpp.server has no /health: its /v1/models
    return proc


def run_setup(name: str, args: argparse.Namespace, questions: list[str], workdir: Path) -> list[dict[str, Any]]:
    settings = Settings()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "RAG_ANSWER_CACHE": "0"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if name == "llama-server":
            gguf = fetch.require(settings.models_path, settings.answer_model)
            llm_port = free_port()
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                   "--port", str(llm_port), "--n_ctx", str(settings.n_ctx), "--n_threads", str(settings.threads),
                   "--model_alias", ALIAS, "--logits_all", "true"]  # fmt: skip
            print(f"starting llama_cpp.server ({gguf.name}) ...", flush=True)
            procs.append(start(cmd, env, llm_port, workdir / "llama-server.log", path="/v1/models"))
            env |= {"RAG_LLM_URL": f"http://127.0.0.1:{llm_port}/v1", "RAG_LLM_MODEL": ALIAS}
        port = free_port()
        print(f"starting rag serve ({name}) ...", flush=True)
        procs.append(start([sys.executable, "-m", "rag", "serve", "--port", str(port)], env, port,
                           workdir / f"rag-{name}.log"))  # fmt: skip
        rows = []
        for clients in args.clients:
            tally = Tally()
            load_args = argparse.Namespace(clients=clients, duration=args.duration, drain_s=args.drain_s,
                                           ignore_retry_after=False)  # fmt: skip
            timing = asyncio.run(run_load(f"http://127.0.0.1:{port}", load_args, questions, tally))
            summary = summarize(tally)
            rows.append({
                "setup": name,
                "clients": clients,
                "answers": summary["ok_200"],
                "answers_per_min": 60 * summary["ok_200"] / timing["wall_s"],
                "latency_median_s": summary["latency_median_s"],
                "latency_p95_s": summary["latency_p95_s"],
                "first_token_median_s": summary["first_token_median_s"],
                "not_200": summary["requests"] - summary["ok_200"],
                "wall_s": timing["wall_s"],
            })  # fmt: skip
            print(f"  {name}, {clients} client(s): {rows[-1]['answers_per_min']:.1f} answers/min", flush=True)
        return rows
    finally:
        for proc in reversed(procs):
            stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4], help="client counts to run")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of load per client count")
    parser.add_argument("--drain-s", type=float, default=300.0, help="longest wait for requests still running")
    parser.add_argument("--setups", nargs="+", default=["rag-serve", "llama-server"],
                        choices=["rag-serve", "llama-server"])  # fmt: skip
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/scaleout.json)")
    args = parser.parse_args()

    questions = [item.question for item in load_gold(args.gold) if item.follow_up_of is None]
    workdir = Path(tempfile.mkdtemp(prefix="rag-scaleout-"))
    rows = [row for setup in args.setups for row in run_setup(setup, args, questions, workdir)]
    print()
    print(table(rows, [("setup", "setup"), ("clients", "clients"), ("answers", "answers"),
                       ("answers_per_min", "answers/min"), ("latency_median_s", "latency median s"),
                       ("latency_p95_s", "p95 s"), ("first_token_median_s", "first token s"),
                       ("not_200", "not 200")]))  # fmt: skip
    out = write_result("scaleout", {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                                    "rows": rows, "logs": str(workdir)}, args.out)  # fmt: skip
    print(f"wrote {out}; server logs in {workdir}")


if __name__ == "__main__":
    main()
