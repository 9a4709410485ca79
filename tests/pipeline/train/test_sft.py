"""SFT with real TRL on the starter set, the real local MLflow store and the real CLI."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhufu.pipeline import stage_runner
from zhufu.pipeline.config import LoRAConfig, SFTConfig
from zhufu.pipeline.results import RESULT_FILE_ENV, StageResult
from zhufu.pipeline.train.sft import build_dataset, to_messages


def test_to_messages() -> None:
    assert to_messages(" 写一句生日祝福 ", "", "生日快乐！") == [
        {"role": "user", "content": "写一句生日祝福"},
        {"role": "assistant", "content": "生日快乐！"}]
    assert to_messages("写祝福", "给老师", "x")[0]["content"] == "写祝福\n给老师"


def test_starter_dataset_labels_only_the_greeting(zhufu_home: Path) -> None:
    from zhufu.pipeline.data import load_sft
    from zhufu.pipeline.models import load_tokenizer

    tok = load_tokenizer("tiny", padding_side="right")
    ds = build_dataset(None, tok, max_length=256)
    examples = load_sft(None)
    assert len(ds) == len(examples) >= 150
    first = ds[0]
    assert len(first["input_ids"]) == len(first["labels"])
    start = first["labels"].count(-100)
    assert first["labels"][:start] == [-100] * start and -100 not in first["labels"][start:]
    assert tok.decode(first["input_ids"][:start]).endswith("<|im_start|>assistant\n")
    assert tok.decode(first["labels"][start:]) == examples[0].output + "<|im_end|>\n"
    short = build_dataset(None, tok, max_length=24)
    assert max(len(r) for r in short["input_ids"]) == 24
    with pytest.raises(ValueError, match="row 1: the prompt alone is"):
        build_dataset(None, tok, max_length=3)


def test_run_sft_registers_a_loadable_policy(zhufu_home: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    import torch
    from safetensors.torch import load_file

    from zhufu.pipeline.models import load_causal_lm, resolve_model, tiny_policy_path

    result_file = tmp_path / "termination-log"
    monkeypatch.setenv(RESULT_FILE_ENV, str(result_file))
    cfg = SFTConfig(max_steps=2, batch_size=2, max_length=48, learning_rate=1e-3,
                    output_dir=str(tmp_path / "out"))
    result = stage_runner.run("sft", cfg)

    assert StageResult.from_json(result_file.read_text()) == result
    assert result.stage == "sft" and math.isfinite(result.metrics["train_loss"])
    assert result.metrics["steps"] == 2.0
    saved = Path(result.outputs["model"])
    assert saved == tmp_path / "out" / "sft" / result.mlflow_run_id
    assert {"config.json", "model.safetensors", "tokenizer.json",
            "chat_template.jinja"} <= {p.name for p in saved.iterdir()}
    before = load_file(tiny_policy_path() / "model.safetensors")
    after = load_file(saved / "model.safetensors")
    assert before.keys() == after.keys()
    assert not torch.equal(before["model.embed_tokens.weight"],
                           after["model.embed_tokens.weight"])

    run = mlflow.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.params["max_steps"] == "2"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == [1, 2]
    assert all(math.isfinite(m.value) for m in history)
    version = result.registered["zhufu-policy"]
    alias = mlflow.MlflowClient().get_model_version_by_alias("zhufu-policy", "sft")
    assert str(alias.version) == version and alias.run_id == result.mlflow_run_id

    path = resolve_model("models:/zhufu-policy@sft")
    assert (path / "model.safetensors").read_bytes() == (saved / "model.safetensors").read_bytes()
    model, tok = load_causal_lm("models:/zhufu-policy@sft", device="cpu")
    prompt = tok.apply_chat_template([{"role": "user", "content": "给妈妈写一句生日祝福"}],
                                     tokenize=False, add_generation_prompt=True)
    batch = tok([prompt], return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == batch.input_ids.shape[1] + 4 or out[0, -1] in (tok.pad_token_id,
                                                                      tok.eos_token_id)


def test_run_sft_with_lora_saves_merged_weights(zhufu_home: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    cfg = SFTConfig(max_steps=2, batch_size=2, max_length=48, learning_rate=1e-2,
                    output_dir=str(tmp_path / "out"), register_as="zhufu-test-lora",
                    alias="lora", lora=LoRAConfig(r=4, alpha=8, dropout=0.0))
    result = stage_runner.run("sft", cfg)
    saved = Path(result.outputs["model"])
    assert not (saved / "adapter_config.json").exists()
    weights = load_file(saved / "model.safetensors")
    assert not [k for k in weights if "lora" in k]
    from zhufu.pipeline.models import tiny_policy_path

    base = load_file(tiny_policy_path() / "model.safetensors")
    q = "model.layers.0.self_attn.q_proj.weight"
    assert weights[q].shape == base[q].shape and not (weights[q] == base[q]).all()
    emb = "model.embed_tokens.weight"
    assert (weights[emb] == base[emb]).all()  # LoRA leaves the embeddings alone
    assert result.registered == {"zhufu-test-lora": result.registered["zhufu-test-lora"]}


def test_cli_config_errors_exit_2(tmp_path: Path) -> None:
    from zhufu.pipeline.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["sft", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml: no such config file" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_steps: lots\nbatch_sise: 4\n", encoding="utf-8")
    out = runner.invoke(app, ["sft", "--config", str(bad), "--set", "learning_rate=-1"])
    assert out.exit_code == 2
    for field in ("max_steps", "batch_sise", "learning_rate"):
        assert field in out.output
    assert "Traceback" not in out.output


@pytest.mark.slow
def test_cli_sft_end_to_end(zhufu_home: Path, tmp_path: Path) -> None:
    """``zhufu sft`` as a subprocess prints the StageResult JSON on stdout."""
    import os
    import subprocess

    config = tmp_path / "sft.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\nmax_length: 64\n", encoding="utf-8")
    env = {**os.environ, "ZHUFU_HOME": str(zhufu_home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([str(Path(sys.executable).parent / "zhufu"), "sft", "--config",
                           str(config), "--set", "max_steps=2", "--set", "batch_size=2"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = StageResult.from_json(proc.stdout.strip().splitlines()[-1])
    assert result.metrics["steps"] == 2.0 and "zhufu-policy" in result.registered
    assert json.loads(proc.stdout.strip().splitlines()[-1])["stage"] == "sft"

