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
jieba and builds the BM25 index (cached on disk), so the timings are the curation loop. At
each level the bare aiohttp loop of ``bench/llm_client.py`` then sends as many calls to the
same server at the same concurrency: ``bare_ratio`` is its calls/s over the ideal, and
``vs_bare`` = efficiency / bare_ratio (the aim: ≥ 0.95), so a busy machine slows both sides.

    .venv/bin/python -P bench/curation.py [--levels 8,64] [--latency 0.05] [--rounds 1]
                                          [--repeats 1]

With ``--repeats N`` each level runs N times (stage then bare loop, or the other way round,
alternating); its row is the run with the median ``vs_bare``, with ``vs_bare_min`` and
``vs_bare_max`` over the N (one 4,000-call run at concurrency 64 moves by a few per cent).

``--shards 1,2`` instead runs, for each N, N separate processes (``shards: N``, one
``--shard`` each, as a CurationJob's pods) at ``--shard-concurrency`` (8) each, against one
server; all start together once every process has loaded, and the time is until the last
one finished: pairs/min at N shards over 1 shard is the scale-out (the aim: ≥ 1.8 at 2).

    .venv/bin/python -P bench/curation.py --shards 1,2

``layer`` mode measures the curation layer's own CPU per call, without network or server:
the stage against an in-process backend that answers at once with the stand-in's answer
function (its hashing and JSON are counted too), at ``--levels``' first concurrency:

    .venv/bin/python -P bench/curation.py layer [--scale 1]

``ablation`` mode instead curates, with the offline backend, a labelled set built from the
paper's pairs in ``../shared`` (chosen → 1, rejected → 0; half the queries near-same-length
pairs; exemplars from other queries) under each ablation and prints pairs and agreement:

    .venv/bin/python -P bench/curation.py ablation [--queries 300] [--exemplars 2000]
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
from typing import Any

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


def bench_config(url: str, responses: Path, out: Path, concurrency: int, rounds: int,
                 max_queries: int | None = None, shards: int = 1) -> dict[str, Any]:
    return {
        "responses": str(responses), "output_dir": str(out), "max_queries": max_queries,
        "debate": {"rounds": rounds},
        "llm": {"backend": "openai", "model": "agents", "base_url": f"{url}/v1",
                "concurrency": concurrency, "max_retries": 2,
                "trace_rate": 0.0},  # no MLflow traces in a timed run
        **({"shards": shards} if shards > 1 else {})}  # a commit before shards runs it too


def run_level(url: str, responses: Path, out: Path, concurrency: int, rounds: int,
              max_queries: int | None = None) -> dict[str, float]:
    from zhufu.pipeline.config import CurateConfig
    from zhufu.pipeline.curation.stage import run_curation

    cfg = CurateConfig.model_validate(bench_config(url, responses, out, concurrency, rounds,
                                                   max_queries))
    started, cpu = time.monotonic(), cpu_seconds()
    outcome = run_curation(cfg, progress=False)
    return {**outcome.metrics, "wall": time.monotonic() - started, "cpu": cpu_seconds() - cpu}


