"""GRPO fine-tuning of the policy with judge, reward-model and rule rewards (TRL GRPOTrainer).

What runs is TRL's GRPO: for each prompt ``num_generations`` completions are sampled, each
reward function scores them, the weighted sum is normalised within the group into an
advantage, and the policy takes a clipped policy-gradient step with a KL penalty of weight
``beta`` to the starting policy. Differences from the paper: rollouts come from HF
``generate`` unless ``vllm`` is set, and on CPU we use the tiny preset (a small batch and
short completions) — the paper's settings are the ``paper`` preset.

Prompts are cut to ``max_prompt_length`` tokens when the dataset is built (TRL 1.16 has no such
limit). Checkpoints go to ``checkpoint_dir`` (local, or ``s3://`` mirrored from a local folder
by global rank 0) every ``save_steps``; with ``resume: auto`` a restarted run continues from
the newest one (model, optimizer, scheduler and step count) and ends at the same ``max_steps``
(a checkpoint already at ``max_steps`` trains nothing more: the rerun registers its model,
:func:`~zhufu.pipeline.train.callbacks.fit`). Under ``torchrun`` every rank trains; the stage
wrapper saves, registers and reports once, on rank 0. The readable share of the completions the
rewards score is logged at every logging step (``train/readable_share``), with a warning when
it falls (:mod:`zhufu.pipeline.train.readable_monitor`). An ``rm`` reward with its degeneracy
guard on (the default) logs how many completions it vetoed per call (``train/rm_vetoed``,
``train/rm_vetoed_share``) and the run's total on rank 0 (``reward_vetoed/rm``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from zhufu.pipeline.config import GRPOConfig
from zhufu.pipeline.errors import ConfigError, DataError
from zhufu.pipeline.hardware import train_precision
from zhufu.pipeline.results import Registration, StageOutput
from zhufu.pipeline.train.grpo_setup import (
    RewardClock,
    build_rewards,
    check_hardware,
    checkpoint_step,
    latest_checkpoint,
    trainer_args,
)
from zhufu.pipeline.train.plain_head import add_plain_lm_head
from zhufu.pipeline.train.readable_monitor import ReadableMonitor, monitored

STARTER_URI = "zhufu://starter/prompts"


def build_prompt_dataset(uri: str | None, tokenizer: Any, max_prompt_length: int
                         ) -> tuple[Any, int]:
    """(``datasets.Dataset`` with ``prompt`` (chat messages) and ``query`` columns from
    ``load_prompts(uri)``, how many prompts were cut to ``max_prompt_length`` tokens).

    TRL 1.16's GRPOConfig has no prompt length limit, so it is applied here: the rendered
    prompt (chat template and generation header included) of each row is at most
    ``max_prompt_length`` tokens, by cutting the end of its last user message. ``query``
    stays whole: rewards judge the greeting against the full request.
    """
    from datasets import Dataset

    from zhufu.pipeline.data import load_prompts

    rows, truncated = [], 0
    for p in load_prompts(uri):
        messages, cut = truncate_prompt(p.messages, tokenizer, max_prompt_length)
        truncated += int(cut)
        rows.append({"prompt": messages, "query": p.query})
    if not rows:
        raise DataError(uri or STARTER_URI, None, None, "no prompts")
    return Dataset.from_list(rows), truncated


def prompt_tokens(messages: list[dict[str, str]], tokenizer: Any) -> list[int]:
    """The token ids of ``messages`` as the policy sees them (template + generation header)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def truncate_prompt(messages: list[dict[str, str]], tokenizer: Any, max_length: int
                    ) -> tuple[list[dict[str, str]], bool]:
    """``messages`` with the end of the last user message cut so the rendered prompt has at
    most ``max_length`` tokens; (messages, whether anything was cut). A prompt whose template
    alone is too long is a :class:`~zhufu.pipeline.errors.ConfigError`."""
    excess = len(prompt_tokens(messages, tokenizer)) - max_length
    if excess <= 0:
        return messages, False
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    content = tokenizer(messages[last]["content"], add_special_tokens=False)["input_ids"]
    keep = len(content) - excess
    while keep > 0:
        text = tokenizer.decode(content[:keep]).rstrip("\ufffd")  # no half characters
        cut = [*messages[:last], {**messages[last], "content": text}, *messages[last + 1:]]
        if len(prompt_tokens(cut, tokenizer)) <= max_length:
            return cut, True
        keep -= 1
    raise ConfigError(f"max_prompt_length {max_length}: the chat template alone is longer; "
                      "raise max_prompt_length")


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
    """Upload each new checkpoint to ``target`` once every rank wrote its part, then point the
    ``LATEST`` marker at it (so a checkpoint is only ever named once it is complete).

    Every rank writes into ``checkpoint-N`` (rank 0 the model, scheduler and trainer state;
    each rank its RNG state; under DeepSpeed its optimizer shard): the ranks meet at a
    barrier, the local rank 0 of each node uploads what its node wrote, they meet again, and
    global rank 0 writes ``LATEST`` last (docs/gpu.md, "Checkpoints across ranks").
    """
    from transformers import TrainerCallback

    from zhufu.pipeline import distributed
    from zhufu.pipeline.data.storage import upload_dir, write_text

    class S3Checkpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            name = f"checkpoint-{state.global_step}"
            distributed.barrier()
            if distributed.local_rank() == 0:
                upload_dir(local / name, f"{target.rstrip('/')}/{name}")
            distributed.barrier()
            if state.is_world_process_zero:
                write_text(f"{target.rstrip('/')}/{LATEST_MARKER}", name)

    return S3Checkpoints()


