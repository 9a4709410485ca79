"""Reward-model training throughput and held-out accuracy, per base model, on the paper's pairs.

Runs the real stage (``zhufu train-rm``: TRL RewardTrainer, MLflow run, registration) once per
variant, each for the same number of steps on the same seeded split, into a throw-away
``ZHUFU_HOME``, and prints one JSON row per variant: wall seconds, training pairs per second,
and the accuracies (overall / near-same-length) of the RM and of both baselines.

    .venv/bin/python -P bench/reward_model.py --steps 150 --variant char --variant tiny

Variants are ``NAME`` or ``NAME:key=value,key=value`` overrides on top of
``examples/reward-model.yaml``, e.g. ``char:char_encoder.hidden_size=256``. The machine may be
shared: report wall times next to the load average this prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "greetings"


def variant_overrides(spec: str) -> tuple[str, list[str]]:
    """``char:a=1,b=2`` → (``char``, [``base_model=char``, ``a=1``, ``b=2``])."""
    name, _, rest = spec.partition(":")
    return spec, [f"base_model={name}", *(kv for kv in rest.split(",") if kv)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED / "reward_data_train.json"))
    parser.add_argument("--config", default=str(REPO / "examples" / "reward-model.yaml"))
    parser.add_argument("--steps", type=int, default=100, help="max_steps per variant")
    parser.add_argument("--variant", action="append", default=None,
                        help="char | tiny | PATH, optionally :key=value,... (repeatable)")
    parser.add_argument("--set", action="append", default=[], help="override for every variant")
    args = parser.parse_args()

    from zhufu.pipeline.config import RewardModelConfig, load_config
    from zhufu.pipeline.stage_runner import run

    rows = []
    for spec in args.variant or ["char", "tiny"]:
        label, overrides = variant_overrides(spec)
        with tempfile.TemporaryDirectory(prefix="zhufu-bench-rm-") as home:
            os.environ["ZHUFU_HOME"] = home
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            cfg = load_config(RewardModelConfig, args.config,
                              [f"data={args.data}", f"max_steps={args.steps}", *args.set,
                               *overrides])
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            result = run("train-rm", cfg)
            wall = time.perf_counter() - started
        m = result.metrics
        row = {"variant": label, "steps": args.steps, "wall_s": round(wall, 1),
               "train_s": round(m.get("train_seconds", 0.0), 1),
               "pairs_per_s": round(args.steps * cfg.batch_size / m["train_seconds"], 2),
               "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
        for key in ("rm/acc", "rm/acc_near", "ngram/acc", "ngram/acc_near", "longer/acc",
                    "longer/acc_near", "rm/n", "rm/n_near"):
            row[key] = round(m[key], 4) if key in m else None
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
