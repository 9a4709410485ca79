"""Helpers of ``scripts/gpu-smoke.sh``: build the models, write the configs, read the results.

    models  --size 0.5b|tiny --out DIR     random policy + reward model, saved to disk
    config  --name NAME --work DIR ...     one ``zhufu grpo`` YAML config
    summary --work DIR ...                 check the runs and print one JSON line

The policy is saved to disk before training so that its ``config._name_or_path`` is a real
path: TRL loads the reference model (``beta > 0``) from it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

#: Qwen2.5-0.5B's shape (random weights: nothing is downloaded). ~494M parameters.
QWEN2_05B = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
             "num_attention_heads": 14, "num_key_value_heads": 2,
             "tie_word_embeddings": True, "max_position_embeddings": 4096}
#: A small random reward model with the same tokenizer (~45M parameters, mostly embeddings).
RM_SHAPE = {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
            "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": True,
            "max_position_embeddings": 1024}
MODEL_NAME = "zhufu-smoke-policy"
EXPERIMENT = "zhufu-gpu-smoke"


def make_models(size: str, out: Path) -> dict[str, str]:
    """Specs of the policy and the reward model: saved random Qwen2 models for ``0.5b``,
    zhufu's embedded tiny ones (also real folders on disk) for ``tiny``."""
    from zhufu.pipeline.models import resolve_model

    if size == "tiny":
        return {"policy": str(resolve_model("tiny")), "rm": str(resolve_model("tiny-rm"))}
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen2ForSequenceClassification,
    )

    from zhufu.pipeline.models import qwen_tokenizer_path

    tokenizer = AutoTokenizer.from_pretrained(qwen_tokenizer_path())
    ids = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
           "eos_token_id": tokenizer.eos_token_id, "bos_token_id": None}
    torch.manual_seed(0)
    specs = {}
    for role, cls, shape, extra in (
            ("policy", Qwen2ForCausalLM, QWEN2_05B, {}),
            ("rm", Qwen2ForSequenceClassification, RM_SHAPE, {"num_labels": 1})):
        target = out / role
        if not (target / "config.json").is_file():
            model = cls(Qwen2Config(**shape, **ids, **extra)).to(torch.bfloat16)
            model.save_pretrained(target)
            tokenizer.save_pretrained(target)
            params = sum(p.numel() for p in model.parameters())
            print(f"{role}: {params / 1e6:.0f}M parameters saved to {target}", file=sys.stderr)
        specs[role] = str(target)
    return specs


def write_config(name: str, work: Path, models: dict[str, str], device: str, steps: int,
                 save_steps: int, variant: str) -> Path:
    """A ``zhufu grpo`` config: judge + reward model + rule rewards, checkpoints; LoRA except
    for ZeRO-3, which trains every weight (so TRL loads the reference model from the saved
    policy's path, and the registered model must be the gathered, trained weights)."""
    import yaml

    cfg: dict[str, Any] = {
        "experiment": EXPERIMENT, "output_dir": str(work / "outputs"),
        "policy": models["policy"],
        "rewards": [{"name": "judge", "weight": 1.0},
                    {"name": "rm", "model": models["rm"], "weight": 0.5},
                    {"name": "format", "weight": 0.5}, {"name": "length", "weight": 0.5}],
        "max_steps": steps, "save_steps": save_steps,
        "checkpoint_dir": str(work / f"checkpoints-{variant}"), "resume": "auto",
        "register_as": MODEL_NAME, "alias": variant,
    }
    if variant != "zero3":
        cfg["lora"] = {"r": 16, "alpha": 32}
    if device == "cpu":
        cfg |= {"preset": "tiny", "max_completion_length": 24}
    else:
        cfg |= {"num_generations": 4, "batch_size": 32, "learning_rate": 1e-6, "beta": 0.001,
                "max_completion_length": 128}
    if variant == "zero3":
        cfg["deepspeed"] = "zero3"
    elif variant == "vllm":
        cfg["vllm"] = "colocate"
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    return path


def _result(work: Path, name: str) -> dict[str, Any] | None:
    path = work / f"{name}.result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _tensor_sizes(folder: Path) -> dict[str, int]:
    """Number of values of every tensor in a saved model's safetensors files."""
    from safetensors import safe_open

    sizes: dict[str, int] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                shape = f.get_slice(key).get_shape()
                sizes[key] = int(math.prod(shape))
    if not sizes:
        raise SystemExit(f"{folder}: no safetensors weights")
    return sizes