def _restore_from_s3(local: Path, target: str) -> str | None:
    """Make the local mirror hold the checkpoint ``LATEST`` names in an ``s3://`` dir, and
    nothing newer; returns its name (``None`` when there is none).

    A newer local folder is what a broken group left behind (rank 0 wrote its files, another
    node never finished its part): it is removed, so every node resumes from the same,
    complete checkpoint.
    """
    import shutil

    from zhufu.pipeline.data.storage import download_dir, exists, read_text

    marker = f"{target.rstrip('/')}/{LATEST_MARKER}"
    name = read_text(marker).strip() if exists(marker) else None
    step = checkpoint_step(name) if name else -1  # no marker: nothing is complete
    if step is None:
        raise DataError(marker, None, None, f"names {name!r}, not a checkpoint-N folder")
    for folder in local.glob("checkpoint-*"):
        folder_step = checkpoint_step(folder.name)
        if folder_step is not None and folder_step > step:
            shutil.rmtree(folder)
    if name and latest_checkpoint(local) != local / name:
        download_dir(f"{target.rstrip('/')}/{name}", local / name)
    return name


def reward_time(clock: RewardClock, seconds: float, steps: int) -> dict[str, float]:
    """Seconds per optimizer step spent in the rewards, and their share of the step."""
    if steps <= 0 or clock.phases == 0:
        return {}
    return {"reward_s_per_step": clock.total / steps, "s_per_step": seconds / steps,
            "reward_share": clock.total / seconds if seconds > 0 else 0.0}


def lineage_tags(cfg: GRPOConfig) -> dict[str, str]:
    """What this policy was trained from: base policy, rewards (with their models), data."""
    tags = {"zhufu.stage": "grpo", "base_policy": cfg.policy,
            "prompts": cfg.prompts or STARTER_URI}
    for spec in cfg.rewards:
        tags[f"reward.{spec.name}"] = f"{spec.model or 'default'} (weight {spec.weight:g})"
    return tags


