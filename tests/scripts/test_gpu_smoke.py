"""``scripts/gpu-smoke.sh``: the GPU smoke test, run here on CPU before any GPU sees it.

The slow test runs the whole script with ``--device cpu`` (one rank, zhufu's tiny models):
``zhufu grpo`` through torchrun with judge + reward-model + rule rewards and LoRA, a run that
ends with a checkpoint, a second run that resumes from it, both registered in a local MLflow;
ZeRO-3 and vLLM are skipped with a message where their packages are missing. The fast tests
check the pieces of its summary that must catch a bad run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import gpu_smoke  # noqa: E402


def test_tensor_sizes_show_an_empty_save(tmp_path: Path) -> None:
    """A ZeRO-3 save without gathering leaves empty tensors: the summary's check sees it."""
    full, empty = tmp_path / "full", tmp_path / "empty"
    full.mkdir()
    empty.mkdir()
    save_file({"w": torch.ones(4, 3), "b": torch.ones(3)}, str(full / "model.safetensors"))
    save_file({"w": torch.ones(0), "b": torch.ones(3)}, str(empty / "model.safetensors"))
    assert gpu_smoke._tensor_sizes(full) == {"w": 12, "b": 3}
    assert gpu_smoke._tensor_sizes(empty) != gpu_smoke._tensor_sizes(full)
    with pytest.raises(SystemExit, match="no safetensors"):
        gpu_smoke._tensor_sizes(tmp_path)


def test_peak_memory_reads_nvidia_smi_samples(tmp_path: Path) -> None:
    csv = tmp_path / "gpu-memory.csv"
    csv.write_text("1024\n40960\n2048\n")
    assert gpu_smoke._peak_gib(csv) == 40.0
    assert gpu_smoke._peak_gib(tmp_path / "absent.csv") is None


def test_configs_ask_for_the_product_features(tmp_path: Path) -> None:
    from zhufu.pipeline.config import GRPOConfig, load_config

    models = {"policy": "/m/policy", "rm": "/m/rm"}
    for device in ("cuda", "cpu"):
        for variant in ("base", "zero3", "vllm"):
            path = gpu_smoke.write_config(f"{device}-{variant}", tmp_path, models, device, 4, 2,
                                          variant)
            cfg = load_config(GRPOConfig, path, [])
            assert [r.name for r in cfg.rewards] == ["judge", "rm", "format", "length"]
            assert (cfg.lora is None) == (variant == "zero3") and cfg.resume == "auto"
            assert cfg.deepspeed == ("zero3" if variant == "zero3" else "none")
            assert cfg.vllm == ("colocate" if variant == "vllm" else "none")
    gpu = load_config(GRPOConfig, tmp_path / "cuda-base.yaml", [])
    assert (gpu.batch_size, gpu.num_generations, gpu.max_completion_length) == (32, 4, 128)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three zhufu grpo runs; DeepSpeed JIT-builds its CPU ops on first use
def test_gpu_smoke_script_runs_on_cpu(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ZHUFU_HOME", "MLFLOW_TRACKING_URI")}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(["bash", "scripts/gpu-smoke.sh", "--device", "cpu", "--work",
                           str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["problems"] == []
    assert (line["steps"], line["resumed_from_step"]) == (4, 2)
    # base + resume, and one more run and version per optional try that ran (ZeRO-3 runs on
    # CPU wherever DeepSpeed is installed, as make install does)
    ran = 2 + sum(1 for state in line["optional"].values() if state == "passed")
    assert (line["mlflow_runs"], line["model_versions"]) == (ran, ran)
    assert line["s_per_step"] > 0 and line["tokens_per_s_per_gpu"] > 0
    assert line["optional"]["vllm"] == "skipped"
    assert line["optional"]["zero3"] in ("passed", "skipped")
