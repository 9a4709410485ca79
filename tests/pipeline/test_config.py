"""Stage configs: YAML + overrides load; bad configs name the field and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zhufu.pipeline.config import (
    ConfigError,
    CurateConfig,
    GRPOConfig,
    JudgeTrainConfig,
    LLMConfig,
    RewardModelConfig,
    apply_override,
    load_config,
)


def test_every_stage_has_defaults_that_validate() -> None:
    from zhufu.pipeline.stages import STAGES  # the stage table replaced config.STAGES

    for name, stage in STAGES.items():
        assert stage.config.model_validate({}).experiment == "zhufu", name


def test_judge_binary_is_gone() -> None:
    """JudgeTrainConfig.binary never reached the judge; a config that still sets it is told."""
    with pytest.raises(ConfigError, match="binary"):
        load_config(JudgeTrainConfig, None, ["binary=true"])


def test_lora_on_the_char_encoder_is_refused() -> None:
    """LoRA adapts a pretrained model; base_model 'char' is a fresh encoder (and merging the
    adapters back needs the base weights on disk)."""
    with pytest.raises(ConfigError, match="lora adapts a pretrained model"):
        load_config(RewardModelConfig, None, ["base_model=char", "lora={r: 4}"])


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("llm:\n  concurrency: 8\nretrieval:\n  top_k: 5\n", encoding="utf-8")
    cfg = load_config(CurateConfig, path, ["llm.concurrency=32", "debate.enabled=false"])
    assert cfg.llm.concurrency == 32
    assert cfg.retrieval.top_k == 5
    assert cfg.debate.enabled is False


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        (["llm.concurrency=0"], "llm.concurrency", "greater than or equal to 1"),
        (["retrieval.kind=sparse"], "retrieval.kind", "'bm25', 'dense' or 'none'"),
        (["samples_per_query=many"], "samples_per_query", "valid integer"),
        (["temprature=0.1"], "temprature", "Extra inputs are not permitted"),
        (["llm.backend=openai"], "llm", "needs both 'model' and 'baseUrl'"),
        (["output_dir=s3://"], "output_dir", "needs a bucket name"),
        (["queries=s3:///q.txt"], "queries", "needs a bucket name"),
        (["exemplars=s3://Bad_Bucket/e.json"], "exemplars", "not a valid bucket name"),
        (["retrieval.kind=dense"], "retrieval.model", "needs retrieval.model"),
    ],
)
def test_bad_config_names_field_and_reason(overrides: list[str], field: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(CurateConfig, None, overrides)
    assert field in str(err.value)
    assert reason in str(err.value)


def test_grpo_rejects_zero_weights_and_unknown_reward() -> None:
    with pytest.raises(ConfigError, match="weights sum to 0"):
        load_config(GRPOConfig, None, ["rewards=[{name: judge, weight: 0}]"])
    with pytest.raises(ConfigError, match=r"rewards\.0\.name"):
        load_config(GRPOConfig, None, ["rewards=[{name: bleu}]"])


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(LLMConfig, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(LLMConfig, bad)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_override({}, "no-equals-sign")


def test_configs_never_import_torch() -> None:
    """Checked in a fresh process: the operator imports these models and must stay torch-free."""
    code = "import zhufu.pipeline.config, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-P", "-c", code], check=True)


def test_camel_case_and_snake_case_both_load(tmp_path: Path) -> None:
    """Configs use camelCase (the CRDs' spelling); files written with snake_case still load,
    to the same values."""
    camel = tmp_path / "camel.yaml"
    camel.write_text("numGenerations: 2\nbatchSize: 4\ncheckpointDir: s3://bkt/ck\n"
                     "lora: {targetModules: [q_proj]}\n", encoding="utf-8")
    snake = tmp_path / "snake.yaml"
    snake.write_text("num_generations: 2\nbatch_size: 4\ncheckpoint_dir: s3://bkt/ck\n"
                     "lora: {target_modules: [q_proj]}\n", encoding="utf-8")
    a, b = load_config(GRPOConfig, camel), load_config(GRPOConfig, snake)
    assert a == b and a.num_generations == 2 and a.lora.target_modules == ["q_proj"]
    llm = LLMConfig.model_validate({"timeoutSeconds": 5, "maxRetries": 1})
    assert (llm.timeout_s, llm.max_retries) == (5, 1)
    assert LLMConfig(timeout_s=5).timeout_s == 5  # Python code keeps the attribute names


def test_both_spellings_at_once_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "grpo.yaml"
    path.write_text("maxSteps: 3\nmax_steps: 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="maxSteps and max_steps are the same field"):
        load_config(GRPOConfig, path)


def test_override_replaces_the_field_in_the_files_spelling(tmp_path: Path) -> None:
    """``--set max_steps=5`` on a file that says ``maxSteps`` changes that field instead of
    adding a second spelling (which the model would refuse)."""
    path = tmp_path / "grpo.yaml"
    path.write_text("maxSteps: 3\n", encoding="utf-8")
    assert load_config(GRPOConfig, path, ["max_steps=5"]).max_steps == 5
    data = {"llm": {"baseUrl": "http://a/v1"}}
    apply_override(data, "llm.base_url=http://b/v1")
    assert data == {"llm": {"baseUrl": "http://b/v1"}}


def test_examples_spell_every_field_in_camel_case() -> None:
    """examples/*.yaml are what users copy: every key a config model reads is camelCase."""
    import yaml

    def keys(node: object) -> list[str]:
        if isinstance(node, dict):
            return [k for k in node] + [k2 for v in node.values() for k2 in keys(v)]
        if isinstance(node, list):
            return [k for v in node for k in keys(v)]
        return []

    repo = Path(__file__).resolve().parents[2]
    files = sorted((repo / "examples").glob("*.yaml"))
    assert files
    for path in files:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))  # several docs
        snake = [k for doc in documents for k in keys(doc) if "_" in k]
        assert not snake, f"{path.name}: {snake}"
