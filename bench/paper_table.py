"""The paper's table on the embedded default: wall time of ``zhufu run --reward rm,judge``.

Runs the whole loop (SFT, curation, reward model, judge, one GRPO run per reward, every
policy against every other by three evaluators) in a fresh data dir, with the tiny models
copied from ``--models`` when given (else built, which adds a one-time cost the figure
leaves out: the ``models`` stage's time is subtracted). Prints one Markdown table (stage
seconds, wall, CPU, load average at start and end) and its figures as one JSON line.
Aim: ≤ 600 s wall on 2 idle cores.

    .venv/bin/python -P bench/paper_table.py [--models .zhufu/models] [--ablate debate,reflector]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

AIM_SECONDS = 600.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="A data dir's models/ folder to copy in.")
    parser.add_argument("--reward", default="rm,judge")
    parser.add_argument("--ablate", default="")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="zhufu-bench-table-"))
    if args.models:
        shutil.copytree(args.models, home / "models")
    os.environ["ZHUFU_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from zhufu.pipeline.run import RunSettings, parse_ablations, parse_rewards, run_all

    rewards = parse_rewards(args.reward)
    started = time.perf_counter()
    report = run_all(RunSettings(rewards=rewards, ablate=parse_ablations(args.ablate, rewards),
                                 experiment="bench-paper-table"), str(home / "report.json"))
    wall = time.perf_counter() - started - report["stage_seconds"].get("models", 0.0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"wall_s": round(wall, 1), "aim_s": AIM_SECONDS, "cpu_s": round(
        usage.ru_utime + usage.ru_stime, 1), "load_start": report["load_average"]["start"][0],
        "load_end": report["load_average"]["end"][0],
        **{f"{k}_s": round(v, 1) for k, v in report["stage_seconds"].items()}}
    print("| figure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value} |")
    print(json.dumps(figures))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
