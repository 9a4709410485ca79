"""Operator benchmark: N custom resources against the API emulator, CR→Job latency.

Runs the real operator (``kopf run`` subprocess) against ``tests/operator/kube_emulator.py``
on 127.0.0.1, creates N CurationJobs (default 500) at a steady rate, and reports the
latency from each CR's creation to its Job's creation (p50/p99), whether every resource was
reconciled (Job created and ``status.jobName`` written), and the operator's peak RSS
(VmHWM). No real cluster can run here; the emulator stands in for the API server.

    .venv/bin/python -P bench/operator.py --count 500 --rate 50 --timeout 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "operator"))

from kube_emulator import KubeEmulator  # noqa: E402
from opharness import NS, Operator, emulator  # noqa: E402


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(count: int, rate: float, timeout: float) -> dict[str, object]:
    created: dict[str, float] = {}
    job_seen: dict[str, float] = {}
    async with emulator() as (emu, url):
        original = KubeEmulator._write_create

        def record(self: KubeEmulator, res, namespace, obj):  # type: ignore[no-untyped-def]
            out = original(self, res, namespace, obj)
            if res.plural == "jobs":
                job_seen[out["metadata"]["name"].removesuffix("-curate")] = time.monotonic()
            return out

        KubeEmulator._write_create = record  # type: ignore[method-assign]
        with tempfile.TemporaryDirectory() as tmp:
            op = Operator(Path(tmp), url, {"ZHUFU_DEPENDENCY_POLL_S": "5"})
            op.start()
            try:
                emu.create("curationjobs", {"apiVersion": "zhufu.dev/v1alpha1",
                                            "kind": "CurationJob",
                                            "metadata": {"name": "warmup", "namespace": NS},
                                            "spec": {}})
                start = time.monotonic()
                while "warmup" not in job_seen:
                    if time.monotonic() - start > 60:
                        raise RuntimeError("operator did not start\n" + op.tail())
                    await asyncio.sleep(0.05)
                t0 = time.monotonic()
                for i in range(count):
                    name = f"bench-{i:04d}"
                    emu.create("curationjobs", {
                        "apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob",
                        "metadata": {"name": name, "namespace": NS},
                        "spec": {"samplesPerQuery": 1 + i % 8}})
                    created[name] = time.monotonic()
                    await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
                deadline = time.monotonic() + timeout

                def reconciled() -> int:
                    return sum(1 for n in created if (emu.get("curationjobs", NS, n) or {}).get(
                        "status", {}).get("jobName"))
                while time.monotonic() < deadline and (
                        len([n for n in created if n in job_seen]) < count
                        or reconciled() < count):
                    await asyncio.sleep(0.2)
                wall = time.monotonic() - t0
                rss = _peak_rss_mib(op.proc.pid) if op.proc else float("nan")
                done = reconciled()
            finally:
                await op.stop()
                KubeEmulator._write_create = original  # type: ignore[method-assign]
    latencies = [job_seen[n] - created[n] for n in created if n in job_seen]
    jobs = len(latencies)
    return {
        "resources": count, "rate_per_s": rate, "jobs_created": jobs,
        "reconciled_with_status": done, "all_reconciled": jobs == count == done,
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p99_s": round(_percentile(latencies, 0.99), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "wall_s": round(wall, 1), "operator_peak_rss_mib": round(rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="CRs created per second")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait at most")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.count, args.rate, args.timeout)), indent=2))


if __name__ == "__main__":
    main()
