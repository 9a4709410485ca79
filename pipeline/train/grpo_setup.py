"""Everything GRPO needs before a model loads: presets, reward functions, cluster configs.

Bad configs fail here — unknown reward names are already rejected by the pydantic model;
a judge or reward model that cannot be found fails in :func:`build_rewards`, before the
policy is loaded. DeepSpeed ZeRO and vLLM rollouts are rendered as configuration for GPU
clusters (neither runs on the CPU machines the tests use; the tests check the rendering).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zhufu.pipeline.config import GRPOConfig, RewardSpec
from zhufu.pipeline.errors import ConfigError, ZhufuError
from zhufu.pipeline.hardware import (
    HardwareError,
    Precision,
    is_device_error,
    per_device_batch,
    train_precision,
    world_size,
)
from zhufu.pipeline.results import StageResult
from zhufu.pipeline.rewards import neutral_fill

log = logging.getLogger(__name__)

#: The paper's settings (arXiv 2508.21476, §Experiments): 4 samples per prompt, batch 32,
#: lr 3e-7, KL 0.001, prompt ≤ 256 and response ≤ 512 tokens.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"num_generations": 4, "batch_size": 32, "learning_rate": 3e-7, "beta": 0.001,
              "max_prompt_length": 256, "max_completion_length": 512},
    # The tiny offline policy (10M parameters, random init + a short SFT) needs a large step.
    "tiny": {"num_generations": 4, "batch_size": 8, "learning_rate": 1e-3, "beta": 0.001,
             "max_prompt_length": 64, "max_completion_length": 40},
}

def policy_from_sft(cfg: GRPOConfig, done: Mapping[str, StageResult]) -> GRPOConfig:
    """A GRPORun's GRPO step after its ``sft`` step: train the model SFT registered
    (``models:/NAME/VERSION``, so every rank on every node fetches the same version), or the
    model it wrote when it registered none. Without an SFT step the config is unchanged."""
    sft = done.get("sft")
    if sft is None:
        return cfg
    if sft.registered:
        name, version = next(iter(sft.registered.items()))
        policy = f"models:/{name}/{version}"
    else:
        policy = sft.outputs["model"]
    return cfg.model_copy(update={"policy": policy})


def apply_preset(cfg: GRPOConfig) -> GRPOConfig:
    """The config with its named preset's values for every field the user did not set.

    >>> apply_preset(GRPOConfig(preset="paper", learning_rate=1e-6)).learning_rate
    1e-06
    >>> apply_preset(GRPOConfig(preset="paper")).batch_size
    32
    """
    if cfg.preset is None:
        return cfg
    preset = {k: v for k, v in PRESETS[cfg.preset].items() if k not in cfg.model_fields_set}
    return cfg.model_validate({**cfg.model_dump(), **preset})


def deepspeed_config(stage: str) -> dict[str, Any] | None:
    """A DeepSpeed JSON config for ZeRO-2 / ZeRO-3 with ``auto`` values HF fills in.

    No ``train_batch_size``: transformers would fill an ``auto`` one from the world size it
    sees while the TRL config is built, which is still 1, and DeepSpeed then refuses the
    config on any multi-process run (seen on 2 CPU ranks: "4 != 4 * 1 * 2"). Without it
    DeepSpeed computes micro batch x accumulation x world size itself.
    """
    if stage == "none":
        return None
    zero: dict[str, Any] = {"stage": 2 if stage == "zero2" else 3,
                            "overlap_comm": True, "contiguous_gradients": True}
    if stage == "zero3":
        zero |= {"stage3_gather_16bit_weights_on_model_save": True,
                 "stage3_prefetch_bucket_size": "auto",
                 "stage3_param_persistence_threshold": "auto"}
    return {"bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}, "zero_optimization": zero,
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
            "train_micro_batch_size_per_gpu": "auto"}


def vllm_args(cfg: GRPOConfig) -> dict[str, Any]:
    """TRL GRPOConfig fields for vLLM rollouts (colocated in the trainer, or a server)."""
    if cfg.vllm == "none":
        return {"use_vllm": False}
    args: dict[str, Any] = {"use_vllm": True, "vllm_mode": cfg.vllm}
    if cfg.vllm == "server":
        args["vllm_server_base_url"] = cfg.vllm_server_url
    else:
        args["vllm_gpu_memory_utilization"] = 0.3
    return args


def check_hardware(cfg: GRPOConfig, on_gpu: bool) -> None:
    """Refuse, before any model loads, settings this machine cannot run.

    vLLM rollouts (either mode) need CUDA: the colocated engine runs on the trainer's GPUs and
    the server mode syncs weights over NCCL from a GPU.
    """
    if cfg.vllm != "none" and not on_gpu:
        raise HardwareError(f"vllm: {cfg.vllm} needs CUDA GPUs, and torch sees none in this "
                            "process (torch.cuda.is_available() is False); use vllm: none to "
                            "generate with transformers instead")


def trainer_args(cfg: GRPOConfig, output_dir: Path, on_gpu: bool, *,
                 precision: Precision | None = None, world: int | None = None
                 ) -> dict[str, Any]:
    """Keyword arguments for ``trl.GRPOConfig`` (kept a dict so tests need no trainer).

    ``cfg.batch_size`` is the global batch: each of the ``world`` processes (default:
    ``WORLD_SIZE``) gets an equal share. ``precision`` defaults to what the GPU supports.
    """
    precision = precision or train_precision(on_gpu)
    per_device = per_device_batch(cfg.batch_size, world or world_size())
    args: dict[str, Any] = {
        "output_dir": str(output_dir), "max_steps": cfg.max_steps,
        "per_device_train_batch_size": per_device, "num_generations": cfg.num_generations,
        "learning_rate": cfg.learning_rate, "beta": cfg.beta,
        "max_completion_length": cfg.max_completion_length, "seed": cfg.seed,
        "save_strategy": "steps", "save_steps": cfg.save_steps, "save_total_limit": 2,
        "logging_steps": 1, "report_to": "none", **precision.trainer_flags, "use_cpu": not on_gpu,
        "dataloader_num_workers": 0, "disable_tqdm": False, "temperature": 1.0,
    }
    ds = deepspeed_config(cfg.deepspeed)
    if ds is not None:
        path = output_dir / "deepspeed.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ds, indent=2), encoding="utf-8")
        args["deepspeed"] = str(path)
    return args | vllm_args(cfg)


class RewardClock:
    """Wall seconds of each step's reward phase, shared by the step's reward functions.

    TRL runs a step's async rewards together (``asyncio.gather``): the phase starts when the
    first one starts and ends when the last one returns. At its end the seconds go to TRL's
    ``log_metric`` as ``reward_seconds`` (TRL averages them over the logging step and logs
    them with its ``step_time``) and add up in :attr:`total`.
    """

    def __init__(self) -> None:
        self.active = 0
        self.started = 0.0
        self.total = 0.0
        self.phases = 0

    def start(self) -> None:
        if self.active == 0:
            self.started = time.perf_counter()
        self.active += 1

    def stop(self, log_metric: Callable[[str, float], None] | None) -> None:
        self.active -= 1
        if self.active:
            return
        seconds = time.perf_counter() - self.started
        self.total += seconds
        self.phases += 1
        if log_metric is not None:
            log_metric("reward_seconds", seconds)


def guarded(func: Callable[..., Any], name: str, counter: dict[str, int],
            clock: RewardClock | None = None) -> Callable[..., Any]:
    """Wrap a reward function so one bad completion costs a neutral reward, not the batch.

    If the batched call raises, each completion is scored alone. A completion that still
    raises, or that the function scores ``None``, gets the one neutral value of
    :func:`zhufu.pipeline.rewards.neutral_fill` and is counted in ``counter[name]``. A CUDA
    failure (out of memory, a device-side assert, NCCL) is re-raised at once and fails the
    step: it says nothing about the completion, and neutral rewards would hide a broken run.
    The wrapper is async (TRL awaits it on its reward event loop) whether ``func`` is sync or
    async. With a ``clock``, the call is timed as part of the step's reward phase.
    """

    async def call(prompts: Sequence[Any], completions: Sequence[Any], kw: dict[str, Any]
                   ) -> list[float | None]:
        out = func(prompts, completions, **kw)
        return [None if x is None else float(x)
                for x in (await out if inspect.isawaitable(out) else out)]

    async def wrapper(prompts: Sequence[Any], completions: Sequence[Any], **kw: Any
                      ) -> list[float]:
        if clock is None:
            return await scored(prompts, completions, kw)
        clock.start()
        try:
            return await scored(prompts, completions, kw)
        finally:
            clock.stop(kw.get("log_metric"))

    async def scored(prompts: Sequence[Any], completions: Sequence[Any], kw: dict[str, Any]
                     ) -> list[float]:
        try:
            values = await call(prompts, completions, kw)
        except Exception as e:  # noqa: BLE001 - reward code of any kind; retried one by one
            if is_device_error(e):
                raise
            values = []
            for i in range(len(completions)):
                one = {k: [v[i]] if isinstance(v, list) and len(v) == len(completions) else v
                       for k, v in kw.items()}
                try:
                    values.append((await call([prompts[i]], [completions[i]], one))[0])
                except Exception as e:  # noqa: BLE001
                    if is_device_error(e):
                        raise
                    log.warning("reward %s failed on completion %d: %s", name, i, e)
                    values.append(None)
        failed = sum(v is None for v in values)
        if failed:
            counter[name] = counter.get(name, 0) + failed
        return neutral_fill(prompts, values)

    functools.update_wrapper(wrapper, func, assigned=("__doc__",), updated=())
    wrapper.__name__ = name
    return wrapper


def make_reward(spec: RewardSpec) -> Callable[..., Any]:
    """The reward function a spec names (judge / rm load their model or judge here)."""
    if spec.name == "judge":
        from zhufu.pipeline.rewards.judge_reward import judge_reward

        return judge_reward(spec.model)
    if spec.name == "rm":
        from zhufu.pipeline.models import resolve_model
        from zhufu.pipeline.rewards.rm import rm_reward

        if not spec.model:
            raise ConfigError("rewards: 'rm' needs 'model' (a path or models:/zhufu-reward@…)")
        # a missing model fails here; the guard vetoes degenerate text (rewards/guard.py)
        return rm_reward(str(resolve_model(spec.model)), guard=spec.guard is not False)
    if spec.name == "variety":  # remembers recent completions: one per GRPO run
        from zhufu.pipeline.rewards.variety import VarietyReward

        return VarietyReward()
    from zhufu.pipeline.rewards.rules import RULE_REWARDS

    return RULE_REWARDS[spec.name]


def build_rewards(cfg: GRPOConfig, counter: dict[str, int], clock: RewardClock | None = None
                  ) -> tuple[list[Callable[..., Any]], list[float]]:
    """Guarded reward functions and their weights, in config order (zero weights dropped),
    timed by ``clock`` when given."""
    funcs, weights = [], []
    for i, spec in enumerate(cfg.rewards):
        if spec.weight == 0:
            continue
        try:
            func = make_reward(spec)
        except (ZhufuError, OSError) as e:  # a model or judge that cannot be loaded
            raise ConfigError(f"rewards.{i} ({spec.name}): {e}") from e
        seen = [s.name for s in cfg.rewards[:i]]
        name = f"{spec.name}_{i}" if spec.name in seen else spec.name
        funcs.append(guarded(func, name, counter, clock))
        weights.append(spec.weight)
    return funcs, weights


def checkpoint_step(name: str) -> int | None:
    """N of a ``checkpoint-N`` name (Trainer's checkpoint folders), else None.

    >>> checkpoint_step("checkpoint-12"), checkpoint_step("checkpoint-x")
    (12, None)
    """
    prefix, _, tail = name.rpartition("-")
    return int(tail) if prefix == "checkpoint" and tail.isdigit() else None


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder Trainer wrote in ``folder`` (by N), if any:
    one whose ``trainer_state.json`` (the file Trainer writes last) reads as JSON, so a process
    killed while writing it leaves the previous checkpoint the one to resume from."""
    found = [(step, p) for p in folder.glob("checkpoint-*")
             if (step := checkpoint_step(p.name)) is not None and p.is_dir()
             and _state_readable(p / "trainer_state.json")]
    return max(found)[1] if found else None


def _state_readable(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True
