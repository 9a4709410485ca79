"""GRPO set-up without a model: presets, cluster configs, reward guards, checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zhufu.pipeline.config import ConfigError, GRPOConfig, load_config
from zhufu.pipeline.train.grpo_setup import (
    NEUTRAL_REWARD,
    PRESETS,
    apply_preset,
    build_rewards,
    deepspeed_config,
    guarded,
    latest_checkpoint,
    trainer_args,
)


def test_paper_preset_matches_the_paper() -> None:
    cfg = apply_preset(GRPOConfig(preset="paper"))
    assert (cfg.num_generations, cfg.batch_size, cfg.learning_rate, cfg.beta) == (4, 32, 3e-7,
                                                                                  0.001)
    assert cfg.max_completion_length == PRESETS["paper"]["max_completion_length"] == 512


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_configs_render(stage: str, tmp_path: Path) -> None:
    cfg = GRPOConfig(deepspeed=stage)
    ds = deepspeed_config(stage)
    assert ds["zero_optimization"]["stage"] == (2 if stage == "zero2" else 3)
    args = trainer_args(cfg, tmp_path, on_gpu=True)
    assert Path(args["deepspeed"]).is_file()
    assert args["bf16"] is True and args["use_cpu"] is False
    assert deepspeed_config("none") is None


def test_vllm_modes_render(tmp_path: Path) -> None:
    server = GRPOConfig(vllm="server", vllm_server_url="http://vllm:8000")
    args = trainer_args(server, tmp_path, on_gpu=True)
    assert args["use_vllm"] and args["vllm_mode"] == "server"
    assert args["vllm_server_base_url"] == "http://vllm:8000"
    colocate = trainer_args(GRPOConfig(vllm="colocate"), tmp_path, on_gpu=True)
    assert colocate["vllm_mode"] == "colocate"
    assert trainer_args(GRPOConfig(), tmp_path, on_gpu=False)["use_vllm"] is False
    with pytest.raises(ConfigError, match="vllm_server_url"):
        load_config(GRPOConfig, None, ["vllm=server"])


def test_trainer_args_are_accepted_by_trl(tmp_path: Path) -> None:
    from trl import GRPOConfig as TRLGRPOConfig

    args = TRLGRPOConfig(**trainer_args(apply_preset(GRPOConfig(preset="tiny")), tmp_path,
                                        on_gpu=False), reward_weights=[1.0])
    assert args.num_generations == 4 and args.beta == 0.001


def test_guard_gives_counted_neutral_reward_to_the_bad_completion() -> None:
    def fragile(prompts, completions, **kw):  # noqa: ANN001, ANN202
        if any("boom" in c for c in completions):
            raise RuntimeError("cannot score")
        return [float(len(c)) for c in completions]

    failures: dict[str, int] = {}
    wrapped = guarded(fragile, "fragile", failures)
    out = asyncio.run(wrapped(["p"] * 3, ["ab", "boom", "abc"], query=["q1", "q2", "q3"]))
    assert out == [2.0, NEUTRAL_REWARD, 3.0]
    assert failures == {"fragile": 1}
    assert wrapped.__name__ == "fragile"


def test_guard_wraps_async_rewards() -> None:
    async def slow(prompts, completions, **kw):  # noqa: ANN001, ANN202
        return [1.0 for _ in completions]

    assert asyncio.run(guarded(slow, "slow", {})(["p"], ["x"])) == [1.0]


def test_bad_reward_model_fails_before_any_policy_loads(tmp_path: Path) -> None:
    cfg = GRPOConfig(rewards=[{"name": "rm", "model": str(tmp_path / "missing")}])
    with pytest.raises(ValueError, match=r"rewards\.0 \(rm\)"):
        build_rewards(cfg, {})
    with pytest.raises(ValueError, match="needs 'model'"):
        build_rewards(GRPOConfig(rewards=[{"name": "rm"}]), {})


def test_zero_weight_rewards_are_dropped() -> None:
    funcs, weights = build_rewards(GRPOConfig(rewards=[
        {"name": "format", "weight": 1.0}, {"name": "length", "weight": 0.0},
        {"name": "format", "weight": 0.5}]), {})
    assert [f.__name__ for f in funcs] == ["format", "format_2"]
    assert weights == [1.0, 0.5]


def test_latest_checkpoint_picks_highest_complete_step(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    for step in (2, 10, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-12").mkdir()  # incomplete: no trainer_state.json
    assert latest_checkpoint(tmp_path).name == "checkpoint-10"


def test_preset_fills_only_unset_fields() -> None:
    import doctest

    import zhufu.pipeline.train.grpo_setup as setup

    assert doctest.testmod(setup).failed == 0
    cfg = apply_preset(load_config(GRPOConfig, None, ["preset=tiny", "max_completion_length=24"]))
    assert cfg.max_completion_length == 24
    assert cfg.learning_rate == PRESETS["tiny"]["learning_rate"]
