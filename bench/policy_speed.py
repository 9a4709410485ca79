"""Seconds per training step of a policy: GRPO (the ``tiny`` preset's batch) and SFT.

Measures a model folder as it is, so the same script compares the embedded policy before
and after a change of shape or vocabulary (build the old one under another ``ZHUFU_HOME``
and pass its folder). Both loops are bare TRL (no MLflow, no checkpoints) with the same
data: the starter prompts, a format reward, 8 completions of up to 40 tokens per step
(2 prompts × 4 generations) for GRPO; batches of 16 starter greetings for SFT.

    .venv/bin/python -P bench/policy_speed.py [--model DIR] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def params(path: str) -> dict[str, int]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    embed = model.get_input_embeddings().weight.numel()
    return {"parameters": sum(p.numel() for p in model.parameters()), "embedding": embed,
            "vocab": model.config.vocab_size}


def grpo_step(path: str, steps: int) -> float:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from zhufu.pipeline.data import load_prompts
    from zhufu.pipeline.models import load_tokenizer
    from zhufu.pipeline.rewards.rules import format_reward
    from zhufu.pipeline.train.grpo_setup import PRESETS

    tiny = PRESETS["tiny"]
    data = Dataset.from_list([{"prompt": p.messages, "query": p.query} for p in load_prompts()])
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, max_steps=steps,
                          per_device_train_batch_size=tiny["batch_size"],
                          num_generations=tiny["num_generations"],
                          max_completion_length=tiny["max_completion_length"],
                          learning_rate=1e-5, beta=tiny["beta"], logging_steps=1,
                          report_to="none", bf16=False, use_cpu=True, save_strategy="no",
                          temperature=1.0, dataloader_num_workers=0, seed=0)
        trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32), reward_funcs=[format_reward], args=args,
            train_dataset=data, processing_class=load_tokenizer(path))
        started = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - started) / steps


def sft_step(path: str, steps: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from zhufu.pipeline.models import load_tokenizer
    from zhufu.pipeline.train.sft import build_dataset

    tok = load_tokenizer(path, padding_side="right")
    data = build_dataset(None, tok, 256)
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=16,
                         learning_rate=1e-3, report_to="none", bf16=False, use_cpu=True,
                         save_strategy="no", dataloader_num_workers=0, seed=0,
                         logging_steps=1)
        trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32), args=args, train_dataset=data, processing_class=tok)
        started = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="policy folder (default: the embedded tiny policy)")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    from zhufu.pipeline.models import tiny_policy_path

    path = args.model or str(tiny_policy_path())
    result = {"model": path, **params(path), "load_average": os.getloadavg()[0],
              "grpo_s_per_step": grpo_step(path, args.steps),
              "sft_s_per_step": sft_step(path, args.steps)}
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