def _peak_gib(mem_csv: Path) -> float | None:
    """The highest GPU memory nvidia-smi reported on any GPU during the runs (GiB)."""
    if not mem_csv.is_file():
        return None
    values = [float(x) for line in mem_csv.read_text().splitlines()
              for x in line.split(",") if x.strip().replace(".", "", 1).isdigit()]
    return round(max(values) / 1024, 2) if values else None


def summary(work: Path, gpus: int, device: str, base_steps: int, total_steps: int,
            tried: dict[str, str]) -> dict[str, Any]:
    """Check what the runs left (results, checkpoints, MLflow) and gather the figures."""
    from mlflow import MlflowClient

    client = MlflowClient()
    problems: list[str] = []
    base, resumed = _result(work, "base"), _result(work, "resume")
    if base is None or resumed is None:
        raise SystemExit(f"missing result file(s) in {work}: base={base is not None}, "
                         f"resume={resumed is not None}")
    bm, rm = base["metrics"], resumed["metrics"]
    if int(bm["steps"]) != base_steps:
        problems.append(f"base run ended at step {bm['steps']}, planned {base_steps}")
    if int(rm["resumed_from_step"]) != base_steps or int(rm["steps"]) != total_steps:
        problems.append(f"resume run: from step {rm['resumed_from_step']} to {rm['steps']}, "
                        f"planned {base_steps} to {total_steps}")
    history = client.get_metric_history(base["mlflow_run_id"], "train/num_tokens")
    tokens = max((m.value for m in history), default=0.0)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    expected_versions = 2 + sum(1 for v in tried.values() if v == "passed")
    if len(versions) != expected_versions:
        problems.append(f"{len(versions)} registered versions of {MODEL_NAME}, "
                        f"expected {expected_versions}")
    for name, state in tried.items():
        if state == "failed":
            problems.append(f"{name} run failed (see {work / name}.log)")
    policy = Path(json.loads((work / "models" / "specs.json").read_text())["policy"])
    planned = _tensor_sizes(policy)
    for name in ("base", "resume", *[n for n, v in tried.items() if v == "passed"]):
        saved = _tensor_sizes(Path(_result(work, name)["outputs"]["model"]))
        if saved != planned:
            empty = sorted(k for k, n in saved.items() if n == 0)[:3]
            problems.append(f"{name}: the registered model's tensors differ from the policy's "
                            f"({sum(saved.values())} vs {sum(planned.values())} values; empty: "
                            f"{empty})")
    seconds = float(bm["seconds"])
    line = {"device": device, "gpus": gpus, "steps": int(bm["steps"]) + int(rm["steps"]) -
            int(rm["resumed_from_step"]), "s_per_step": round(seconds / max(bm["steps"], 1), 3),
            "tokens_per_s_per_gpu": round(tokens / seconds / max(gpus, 1), 1),
            "peak_gpu_memory_gib": _peak_gib(work / "gpu-memory.csv"),
            "mlflow_runs": len(runs), "model_versions": len(versions),
            "resumed_from_step": int(rm["resumed_from_step"]), "optional": tried,
            "problems": problems}
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("models")
    m.add_argument("--size", choices=["0.5b", "tiny"], required=True)
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("config")
    c.add_argument("--name", required=True)
    c.add_argument("--work", type=Path, required=True)
    c.add_argument("--device", choices=["cuda", "cpu"], required=True)
    c.add_argument("--steps", type=int, required=True)
    c.add_argument("--save-steps", type=int, required=True)
    c.add_argument("--variant", choices=["base", "zero3", "vllm"], default="base")
    s = sub.add_parser("summary")
    s.add_argument("--work", type=Path, required=True)
    s.add_argument("--gpus", type=int, required=True)
    s.add_argument("--device", required=True)
    s.add_argument("--base-steps", type=int, required=True)
    s.add_argument("--total-steps", type=int, required=True)
    s.add_argument("--optional", default="", help="name=passed|failed|skipped,...")
    args = parser.parse_args()
    if args.cmd == "models":
        args.out.mkdir(parents=True, exist_ok=True)
        specs = make_models(args.size, args.out)
        (args.out / "specs.json").write_text(json.dumps(specs))
    elif args.cmd == "config":
        specs = json.loads((args.work / "models" / "specs.json").read_text())
        print(write_config(args.name, args.work, specs, args.device, args.steps,
                           args.save_steps, args.variant))
    else:
        tried = dict(p.split("=", 1) for p in args.optional.split(",") if p)
        line = summary(args.work, args.gpus, args.device, args.base_steps, args.total_steps,
                       tried)
        print(json.dumps(line, ensure_ascii=False))
        if line["problems"]:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