def cpu_seconds() -> float:
    """User + system CPU of this process so far (moves less with the load than rates do)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_ratio(url: str, level: int, latency: float, calls: int) -> tuple[float, float]:
    """The bare aiohttp loop's calls/s over the ideal ``level / latency`` (same server), and
    its CPU µs per call; on the event loop the stage runs on (:func:`zhufu.pipeline.aio.run`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from llm_client import run_bare

    from zhufu.pipeline import aio

    cpu = cpu_seconds()
    elapsed, errors = aio.run(run_bare(f"{url}/v1", level, calls))
    if errors:
        raise RuntimeError(f"bare aiohttp loop: {errors} of {calls} calls failed")
    return calls / elapsed / (level / latency), (cpu_seconds() - cpu) / calls * 1e6


def shard_worker(spec: str) -> None:
    """One shard's process: load, say ``ready``, wait for ``go`` on stdin, curate, print."""
    from zhufu.pipeline.config import CurateConfig
    from zhufu.pipeline.curation.stage import run_curation

    job = json.loads(spec)
    cfg = CurateConfig.model_validate(job["config"])
    # untimed: jieba, the retrieval index and the client load on one query of another output
    warm = {k: v for k, v in job["config"].items() if k != "shards"}
    run_curation(CurateConfig.model_validate({**warm, "max_queries": 1, "output_dir":
                                              f"{cfg.output_dir}-warmup-{job['shard']}"}),
                 progress=False)
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.monotonic(), cpu_seconds()
    outcome = run_curation(cfg, progress=False, shard=job["shard"])
    print(json.dumps({**outcome.metrics, "wall": time.monotonic() - started,
                      "cpu": cpu_seconds() - cpu}), flush=True)


def run_shards(url: str, responses: Path, out: Path, shards: int, concurrency: int,
               rounds: int) -> dict[str, float]:
    """``shards`` processes, one per shard, started together; totals and the wall time until
    the last one finished."""
    cfg = bench_config(url, responses, out, concurrency, rounds, shards=shards)
    procs = [subprocess.Popen(
        [sys.executable, "-P", __file__, "--worker",
         json.dumps({"config": cfg, "shard": i if shards > 1 else None})],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(shards)]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a shard process failed to start")
        started = time.monotonic()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        parts = []
        for p in procs:
            assert p.stdout is not None
            parts.append(json.loads(p.stdout.readline()))
        wall = time.monotonic() - started
    except BaseException:
        for p in procs:
            p.kill()
        raise
    finally:
        for p in procs:
            p.wait(timeout=60)
    totals = {k: sum(part[k] for part in parts)
              for k in ("candidates", "calls", "pairs", "candidates_failed", "cpu")}
    return {**totals, "wall": wall, "slowest_shard_s": max(part["wall"] for part in parts)}


def level_vs_bare(url: str, responses: Path, out: Path, level: int, args: argparse.Namespace,
                  bare_first: bool) -> dict[str, Any]:
    """One run of the stage at ``level`` and one of the bare loop with as many calls, in the
    order given (alternated between runs: no order bias); the stage's row with the bare
    loop's figures and ``vs_bare``."""
    calls = len(candidates_of(responses)) * (2 * args.rounds + 2)  # per candidate
    if bare_first:
        bare, bare_cpu = bare_ratio(url, level, args.latency, calls)
    m = run_level(url, responses, out, level, args.rounds)
    if not bare_first:
        bare, bare_cpu = bare_ratio(url, level, args.latency, int(m["calls"]))
    row = figures(m, level, 1, args.latency)
    return {**row, "bare_ratio": round(bare, 3), "vs_bare": round(row["efficiency"] / bare, 3),
            "bare_cpu_us_per_call": round(bare_cpu)}


def candidates_of(responses: Path) -> list[str]:
    """The candidate lines of the bench's responses file."""
    return [line for line in responses.read_text(encoding="utf-8").splitlines() if line]


def figures(m: dict[str, float], concurrency: int, shards: int, latency: float
            ) -> dict[str, Any]:
    """A table row: ``concurrency`` calls in flight per shard, ``shards`` shards."""
    ideal_s = m["calls"] * latency / (concurrency * shards)
    return {
        "concurrency": concurrency, "shards": shards, "candidates": int(m["candidates"]),
        "calls": int(m["calls"]), "pairs": int(m["pairs"]), "seconds": round(m["wall"], 2),
        "pairs_per_min": round(60 * m["pairs"] / m["wall"], 1),
        "ideal_pairs_per_min": round(60 * m["pairs"] / ideal_s, 1),
        "calls_per_s": round(m["calls"] / m["wall"], 1),
        "efficiency": round(ideal_s / m["wall"], 3),
        "failed": int(m["candidates_failed"]),
        "cpu_us_per_call": round(m["cpu"] / m["calls"] * 1e6),
    }


def layer(args: argparse.Namespace) -> None:
    """CPU µs per call of the curation layer alone (see the module docstring)."""
    import asyncio

    sys.path.insert(0, str(SERVER.parent))
    from agent_server import answer_for

    from zhufu.pipeline.config import CurateConfig
    from zhufu.pipeline.curation.stage import run_curation
    from zhufu.pipeline.llm import ChatBackend, ChatResponse

    class Instant(ChatBackend):
        name = "openai"

        async def _chat(self, request: Any) -> ChatResponse:
            await asyncio.sleep(0)
            body = {"model": "agents", "messages": request.messages}
            return ChatResponse(text=json.dumps(answer_for(body), ensure_ascii=False),
                                prompt_tokens=10, completion_tokens=5)

    level = int(args.levels.split(",")[0])
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zhufu-bench-layer-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("ZHUFU_HOME", str(work / "home"))
        responses = candidates_file(work, args.scale)
        rows = []
        for run in ("warm-up", "timed"):
            cfg = CurateConfig.model_validate(bench_config("http://127.0.0.1:9", responses,
                                                           work / run, level, args.rounds))
            cpu = cpu_seconds()
            out = run_curation(cfg, Instant(concurrency=level), progress=False)
            if run == "timed":
                rows.append({"concurrency": level, "calls": int(out.metrics["calls"]),
                             "layer_cpu_us_per_call": round(
                                 (cpu_seconds() - cpu) / out.metrics["calls"] * 1e6)})
    print(f"curation layer, in-process answers, load average before {load_before:.2f}, "
          f"after {os.getloadavg()[0]:.2f}: {rows[0]['layer_cpu_us_per_call']} µs CPU per call")
    print(json.dumps(rows))


def near_same(a: str, b: str) -> bool:
    """Lengths within 15% of the longer one (the metrics module's definition)."""
    from zhufu.pipeline.evaluation.metrics import NEAR_SAME_LENGTH

    return abs(len(a) - len(b)) <= NEAR_SAME_LENGTH * max(len(a), len(b))


def labelled_set(shared: Path, out: Path, n: int, n_exemplars: int, seed: int = 0
                 ) -> tuple[Path, Path, set[str]]:
    """Labelled candidates from the paper's pairs: for ``n`` queries (half of them among
    near-same-length pairs) chosen → 1 and rejected → 0; exemplars = chosen answers of other
    queries. Returns (labelled JSONL, exemplars JSONL, queries of near-same-length pairs)."""
    import random

    from zhufu.pipeline.data.loaders import load_pairs
    from zhufu.pipeline.data.rows import LabelledExample
    from zhufu.pipeline.data.writers import write_labelled

    pairs = load_pairs(shared / "reward_data_train.json")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    same = [i for i in order if near_same(pairs[i].chosen, pairs[i].rejected)][: n // 2]
    taken = set(same)
    rest = [i for i in order if i not in taken][: n - len(same)]
    picked = same + rest
    queries = {pairs[i].query for i in picked}
    ex = [i for i in order if i not in taken and i not in set(rest)
          and pairs[i].query not in queries][:n_exemplars]
    labelled = [LabelledExample(pairs[i].query, text, label) for i in picked
                for text, label in ((pairs[i].chosen, 1), (pairs[i].rejected, 0))]
    write_labelled(labelled, out / "labelled.jsonl")
    write_labelled([LabelledExample(pairs[i].query, pairs[i].chosen, 1) for i in ex],
                   out / "exemplars.jsonl")
    return out / "labelled.jsonl", out / "exemplars.jsonl", {pairs[i].query for i in same}


ABLATIONS: dict[str, dict] = {
    "full": {},
    "no retrieval": {"retrieval": {"kind": "none"}},
    "no debate": {"debate": {"enabled": False}},
    "no reflect": {"reflect": False},
    "no judge (debate tally)": {"judge": False},
}


def ablation(args: argparse.Namespace) -> None:
    """Curated pairs and agreement per ablation, offline backend, on pairs from ../shared."""
    from zhufu.pipeline.config import CurateConfig
    from zhufu.pipeline.curation.stage import run_curation

    with tempfile.TemporaryDirectory(prefix="zhufu-bench-ablation-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("ZHUFU_HOME", str(work / "home"))
        labelled, exemplars, same_queries = labelled_set(Path(args.shared), work, args.queries,
                                                         args.exemplars)
        print(f"{args.queries} queries ({len(same_queries)} near-same-length), "
              f"{2 * args.queries} candidates, {args.exemplars} exemplars, offline backend")
        print("| ablation | pairs | ties | verdict acc | kappa | pair acc | pair acc "
              "near-same | reflect changed | seconds |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, over in ABLATIONS.items():
            cfg = CurateConfig.model_validate({
                "responses": str(labelled), "exemplars": str(exemplars),
                "dev_labels": str(labelled), "output_dir": str(work / name.replace(" ", "-")),
                **over})
            m = run_curation(cfg, progress=False)
            gold = {(p.query, p.chosen) for p in _gold(labelled)}
            same = [p for p in m.pairs if p.query in same_queries]
            same_acc = (sum((p.query, p.chosen) in gold for p in same) / len(same)
                        if same else float("nan"))
            mm = m.metrics
            print(f"| {name} | {int(mm['pairs'])} | {int(mm['ties'])} | "
                  f"{mm['verdict_accuracy']:.3f} | {mm['verdict_kappa']:.3f} | "
                  f"{mm['pair_accuracy']:.3f} | {same_acc:.3f} ({len(same)}) | "
                  f"{int(mm.get('reflect_changed', 0))} | {mm['seconds']:.1f} |")


def _gold(labelled: Path) -> list:
    from zhufu.pipeline.data.loaders import load_labelled
    from zhufu.pipeline.data.rows import PreferencePair

    rows = load_labelled(labelled)
    return [PreferencePair(a.query, a.response, b.response)
            for a, b in zip(rows[::2], rows[1::2], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="throughput",
                        choices=["throughput", "ablation", "layer"])
    parser.add_argument("--levels", default="8,64")
    parser.add_argument("--shards", default="",
                        help="Shard counts to compare (e.g. 1,2): one process per shard.")
    parser.add_argument("--shard-concurrency", type=int, default=8)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1,
                        help="Runs per level (stage and bare loop each); the row is the run "
                             "with the median vs_bare, with its min and max.")
    parser.add_argument("--scale", type=int, default=4,
                        help="Copies of the starter candidates (267 each) to curate.")
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data" / "greetings"))
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--exemplars", type=int, default=2000)
    args = parser.parse_args()
    if args.worker is not None:
        shard_worker(args.worker)
        return
    if args.mode == "ablation":
        ablation(args)
        return
    if args.mode == "layer":
        layer(args)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from llm_client import median_run

    levels = [int(x) for x in args.levels.split(",")] if not args.shards else []
    shard_counts = [int(x) for x in args.shards.split(",")] if args.shards else []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zhufu-bench-curation-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("ZHUFU_HOME", str(work / "home"))
        responses = candidates_file(work, args.scale)
        proc, url = start_server(args.latency, work / "server.jsonl")
        try:
            run_level(url, responses, work / "warmup", 4, args.rounds, max_queries=2)
            bare_ratio(url, 8, args.latency, 40)  # the bare loop's first use: untimed
            rows = []
            for i, level in enumerate(levels):
                runs = [level_vs_bare(url, responses, work / f"c{level}-{r}", level, args,
                                      bare_first=bool((i + r) % 2))
                        for r in range(args.repeats)]
                rows.append(median_run(runs, lambda run: run["vs_bare"]))
            for n in shard_counts:
                m = run_shards(url, responses, work / f"s{n}", n, args.shard_concurrency,
                               args.rounds)
                rows.append(figures(m, args.shard_concurrency, n, args.latency))
                rows[-1]["slowest_shard_s"] = round(m["slowest_shard_s"], 2)
            if len(shard_counts) > 1:
                one = next((r for r in rows if r["shards"] == 1), None)
                for r in rows:
                    if one is not None:
                        r["vs_1_shard"] = round(r["pairs_per_min"] / one["pairs_per_min"], 3)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    from zhufu.pipeline import aio

    print(f"latency {args.latency * 1000:.0f} ms, debate rounds {args.rounds}, event loop "
          f"{aio.loop_name()}, {os.cpu_count()} CPUs, load average before {load_before:.2f}, after "
          f"{os.getloadavg()[0]:.2f}")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
