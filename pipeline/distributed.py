"""Which process this is under ``torchrun`` or ``accelerate launch``, and the two collectives
the stage wrapper needs (a barrier and a broadcast from global rank 0).

The ranks come from the environment the launchers set (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``), so asking costs nothing and imports no torch; a plain ``zhufu sft`` is rank 0
of a world of 1. :func:`init` starts the process group the trainers would start anyway
(Accelerate reuses an initialised one): NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

T = TypeVar("T")


def rank() -> int:
    """The global rank of this process (0 without a launcher)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """The rank on this node (0 without a launcher)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    """How many processes run the stage together (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True on global rank 0: the one process that owns a stage's side effects."""
    return rank() == 0


def _initialised() -> bool:
    import sys

    if "torch" not in sys.modules:  # nothing imported torch: no process group can exist
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init() -> None:
    """Join the process group of a multi-process launch (no-op for a world of 1 or when
    already joined)."""
    if world_size() <= 1 or _initialised():
        return
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
        dist.init_process_group(backend="nccl")
    else:
        dist.init_process_group(backend="gloo")


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if _initialised():
        import torch.distributed as dist

        dist.barrier()


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (``obj`` itself without a process group).

    ``obj`` must pickle; the ranks must all call this at the same point.
    """
    if not _initialised():
        return obj
    import torch.distributed as dist

    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
