"""Seconds per GRPO step: ``zhufu grpo`` versus a bare TRL script, same model, data, reward.

Both train the tiny offline policy on the same starter prompts with the same reward — the
shipped judge (``zhufu.pipeline.rewards.judge_reward.judge_reward()``, the function
``rewards: [{name: judge}]`` builds; ``--reward format`` for the format rule) — batch,
generations and completion length; each runs in its own process, alternating, and the time
of ``trainer.train()`` divided by the steps is compared (set-up, model loading and
registration excluded from both), wall and CPU; the order alternates each repeat. Both run
the same TRL config (checked: the bench stops if any field but those in :data:`MAY_DIFFER`
differs), checkpoints included: ``zhufu grpo`` always checkpoints, and with fewer steps than
``save_steps`` Trainer writes one checkpoint at the last step, so the bare script does too.
Zhufu's side adds what ``zhufu grpo`` adds per step: the
reward guard and clock, the readable-share monitor, the MLflow metrics callback. Aim: the
median of the per-repeat ratios ≤ 1.03. The last line printed is the figures as one JSON
object: ``{"ratio", "bare_s_per_step", "zhufu_s_per_step", "ratio_min", ...}``.

    .venv/bin/python -P bench/grpo_overhead.py [--steps 8] [--repeats 3] [--reward judge]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SETTINGS = {"batch_size": 8, "num_generations": 4, "max_completion_length": 32,
            "learning_rate": 1e-5, "beta": 0.001}
#: The TRL config fields the two sides may set differently: where each writes, and the
#: reward weights (``None`` on the bare side is TRL's all-ones, which Zhufu spells out).
MAY_DIFFER = {"output_dir", "logging_dir", "reward_weights"}
#: The TRL config the side running in this process trained with (``trainer.args``).
ARGS: dict[str, object] = {}


def config_differences(bare: dict[str, object], zhufu: dict[str, object]) -> list[str]:
    """``field: bare value != zhufu value`` for each TRL config field the sides set apart
    (other than :data:`MAY_DIFFER`): a fair comparison has none.

    >>> config_differences({"seed": 0, "output_dir": "a"}, {"seed": 1, "output_dir": "b"})
    ['seed: 0 != 1']
    """
    return [f"{k}: {bare.get(k)!r} != {zhufu.get(k)!r}" for k in sorted(set(bare) | set(zhufu))
            if k not in MAY_DIFFER and bare.get(k) != zhufu.get(k)]


def bare_reward(name: str) -> object:
    """The reward function the bare script passes to TRL: the same one Zhufu builds."""
    if name == "judge":
        from zhufu.pipeline.rewards.judge_reward import judge_reward

        return judge_reward()
    from zhufu.pipeline.rewards.rules import RULE_REWARDS

    return RULE_REWARDS[name]


def bare(steps: int, reward: str) -> tuple[float, float]:
    """A plain TRL GRPO script; returns wall and CPU seconds per step of trainer.train()."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from zhufu.pipeline.data import load_prompts
    from zhufu.pipeline.models import load_tokenizer, tiny_policy_path

    path = tiny_policy_path()
    data = Dataset.from_list([{"prompt": p.messages, "query": p.query} for p in load_prompts()])
    with tempfile.TemporaryDirectory() as out:
        # Checkpoints as ``zhufu grpo`` takes them (every save_steps, kept 2): with steps
        # below save_steps, Trainer still writes one at the last step on both sides.
        args = GRPOConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=8,
                          num_generations=4, max_completion_length=32, learning_rate=1e-5,
                          beta=0.001, logging_steps=1, report_to="none", bf16=False,
                          use_cpu=True, save_strategy="steps", save_steps=10 * steps,
                          save_total_limit=2, temperature=1.0, dataloader_num_workers=0,
                          seed=0)
        trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32), reward_funcs=[bare_reward(reward)], args=args,
            train_dataset=data, processing_class=load_tokenizer(str(path)))
        started, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        ARGS.update(trainer.args.to_dict())
        return (time.perf_counter() - started) / steps, (time.process_time() - cpu) / steps


