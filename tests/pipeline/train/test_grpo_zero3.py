"""``zhufu grpo`` under DeepSpeed ZeRO-3 on 2 CPU ranks (gloo, DeepSpeed's CPU accelerator,
no compiled ops): the registered model holds what was trained, not empty partitions.

The independent reference is DeepSpeed's own reconstruction of the full fp32 weights from
the per-rank ZeRO shards of the last checkpoint (``zero_to_fp32``): the registered model's
tensors, loaded through MLflow's transformers flavor, must equal them, and differ from the
base policy (training moved them). Before the stage wrapper, this path registered 16 of 27
tensors empty (docs/gpu.md, ``experiments/zero3_save.py``).

Marked ``slow`` and ``distributed``: ``make test-distributed`` (run by ``.ci/run``) runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zhufu.pipeline.results import RESULT_FILE_ENV, StageResult

# The first run on a machine also JIT-compiles DeepSpeed's shared-memory comm op for its CPU
# accelerator (minutes on 2 busy cores; cached in ~/.cache/torch_extensions afterwards).
pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(1800)]

BIN = Path(sys.executable).parent
STEPS = 2


def test_zero3_registers_the_gathered_trained_weights(zhufu_home: Path, tmp_path: Path
                                                      ) -> None:
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError as e:  # make install installs it (DS_BUILD_OPS=0: no compiled ops)
        raise AssertionError(f"DeepSpeed is missing ({e}); run `make install`") from e
    import mlflow
    import torch
    from safetensors.torch import load_file

    from zhufu.pipeline import tracking
    from zhufu.pipeline.models import tiny_policy_path

    base = load_file(str(tiny_policy_path() / "model.safetensors"))  # built once, here
    name = "zhufu-zero3"
    ckpt = tmp_path / "ckpt"
    sets = ["policy=tiny", "preset=tiny", f"max_steps={STEPS}", f"save_steps={STEPS}",
            "batch_size=4", "max_completion_length=8", "resume=never", "deepspeed=zero3",
            "rewards=[{name: format}, {name: length}]", f"checkpoint_dir={ckpt}",
            f"output_dir={tmp_path / 'out'}", "experiment=zero3", f"register_as={name}"]
    result_file = tmp_path / "termination-log"
    env = {**os.environ, "ZHUFU_HOME": str(zhufu_home), RESULT_FILE_ENV: str(result_file),
           "DS_ACCELERATOR": "cpu", "DS_BUILD_OPS": "0", "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2",
           str(BIN / "zhufu"), "grpo", *(a for s in sets for a in ("--set", s))]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=1700)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = StageResult.from_json(result_file.read_text(encoding="utf-8"))
    assert result.metrics["steps"] == STEPS, json.dumps(result.metrics)

    # DeepSpeed's own gather of the two ranks' ZeRO-3 partitions at the last step
    shards = sorted(p.name for p in (ckpt / f"checkpoint-{STEPS}").glob("global_step*/*"))
    assert any("rank_1" in s for s in shards), shards  # both ranks wrote their partition
    gathered = get_fp32_state_dict_from_zero_checkpoint(str(ckpt / f"checkpoint-{STEPS}"))

    tracking.configure()
    pipe = mlflow.transformers.load_model(f"models:/{name}@grpo")
    registered = {k: v.detach() for k, v in pipe.model.state_dict().items()}
    common = sorted(set(gathered) & set(registered))
    assert len(common) >= len(base) - 1, (sorted(gathered)[:5], sorted(registered)[:5])
    empty = [k for k in common if registered[k].numel() == 0]
    assert not empty, f"registered partitions instead of weights: {empty[:5]}"
    for key in common:
        assert registered[key].shape == gathered[key].shape, key
        torch.testing.assert_close(registered[key].float(), gathered[key].float(),
                                   rtol=0, atol=1e-6, msg=key)
    moved = [k for k in common if k in base and not torch.equal(base[k], registered[k])]
    assert len(moved) > len(common) // 2, "training left the weights unchanged"
