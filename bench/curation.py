"""Curation throughput: pairs per minute against an OpenAI-compatible server with fixed latency.

The server is ``tests/pipeline/curation/agent_server.py`` in its own process: it plays the
four agents (deterministic answers in their JSON contracts) after ``asyncio.sleep(latency)``.
The candidates are the starter set's greetings and labelled examples (one query ⇒ several
candidates), ``--scale`` copies of them under numbered queries. For each concurrency level
the stage runs from an empty journal and we compare with the ideal for that concurrency:
every call costs ``latency`` and ``concurrency`` calls are always in flight, so the ideal
time is ``calls × latency / concurrency`` and the ideal rate is ``pairs / ideal time``.
Efficiency = ideal time / measured time (the measured time includes loading the candidates,
retrieval, parsing, the journal's fsyncs and writing the outputs). A warm-up run first loads
jieba and builds the BM25 index (cached on disk), so the timings are the curation loop.

    .venv/bin/python -P bench/curation.py [--levels 8,32,64] [--latency 0.05] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "tests" / "pipeline" / "curation" / "agent_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(latency: float, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-P", str(SERVER), "--port", str(port), "--log",
                             str(log), "--latency", str(latency)], start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/stats", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError("agent server did not start")


def candidates_file(out: Path, scale: int) -> Path:
    """The starter candidates, repeated ``scale`` times under numbered copies of each query."""
    from zhufu.pipeline.data.rows import LabelledExample
    from zhufu.pipeline.data.starter import starter_greetings, starter_labelled
    from zhufu.pipeline.data.writers import write_labelled

    base = list(dict.fromkeys([*starter_greetings(), *starter_labelled()]))
    rows = [LabelledExample(f"{r.query}（{i}）" if i else r.query, r.response, r.label)
            for i in range(scale) for r in base]
    path = out / "candidates.jsonl"
    write_labelled(rows, path)
    return path


def run_level(url: str, responses: Path, out: Path, concurrency: int, rounds: int,
              max_queries: int | None = None) -> dict[str, float]:
    from zhufu.pipeline.config import CurateConfig
    from zhufu.pipeline.curation.stage import run_curation

    cfg = CurateConfig.model_validate({
        "responses": str(responses), "output_dir": str(out), "max_queries": max_queries,
        "debate": {"rounds": rounds},
        "llm": {"backend": "openai", "model": "agents", "base_url": f"{url}/v1",
                "concurrency": concurrency, "max_retries": 2}})
    started = time.monotonic()
    outcome = run_curation(cfg, progress=False)
    return {**outcome.metrics, "wall": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="8,32,64")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scale", type=int, default=4,
                        help="Copies of the starter candidates (267 each) to curate.")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="zhufu-bench-curation-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("ZHUFU_HOME", str(work / "home"))
        responses = candidates_file(work, args.scale)
        proc, url = start_server(args.latency, work / "server.jsonl")
        try:
            run_level(url, responses, work / "warmup", 4, args.rounds, max_queries=2)
            rows = []
            for level in levels:
                m = run_level(url, responses, work / f"c{level}", level, args.rounds)
                ideal_s = m["calls"] * args.latency / level
                rows.append({
                    "concurrency": level, "candidates": int(m["candidates"]),
                    "calls": int(m["calls"]), "pairs": int(m["pairs"]),
                    "seconds": round(m["wall"], 2),
                    "pairs_per_min": round(60 * m["pairs"] / m["wall"], 1),
                    "ideal_pairs_per_min": round(60 * m["pairs"] / ideal_s, 1),
                    "calls_per_s": round(m["calls"] / m["wall"], 1),
                    "efficiency": round(ideal_s / m["wall"], 3),
                    "failed": int(m["candidates_failed"]),
                })
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    print(f"latency {args.latency * 1000:.0f} ms, debate rounds {args.rounds}, "
          f"{os.cpu_count()} CPUs")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