def zhufu(steps: int, reward: str) -> tuple[float, float]:
    """The same through ``zhufu grpo``'s stage (guarded rewards, monitor, MLflow)."""
    import trl

    from zhufu.pipeline.config import GRPOConfig, RewardSpec
    from zhufu.pipeline.stage_runner import run

    cpu: list[float] = []
    train = trl.GRPOTrainer.train

    def timed_train(self: trl.GRPOTrainer, *args: object, **kwargs: object) -> object:
        started = time.process_time()  # the CPU of trainer.train() alone, as on the bare side
        try:
            return train(self, *args, **kwargs)
        finally:
            cpu.append(time.process_time() - started)
            ARGS.update(self.args.to_dict())

    trl.GRPOTrainer.train = timed_train
    with tempfile.TemporaryDirectory() as ckpt:
        result = run("grpo", GRPOConfig(policy="tiny", rewards=[RewardSpec(name=reward)],
                                        max_steps=steps, save_steps=10 * steps,
                                        checkpoint_dir=ckpt, resume="never", **SETTINGS))
    return result.metrics["seconds"] / steps, sum(cpu) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reward", default="judge", choices=["judge", "format"])
    parser.add_argument("--mode", choices=["bare", "zhufu"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        wall, cpu = {"bare": bare, "zhufu": zhufu}[args.mode](args.steps, args.reward)
        print(json.dumps({"s_per_step": wall, "cpu_s_per_step": cpu, "args": ARGS},
                         default=str))
        return
    load_before = os.getloadavg()[0]
    home = tempfile.mkdtemp(prefix="zhufu-bench-")
    env = {**os.environ, "ZHUFU_HOME": home}
    env.pop("MLFLOW_TRACKING_URI", None)
    wall: dict[str, list[float]] = {"bare": [], "zhufu": []}
    cpu: dict[str, list[float]] = {"bare": [], "zhufu": []}
    configs: dict[str, dict[str, object]] = {}
    for repeat in range(args.repeats):
        # Alternate which side goes first, so a drift in the machine's load hits both alike.
        for mode in ("bare", "zhufu") if repeat % 2 == 0 else ("zhufu", "bare"):
            out = subprocess.run([sys.executable, "-P", __file__, "--mode", mode,
                                  "--steps", str(args.steps), "--reward", args.reward],
                                 env=env, check=True,
                                 capture_output=True, text=True).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            configs[mode] = figures["args"]
            if len(configs) == 2 and (differ := config_differences(configs["bare"],
                                                                   configs["zhufu"])):
                raise SystemExit("the two sides trained with different TRL configs, so the "
                                 "comparison is unfair: " + "; ".join(differ))
            wall[mode].append(figures["s_per_step"])
            cpu[mode].append(figures["cpu_s_per_step"])
            print(f"{mode:6s} {wall[mode][-1]:.3f} s/step, CPU {cpu[mode][-1]:.3f} s/step",
                  flush=True)
    b, z = statistics.median(wall["bare"]), statistics.median(wall["zhufu"])
    bc, zc = statistics.median(cpu["bare"]), statistics.median(cpu["zhufu"])
    ratios = [zt / bt for bt, zt in zip(wall["bare"], wall["zhufu"], strict=True)]
    cpu_ratios = [zt / bt for bt, zt in zip(cpu["bare"], cpu["zhufu"], strict=True)]
    ratio, cpu_ratio = statistics.median(ratios), statistics.median(cpu_ratios)
    print(f"\n| runner | s/step (median of {args.repeats}) | CPU s/step |\n|---|---|---|\n"
          f"| bare TRL | {b:.3f} | {bc:.3f} |\n| zhufu grpo | {z:.3f} | {zc:.3f} |\n\n"
          f"ratio zhufu/bare = {ratio:.3f} (median of the {args.repeats} side-by-side ratios; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}; aim ≤ 1.03), CPU ratio "
          f"{cpu_ratio:.3f}, reward {args.reward}, {args.steps} steps")
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f} (compare "
          "only on a quiet machine: under 1 before starting)")
    print(json.dumps({"ratio": round(ratio, 3), "bare_s_per_step": round(b, 4),
                      "zhufu_s_per_step": round(z, 4), "ratio_min": round(min(ratios), 3),
                      "ratio_max": round(max(ratios), 3), "cpu_ratio": round(cpu_ratio, 3),
                      "bare_cpu_s_per_step": round(bc, 4), "zhufu_cpu_s_per_step": round(zc, 4),
                      "repeats": args.repeats, "reward": args.reward, "steps": args.steps,
                      "load_before": round(load_before, 2)}))

if __name__ == "__main__":
    main()
