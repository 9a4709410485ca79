"""A toy distributed training run for the elastic-restart experiment (issue 13, item 6).

DDP over gloo, a linear model, ``MAX_STEPS`` steps of ``STEP_SECONDS`` each; every
``SAVE_EVERY`` steps all ranks reach a barrier, then rank 0 writes ``checkpoint-N`` and only
then the ``LATEST`` marker (so a marker never names a half-written checkpoint). A start
resumes from ``LATEST``. At the end rank 0 appends one line to ``registered.txt`` (standing
in for the MLflow registration) — a restarted group must still register exactly once.

    torchrun ... experiments/elastic_toy.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

MAX_STEPS = int(os.environ.get("TOY_MAX_STEPS", "12"))
SAVE_EVERY = int(os.environ.get("TOY_SAVE_EVERY", "2"))
STEP_SECONDS = float(os.environ.get("TOY_STEP_SECONDS", "1.0"))


def main() -> None:
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    step = 0
    marker = out / "LATEST"
    if marker.is_file():
        state = torch.load(out / marker.read_text().strip() / "state.pt")
        model.module.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
    log = out / f"events-rank{rank}.jsonl"
    with log.open("a") as f:
        f.write(json.dumps({"event": "start", "step": step, "world": world,
                            "restart": restart, "pid": os.getpid()}) + "\n")
    while step < MAX_STEPS:
        x = torch.randn(16, 8)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()  # all-reduce with the other ranks: fails if a peer is gone
        opt.step()
        step += 1
        time.sleep(STEP_SECONDS)
        if step % SAVE_EVERY == 0:
            dist.barrier()  # every rank finished the step before rank 0 names a checkpoint
            if rank == 0:
                target = out / f"checkpoint-{step}"
                target.mkdir(parents=True, exist_ok=True)
                torch.save({"model": model.module.state_dict(), "opt": opt.state_dict(),
                            "step": step}, target / "state.pt")
                tmp = out / "LATEST.tmp"
                tmp.write_text(target.name)
                tmp.replace(marker)  # atomic: LATEST is written last
            dist.barrier()
    if rank == 0:
        with (out / "registered.txt").open("a") as f:
            f.write(f"version at step {step}\n")
    with log.open("a") as f:
        f.write(json.dumps({"event": "end", "step": step, "restart": restart}) + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
