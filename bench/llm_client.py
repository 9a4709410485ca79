"""Calls per second through Zhufu's OpenAI-compatible backend against a 50 ms server.

A local aiohttp server (a separate process, on uvloop so that its own CPU cost on the shared
2 cores stays small) answers every chat completion after a fixed ``asyncio.sleep(latency)``.
For each concurrency level we send ``calls_per_slot × level`` calls (after a warm-up) and
compare the rate with the ideal, ``level / latency``. A bare aiohttp session (pre-encoded
body, ``json.loads`` of the bytes, nothing else) runs the same load as a reference for the
client's own overhead (it encodes its body once, so it is a lower bound for any client).

    .venv/bin/python -P bench/llm_client.py [--levels 1,8,32,64] [--repeats 1] [--csv out.csv]

Prints a Markdown table (``× bare``: the client's ratio over the bare loop's at the same
level) and, last, the rows as one JSON line; with ``--csv`` it also writes them as CSV. With
``--repeats N`` each level runs N times (the clients' order alternating) and shows the run
with the median ``× bare``, with ``vs_bare_min`` / ``vs_bare_max`` over the N (a 1,280-call
run at concurrency 64 takes about a second and moves by a few per cent).
``cpu_us_per_call`` is the client process's own CPU time (user + system) per call: it moves
less than the rate when other work shares the machine, so it compares clients on a busy box.
Both clients run on the event loop the pipeline uses (:func:`zhufu.pipeline.aio.run`: uvloop
where installed; ``ZHUFU_EVENT_LOOP=asyncio`` measures both on the standard loop).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PROMPT = ("你是一位严格的中文祝福语评审。请从语言质量、创意、情感共鸣、文化适宜性"
          "和内容丰富度五个维度为下面的祝福语打分（1–5 分），并给出理由，只输出 JSON。\n" * 4)
ANSWER = json.dumps({
    "id": "cmpl-bench", "object": "chat.completion", "model": "bench",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant",
        "content": json.dumps({"language": 4, "creativity": 3, "emotion": 4, "culture": 5,
                               "richness": 3, "overall": 3.8, "verdict": 1,
                               "reason": "贴合场合，用词得体，略显常规。"}, ensure_ascii=False)}}],
    "usage": {"prompt_tokens": 240, "completion_tokens": 60, "total_tokens": 300},
}, ensure_ascii=False).encode("utf-8")


def measure_level(url: str, level: int, n: int, latency: float, clients: list[str]
                  ) -> list[dict[str, Any]]:
    """One row per client (in the order given): ``n`` calls at ``level`` in flight."""
    from zhufu.pipeline import aio

    rows = []
    ideal = level / latency
    for client in clients:
        before = _cpu_seconds()
        elapsed, errors = aio.run(CLIENTS[client](url, level, n))
        cpu_us = (_cpu_seconds() - before) / (n + level) * 1e6  # warm-up included
        rate = n / elapsed
        rows.append({"client": client, "concurrency": level, "calls": n, "errors": errors,
                     "seconds": round(elapsed, 3), "calls_per_s": round(rate, 1),
                     "ideal_per_s": round(ideal, 1), "ratio": round(rate / ideal, 3),
                     "cpu_us_per_call": round(cpu_us)})
        print(f"  {client:>12} c={level:<3} {rate:8.1f}/s  ratio {rate / ideal:.3f}",
              file=sys.stderr, flush=True)
    return rows


def median_run(runs: list[T], key: Callable[[T], float]) -> T:
    """The run with the median ``key`` (the lower middle one of an even count); with several
    runs its rows get ``repeats`` and the spread of ``vs_bare`` over them (``vs_bare_min``,
    ``vs_bare_max``). A run is one row (a dict) or a list of rows."""
    ranked = sorted(runs, key=key)
    chosen = ranked[(len(ranked) - 1) // 2]
    if len(runs) > 1:
        spread = {"repeats": len(runs), "vs_bare_min": key(ranked[0]),
                  "vs_bare_max": key(ranked[-1])}
        for row in chosen if isinstance(chosen, list) else [chosen]:
            if "vs_bare" in row:
                row.update(spread)
    return chosen


# -- server (separate process) -----------------------------------------------------------
def serve(port: int, latency: float) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency)
        return web.Response(body=ANSWER, content_type="application/json")

    # The server stands in for a remote LLM server, yet shares this machine's 2 cores with
    # the client: uvloop keeps its own CPU cost low so the figure measures the client.
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                backlog=1024)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bench server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"bench server on port {port} did not start in {timeout:.0f}s")


# -- clients -----------------------------------------------------------------------------
async def run_zhufu(url: str, level: int, n: int) -> tuple[float, int]:
    from zhufu.pipeline.llm import ChatRequest, LLMError
    from zhufu.pipeline.llm.openai_compat import OpenAIBackend

    llm = OpenAIBackend("bench", url, api_key_env=None, concurrency=level, timeout_s=30)
    request = ChatRequest(messages=[{"role": "user", "content": PROMPT}], json_output=True)
    try:
        await llm.chat_many([request] * level)  # warm-up: open the connections
        start = time.perf_counter()
        results = await llm.chat_many([request] * n)
        elapsed = time.perf_counter() - start
    finally:
        await llm.aclose()
    return elapsed, sum(isinstance(r, LLMError) for r in results)


async def run_bare(url: str, level: int, n: int) -> tuple[float, int]:
    import aiohttp

    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": PROMPT}],
                       "temperature": 0.7, "max_tokens": 512}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    endpoint = url.rstrip("/") + "/chat/completions"
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=level)) as session:
        semaphore = asyncio.Semaphore(level)

        async def one() -> None:
            nonlocal errors
            async with semaphore:
                try:
                    async with session.post(endpoint, data=body, headers=headers) as resp:
                        json.loads(await resp.read())["choices"][0]["message"]["content"]
                except Exception:  # noqa: BLE001 - counted, reported
                    errors += 1

        await asyncio.gather(*(one() for _ in range(level)))
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - start, errors


CLIENTS = {"zhufu": run_zhufu, "bare-aiohttp": run_bare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--calls-per-slot", type=int, default=20,
                        help="calls per level = this × level (at least 40)")
    parser.add_argument("--clients", default="zhufu,bare-aiohttp")
    parser.add_argument("--repeats", type=int, default=1,
                        help="Runs per level (every client each); the rows shown are those "
                             "of the run with the median vs_bare, with its min and max.")
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.latency)
        return 0

    import zhufu.pipeline.llm.openai_compat  # noqa: F401 - imported before any timing
    from zhufu.pipeline import aio

    load_before = os.getloadavg()[0]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-P", str(Path(__file__).resolve()),
                               "--serve", str(port), "--latency", str(args.latency)],
                              start_new_session=True)
    rows = []
    try:
        wait_port(port, server)
        url = f"http://127.0.0.1:{port}/v1"
        clients = args.clients.split(",")
        for client in clients:  # first use in this process (lazy imports, SSL context): untimed
            aio.run(CLIENTS[client](url, 8, 40))
        for i, level in enumerate(int(x) for x in args.levels.split(",")):
            n = max(40, args.calls_per_slot * level)
            runs = [measure_level(url, level, n, args.latency,
                                  clients if (i + r) % 2 == 0 else clients[::-1])
                    for r in range(args.repeats)]  # the order alternates: no order bias
            if "bare-aiohttp" not in clients:
                rows += runs[0]
                continue
            for run in runs:
                bare = next(r["ratio"] for r in run if r["client"] == "bare-aiohttp")
                for r in run:
                    if r["client"] != "bare-aiohttp":
                        r["vs_bare"] = round(r["ratio"] / bare, 3)
            rows += median_run(runs, lambda run: min(r.get("vs_bare", 2.0) for r in run))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)

    rows.sort(key=lambda r: (r["concurrency"], clients.index(r["client"])))
    print(f"\nlatency {args.latency * 1000:.0f} ms, event loop {aio.loop_name()}, "
          f"{os.cpu_count()} CPUs, load average before "
          f"{load_before:.2f}, after {os.getloadavg()[0]:.2f}\n")
    print("| client | concurrency | calls | errors | calls/s | ideal/s | ratio | × bare "
          "| client CPU/call |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['client']} | {r['concurrency']} | {r['calls']} | {r['errors']} | "
              f"{r['calls_per_s']} | {r['ideal_per_s']} | {r['ratio']:.3f} | "
              f"{r.get('vs_bare', '')} | {r['cpu_us_per_call']} µs |")
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, restval="",
                                    fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
            writer.writeheader()
            writer.writerows(rows)
    print(json.dumps(rows))  # the figures, one line, last
    return 0


if __name__ == "__main__":
    sys.exit(main())