def grpo(cfg: GRPOConfig) -> StageOutput:
    """Train with checkpoints on every rank (see the module docstring); the wrapper saves,
    logs and registers the policy (``zhufu-policy@grpo``). ``cfg`` has its preset applied."""
    failures: dict[str, int] = {}
    clock = RewardClock()  # reward seconds per step, logged next to TRL's step_time
    rewards, weights = build_rewards(cfg, failures, clock)  # judge / RM before the policy
    guards = {f.__name__: f.__wrapped__ for f in rewards  # rm rewards with the guard on
              if getattr(getattr(f, "__wrapped__", None), "guard", False)}
    monitor = ReadableMonitor()
    rewards[0] = monitored(rewards[0], monitor)  # logs train/readable_share every step
    import torch

    on_gpu = torch.cuda.is_available()
    check_hardware(cfg, on_gpu)  # before any model loads (rewards load theirs on first use)
    precision = train_precision(on_gpu)
    args = trainer_args(cfg, checkpoint_folder(cfg), on_gpu, precision=precision)

    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig as TRLGRPOConfig
    from trl import GRPOTrainer

    from zhufu.pipeline import distributed, tracking
    from zhufu.pipeline.models import load_tokenizer, resolve_model
    from zhufu.pipeline.train.callbacks import fit, mlflow_metrics_callback

    policy = resolve_model(cfg.policy)
    tokenizer = load_tokenizer(str(policy), padding_side="left")
    dataset, truncated = build_prompt_dataset(cfg.prompts, tokenizer, cfg.max_prompt_length)
    ckpt = checkpoint_folder(cfg)
    s3_target = cfg.checkpoint_dir if (cfg.checkpoint_dir or "").startswith("s3://") else None
    resume_from = None
    if s3_target and cfg.resume == "auto":
        if distributed.local_rank() == 0:  # one download per node, into its local mirror
            _restore_from_s3(ckpt, s3_target)
        distributed.barrier()
    if cfg.resume == "auto":
        resume_from = latest_checkpoint(ckpt)
    callbacks = [mlflow_metrics_callback()]
    if s3_target:
        callbacks.append(_s3_sync_callback(ckpt, s3_target))
    tracking.log_dataset(cfg.prompts or STARTER_URI, "grpo-prompts", "training")
    tracking.log_metrics({"data/prompts": len(dataset), "data/prompts_truncated": truncated})
    if resume_from is not None:
        tracking.set_tags({"zhufu.resumed_from": resume_from.name})
    # The TRL config first: under ZeRO-3 it registers DeepSpeed, so the policy is partitioned
    # as it loads (docs/gpu.md, "ZeRO-3: saving what was trained").
    trl_args = TRLGRPOConfig(**args, reward_weights=weights)
    model = AutoModelForCausalLM.from_pretrained(
        policy, dtype=getattr(torch, precision.load_dtype))
    trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=trl_args,
                          train_dataset=dataset, processing_class=tokenizer,
                          peft_config=cfg.lora.to_peft("CAUSAL_LM") if cfg.lora else None,
                          callbacks=callbacks)
    if not on_gpu:  # TRL's tiled LM head costs more than the tiny model on CPU (plain_head.py)
        for m in (trainer.model, trainer.ref_model):
            if m is not None:
                add_plain_lm_head(m, trainer.temperature)
    steps, loss, seconds = fit(trainer, "grpo", resume_from_checkpoint=str(resume_from)
                               if resume_from else None)
    resumed_at = (checkpoint_step(resume_from.name) or 0) if resume_from else 0
    metrics = {"steps": float(steps), "train_loss": loss, "seconds": seconds,
               "resumed_from_step": float(resumed_at), **monitor.metrics(),
               **reward_time(clock, seconds, steps - resumed_at),
               **{f"reward_failures/{k}": float(v) for k, v in failures.items()},
               **{f"reward_vetoed/{k}": float(f.vetoed) for k, f in guards.items()}}
    return StageOutput(metrics=metrics, trainer=trainer, register=Registration(
        cfg.register_as, alias=cfg.alias, tags=lineage_tags(cfg)))
