"""Where this process's work runs: its rank's device, the world size, the precision it can train in.

Everything is read when asked, never at import: torchrun and accelerate set ``LOCAL_RANK`` and
``WORLD_SIZE`` in the environment, and the trainer sets each rank's CUDA device only once it
starts, so a reward built before that still puts its model on the right GPU when it first
loads it. torch is imported lazily (the operator imports the config, never torch).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Literal

from zhufu.pipeline.errors import ConfigError

log = logging.getLogger(__name__)

#: Substrings of the messages torch gives CUDA / NCCL / cuBLAS / cuDNN failures.
_DEVICE_ERROR_MARKS = ("CUDA error", "CUDA out of memory", "CUBLAS_STATUS", "CUDNN_STATUS",
                       "cuDNN error", "NCCL error", "device-side assert")


class HardwareError(ConfigError):
    """The config asks for hardware this process lacks, or for a split that does not fit it
    (a :class:`~zhufu.pipeline.errors.ConfigError`: the CLI prints it on one line, exit 2)."""


def env_int(name: str, default: int) -> int:
    """The non-negative integer in environment variable ``name`` (``default`` when unset).

    >>> env_int("ZHUFU_DOCTEST_UNSET", 3)
    3
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise HardwareError(f"environment variable {name}={raw!r}: expected a whole number >= 0")
    return int(raw)


def local_rank() -> int:
    """This process's index on its node (``LOCAL_RANK``, 0 outside torchrun)."""
    return env_int("LOCAL_RANK", 0)


def world_size() -> int:
    """How many training processes there are in all (``WORLD_SIZE``, 1 outside torchrun)."""
    size = env_int("WORLD_SIZE", 1)
    if size < 1:
        raise HardwareError("environment variable WORLD_SIZE=0: expected at least 1 process")
    return size


def rank_device(device: str | None = None) -> str:
    """The device for models this rank loads outside the trainer (reward models, LLM judges).

    An explicit device wins, except plain ``"cuda"``, which means this rank's GPU; with none,
    ``cuda:<LOCAL_RANK>`` when torch sees CUDA, else ``"cpu"``. Chosen at the call, so the
    answer follows the environment of the process that loads the model.
    """
    if device and device != "cuda":
        return device
    import torch

    if not torch.cuda.is_available():
        if device == "cuda":
            raise HardwareError("device 'cuda' requested, but torch sees no CUDA device")
        return "cpu"
    rank, count = local_rank(), torch.cuda.device_count()
    if rank >= count:
        raise HardwareError(f"LOCAL_RANK={rank}, but this process sees only {count} CUDA "
                            f"device(s): one GPU per local rank is expected")
    return f"cuda:{rank}"


@dataclass(frozen=True)
class Precision:
    """How the trainer computes: ``bf16`` (weights and math), ``fp16`` mixed (fp32 weights,
    fp16 math with loss scaling) or plain ``fp32``."""

    name: Literal["bf16", "fp16", "fp32"]

    @property
    def trainer_flags(self) -> dict[str, bool]:
        """``bf16`` / ``fp16`` for ``transformers.TrainingArguments``."""
        return {"bf16": self.name == "bf16", "fp16": self.name == "fp16"}

    @property
    def load_dtype(self) -> str:
        """The torch dtype to load weights in (fp16 mixed precision keeps fp32 weights)."""
        return "bfloat16" if self.name == "bf16" else "float32"


def train_precision(on_gpu: bool) -> Precision:
    """bf16 where the GPU computes in it natively (compute capability 8.0 and up), else fp16
    mixed precision with a warning; fp32 on CPU."""
    if not on_gpu:
        return Precision("fp32")
    import torch

    if torch.cuda.is_bf16_supported(including_emulation=False):
        return Precision("bf16")
    name = torch.cuda.get_device_name()
    major, minor = torch.cuda.get_device_capability()
    log.warning("%s (compute capability %d.%d) has no native bf16: training in fp16 mixed "
                "precision with fp32 weights instead", name, major, minor)
    return Precision("fp16")


def per_device_batch(global_batch: int, world: int, field: str = "batch_size") -> int:
    """The share of one process of a global batch (the paper's meaning of batch size).

    >>> per_device_batch(32, 8)
    4
    >>> per_device_batch(32, 3)
    Traceback (most recent call last):
    ...
    zhufu.pipeline.hardware.HardwareError: batch_size=32 is the global batch and must divide \
evenly over WORLD_SIZE=3 processes: use a multiple of 3 (e.g. 33)
    """
    if global_batch % world:
        suggestion = -(-global_batch // world) * world
        raise HardwareError(f"{field}={global_batch} is the global batch and must divide evenly "
                            f"over WORLD_SIZE={world} processes: use a multiple of {world} "
                            f"(e.g. {suggestion})")
    return global_batch // world


def is_device_error(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is a CUDA failure: out of memory, a
    device-side assert, a cuBLAS / cuDNN / NCCL error. Such a failure is not a bad input; it
    leaves the device in a state a retry cannot fix."""
    torch = sys.modules.get("torch")
    kinds: tuple[type[BaseException], ...] = ()
    if torch is not None:
        kinds = tuple(k for k in (getattr(torch.cuda, "OutOfMemoryError", None),
                                  getattr(torch, "AcceleratorError", None)) if k is not None)
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if kinds and isinstance(current, kinds):
            return True
        if isinstance(current, RuntimeError) and any(m in str(current)
                                                     for m in _DEVICE_ERROR_MARKS):
            return True
        current = current.__cause__ or current.__context__
    return False
