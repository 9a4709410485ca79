"""GRPO fine-tuning of the policy with judge, reward-model and rule rewards (TRL GRPOTrainer).

What runs is TRL's GRPO: for each prompt ``num_generations`` completions are sampled, each
reward function scores them, the weighted sum is normalised within the group into an
advantage, and the policy takes a clipped policy-gradient step with a KL penalty of weight
``beta`` to the starting policy. Differences from the paper: rollouts come from HF
``generate`` unless ``vllm`` is set, and on CPU we use the tiny preset (a small batch and
short completions) — the paper's settings are the ``paper`` preset.

Checkpoints go to ``checkpoint_dir`` (local, or ``s3://`` mirrored from a local folder) every
``save_steps``; with ``resume: auto`` a restarted run continues from the newest one (model,
optimizer, scheduler and step count) and ends at the same ``max_steps``.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from zhufu.pipeline.config import GRPOConfig
from zhufu.pipeline.errors import DataError
from zhufu.pipeline.hardware import train_precision
from zhufu.pipeline.results import StageResult, emit
from zhufu.pipeline.train.grpo_setup import (
    apply_preset,
    build_rewards,
    check_hardware,
    latest_checkpoint,
    trainer_args,
)

STARTER_URI = "zhufu://starter/prompts"


def build_prompt_dataset(uri: str | None) -> Any:
    """``prompt`` (chat messages) and ``query`` columns from ``load_prompts(uri)``."""
    from datasets import Dataset

    from zhufu.pipeline.data import load_prompts

    rows = [{"prompt": p.messages, "query": p.query} for p in load_prompts(uri)]
    if not rows:
        raise DataError(uri or STARTER_URI, None, None, "no prompts")
    return Dataset.from_list(rows)


def checkpoint_folder(cfg: GRPOConfig) -> Path:
    """Local folder for checkpoints: ``checkpoint_dir`` itself, or a stable local mirror of
    an ``s3://`` one, or (unset) one derived from the output dir and the policy."""
    from zhufu.pipeline.models import data_dir, output_path

    target = cfg.checkpoint_dir or output_path(cfg.output_dir, "grpo", "checkpoints")
    if target.startswith("s3://"):
        digest = hashlib.sha256(target.encode()).hexdigest()[:16]
        return data_dir() / "checkpoints" / digest
    return Path(target)


LATEST_MARKER = "LATEST"


def _s3_sync_callback(local: Path, target: str) -> Any:
    """Upload each new checkpoint to ``target`` after Trainer saves it, then point the
    ``LATEST`` marker at it (so a checkpoint is only ever named once it is complete)."""
    from transformers import TrainerCallback

    from zhufu.pipeline.data.storage import upload_dir, write_text

    class S3Checkpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            name = f"checkpoint-{state.global_step}"
            upload_dir(local / name, f"{target.rstrip('/')}/{name}")
            write_text(f"{target.rstrip('/')}/{LATEST_MARKER}", name)

    return S3Checkpoints()


def _restore_from_s3(local: Path, target: str) -> None:
    """Bring the newest complete checkpoint of an ``s3://`` dir into the local mirror."""
    from zhufu.pipeline.data.storage import download_dir, exists, read_text

    marker = f"{target.rstrip('/')}/{LATEST_MARKER}"
    if latest_checkpoint(local) is None and exists(marker):
        name = read_text(marker).strip()
        download_dir(f"{target.rstrip('/')}/{name}", local / name)


def lineage_tags(cfg: GRPOConfig) -> dict[str, str]:
    """What this policy was trained from: base policy, rewards (with their models), data."""
    tags = {"zhufu.stage": "grpo", "base_policy": cfg.policy,
            "prompts": cfg.prompts or STARTER_URI}
    for spec in cfg.rewards:
        tags[f"reward.{spec.name}"] = f"{spec.model or 'default'} (weight {spec.weight:g})"
    return tags


def run_grpo(cfg: GRPOConfig) -> StageResult:
    """Train, checkpoint, log, register (``zhufu-policy@grpo``); see the module docstring."""
    from zhufu.pipeline import tracking

    tracking.configure()  # an unreachable MLflow server fails here, before anything loads
    cfg = apply_preset(cfg)
    failures: dict[str, int] = {}
    rewards, weights = build_rewards(cfg, failures)  # judge / RM resolved before the policy
    import torch

    on_gpu = torch.cuda.is_available()
    check_hardware(cfg, on_gpu)  # before any model loads (rewards load theirs on first use)
    precision = train_precision(on_gpu)
    args = trainer_args(cfg, checkpoint_folder(cfg), on_gpu, precision=precision)

    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig as TRLGRPOConfig
    from trl import GRPOTrainer

    from zhufu.pipeline.models import load_tokenizer, resolve_model
    from zhufu.pipeline.models.paths import publish, stage_output
    from zhufu.pipeline.train.callbacks import mlflow_metrics_callback

    dataset = build_prompt_dataset(cfg.prompts)
    policy = resolve_model(cfg.policy)
    tokenizer = load_tokenizer(str(policy), padding_side="left")
    ckpt = checkpoint_folder(cfg)
    s3_target = cfg.checkpoint_dir if (cfg.checkpoint_dir or "").startswith("s3://") else None
    if s3_target and cfg.resume == "auto":
        _restore_from_s3(ckpt, s3_target)
    resume_from = latest_checkpoint(ckpt) if cfg.resume == "auto" else None
    callbacks = [mlflow_metrics_callback()]
    if s3_target:
        callbacks.append(_s3_sync_callback(ckpt, s3_target))
    peft_config = None
    if cfg.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                 lora_dropout=cfg.lora.dropout, task_type="CAUSAL_LM",
                                 target_modules=list(cfg.lora.target_modules))
    with tracking.stage_run("grpo", cfg) as run:
        run_id = run.info.run_id
        tracking.log_dataset(cfg.prompts or STARTER_URI, "grpo-prompts", "training")
        if resume_from is not None:
            import mlflow

            mlflow.set_tag("zhufu.resumed_from", resume_from.name)
        model = AutoModelForCausalLM.from_pretrained(
            policy, dtype=getattr(torch, precision.load_dtype))
        trainer = GRPOTrainer(model=model, reward_funcs=rewards,
                              args=TRLGRPOConfig(**args, reward_weights=weights),
                              train_dataset=dataset, processing_class=tokenizer,
                              peft_config=peft_config, callbacks=callbacks)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        seconds = time.perf_counter() - started
        trained = trainer.model
        if peft_config is not None:
            trained = trained.merge_and_unload()
        local, target = stage_output(cfg.output_dir, "grpo", run_id)
        trained.save_pretrained(local)
        tokenizer.save_pretrained(local)
        publish(local, target)
        metrics = {"steps": float(output.global_step), "train_loss": float(output.training_loss),
                   "seconds": seconds, "resumed_from_step": float(
                       int(resume_from.name.split("-")[-1]) if resume_from else 0),
                   **{f"reward_failures/{k}": float(v) for k, v in failures.items()}}
        tracking.log_metrics(metrics)
        version = tracking.register_model_dir(local, cfg.register_as, alias=cfg.alias,
                                              tags=lineage_tags(cfg) | {"run_id": run_id})
    result = StageResult(stage="grpo", mlflow_run_id=run_id, outputs={"model": target},
                         registered={cfg.register_as: version}, metrics=metrics)
    emit(result)
    return result
