"""Experiment (issue 13, item 4): GRPO under DeepSpeed ZeRO-3, and a save that keeps what it
trained. Runs on CPU with DeepSpeed's CPU accelerator, two ranks over gloo:

    DS_ACCELERATOR=cpu .venv/bin/torchrun --standalone --nproc-per-node 2 \
        experiments/zero3_save.py {lora|full} OUT_DIR

What it checks, rank by rank, and writes to OUT_DIR/result.json (rank 0):

1. ``zero.Init`` applies at load: the TRL config (which registers transformers'
   ``HfDeepSpeedConfig``) is built *before* ``from_pretrained``, so every parameter is
   partitioned as it loads (``ds_id`` set, local ``numel() == 0``).
2. The old way fails: ``trainer.model.merge_and_unload()`` / ``save_pretrained`` on
   partitioned weights (what ``run_grpo`` did) — recorded, not fatal.
3. The trainer's own ``save_model`` on all ranks (a collective under ZeRO-3: it gathers the
   16-bit weights) writes full tensors; with LoRA, rank 0 merges the saved adapter into the
   base weights. The merged / saved tensors equal the gathered trained ones.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    rank = int(os.environ.get("RANK", "0"))
    from accelerate import PartialState
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from zhufu.pipeline.models import load_tokenizer, resolve_model
    from zhufu.pipeline.train.grpo_setup import deepspeed_config

    state = PartialState(cpu=True)  # the process group first (gloo), as accelerate sets it up
    print(f"rank {rank}: accelerate sees {state.num_processes} processes, "
          f"{state.distributed_type}", flush=True)
    policy = resolve_model("tiny")
    tokenizer = load_tokenizer(str(policy))
    # (deepspeed_config had an "auto" train_batch_size, filled with world size 1 while the
    # TRL config is built: zero.Init asserted 4 != 4 * 1 * 2 at load. It no longer has one.)
    ds = deepspeed_config("zero3") | {"zero_allow_untested_optimizer": True}
    args = GRPOConfig(output_dir=str(out / "ckpt"), max_steps=2, per_device_train_batch_size=4,
                      num_generations=4, max_completion_length=8, learning_rate=1e-2,
                      beta=0.001, bf16=False, use_cpu=True, report_to="none", save_strategy="no",
                      deepspeed=ds, logging_steps=1, seed=0)
    from transformers import AutoModelForCausalLM
    from transformers.integrations import is_deepspeed_zero3_enabled

    result: dict[str, object] = {"mode": mode, "zero3_enabled_before_load":
                                 is_deepspeed_zero3_enabled()}
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32)
    params = list(model.parameters())
    result["partitioned_at_load"] = all(hasattr(p, "ds_id") and p.numel() == 0 for p in params)
    peft_config = None
    if mode == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM",
                                 target_modules=["q_proj", "v_proj"])
    data = Dataset.from_list([{"prompt": f"祝福 {i}"} for i in range(16)])

    def reward(completions: list[str], **_: object) -> list[float]:
        return [float(len(c)) for c in completions]

    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=data,
                          processing_class=tokenizer, peft_config=peft_config)
    trainer.train()
    trained = trainer.model_wrapped.module if hasattr(trainer.model_wrapped, "module") \
        else trainer.model

    import deepspeed

    # The new way: the trainer's own save on all ranks (under ZeRO-3 a collective that gathers
    # the 16-bit weights; rank 0 writes), then (LoRA) the merge on rank 0 from what it saved.
    trainer.save_model(str(out / "saved"))
    # Ground truth: the trained weights, gathered on every rank (a collective).
    named = dict(trained.named_parameters())
    with deepspeed.zero.GatheredParameters(list(named.values()), modifier_rank=None):
        gathered = {k: v.detach().clone() for k, v in named.items()}
    if rank == 0:
        result["saved_files"] = sorted(p.name for p in (out / "saved").iterdir())
        result.update(_check(mode, policy, out, gathered))
    torch.distributed.barrier()

    # The old way (what run_grpo did, on every rank): merge_and_unload / save_pretrained on
    # the partitioned model. Last, since merging changes the model in place.
    try:
        old = trained.merge_and_unload() if mode == "lora" else trained
        old.save_pretrained(out / f"old-way-{rank}")
        from safetensors.torch import load_file

        saved = load_file(str(out / f"old-way-{rank}" / "model.safetensors"))
        old_way = {"empty_tensors": sum(1 for t in saved.values() if t.numel() == 0),
                   "tensors": len(saved)}
    except Exception as e:  # noqa: BLE001 - recorded: this is what the experiment shows
        old_way = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    if rank == 0:
        result["old_way"] = old_way
        (out / "result.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2), flush=True)


def _check(mode: str, policy: Path, out: Path, gathered: dict[str, torch.Tensor]
           ) -> dict[str, object]:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    if mode == "lora":
        from peft import PeftModel
        from transformers.integrations import deepspeed as hf_deepspeed

        # Rank 0 alone loads the base: with the ZeRO-3 config still registered, from_pretrained
        # would run zero.Init, whose broadcasts wait forever for the other ranks (seen: hang).
        registered = hf_deepspeed._hf_deepspeed_config_weak_ref
        hf_deepspeed.unset_hf_deepspeed_config()
        try:
            base = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32)
        finally:
            hf_deepspeed._hf_deepspeed_config_weak_ref = registered
        merged = PeftModel.from_pretrained(base, out / "saved").merge_and_unload()
        merged.save_pretrained(out / "merged")
        final = load_file(str(out / "merged" / "model.safetensors"))
        # Expected merged q_proj/v_proj: W + (alpha / r) * B @ A from the gathered weights.
        worst, checked = 0.0, 0
        for key, weight in final.items():
            prefix = "base_model.model." + key.removesuffix(".weight")
            a = gathered.get(f"{prefix}.lora_A.default.weight")
            if a is None:
                base_key = f"base_model.model.{key}"
                if base_key in gathered:
                    worst = max(worst, (gathered[base_key] - weight).abs().max().item())
                    checked += 1
                continue
            b = gathered[f"{prefix}.lora_B.default.weight"]
            w = gathered[f"{prefix}.base_layer.weight"]
            expected = w + (16 / 8) * b @ a
            worst = max(worst, (expected - weight).abs().max().item())
            checked += 1
        lora_b_nonzero = any(v.abs().sum().item() > 0 for k, v in gathered.items()
                             if "lora_B" in k)
        return {"merged_tensors": len(final), "checked": checked, "max_abs_diff": worst,
                "empty_tensors": sum(1 for t in final.values() if t.numel() == 0),
                "lora_trained": lora_b_nonzero}
    saved = load_file(str(out / "saved" / "model.safetensors"))
    worst, checked = 0.0, 0
    for key, weight in saved.items():
        if key in gathered:
            worst = max(worst, (gathered[key].to(weight.dtype) - weight).abs().max().item())
            checked += 1
    base = load_file(str(policy / "model.safetensors"))
    moved = max((saved[k] - base[k].to(saved[k].dtype)).abs().max().item()
                for k in saved if k in base)
    return {"saved_tensors": len(saved), "checked": checked, "max_abs_diff": worst,
            "empty_tensors": sum(1 for t in saved.values() if t.numel() == 0),
            "max_change_from_base": moved}


if __name__ == "__main__":
    main()
