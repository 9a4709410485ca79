"""GRPO set-up without a model: presets, cluster configs, reward guards, checkpoints."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from zhufu.pipeline.config import ConfigError, GRPOConfig, load_config
from zhufu.pipeline.hardware import Precision
from zhufu.pipeline.train.grpo_setup import (
    PRESETS,
    RewardClock,
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
    # DeepSpeed derives it; an "auto" one is filled with world size 1 (experiments/zero3_save.py)
    assert "train_batch_size" not in ds
    args = trainer_args(cfg, tmp_path, on_gpu=True, precision=Precision("bf16"))
    assert Path(args["deepspeed"]).is_file()
    assert args["bf16"] is True and args["use_cpu"] is False
    assert deepspeed_config("none") is None


def test_vllm_modes_render(tmp_path: Path) -> None:
    server = GRPOConfig(vllm="server", vllm_server_url="http://vllm:8000")
    args = trainer_args(server, tmp_path, on_gpu=True, precision=Precision("bf16"))
    assert args["use_vllm"] and args["vllm_mode"] == "server"
    assert args["vllm_server_base_url"] == "http://vllm:8000"
    colocate = trainer_args(GRPOConfig(vllm="colocate"), tmp_path, on_gpu=True,
                            precision=Precision("bf16"))
    assert colocate["vllm_mode"] == "colocate"
    assert trainer_args(GRPOConfig(), tmp_path, on_gpu=False)["use_vllm"] is False
    with pytest.raises(ConfigError, match="vllmServerUrl"):
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
    assert out == [2.0, 2.5, 3.0]  # the mean of the prompt's other completions: no advantage
    assert failures == {"fragile": 1}
    assert wrapped.__name__ == "fragile"


def test_guard_wraps_async_rewards() -> None:
    async def slow(prompts, completions, **kw):  # noqa: ANN001, ANN202
        return [1.0 for _ in completions]

    assert asyncio.run(guarded(slow, "slow", {})(["p"], ["x"])) == [1.0]


def test_reward_clock_times_the_whole_phase_of_concurrent_rewards() -> None:
    """Two async rewards of one step run together: one phase, logged once at its end."""
    async def sleepy(seconds: float):  # noqa: ANN202
        async def reward(prompts, completions, **kw):  # noqa: ANN001, ANN202
            await asyncio.sleep(seconds)
            return [1.0 for _ in completions]
        return reward

    async def step(clock: RewardClock, logged: list) -> float:
        a = guarded(await sleepy(0.2), "a", {}, clock)
        b = guarded(await sleepy(0.1), "b", {}, clock)
        kw = {"log_metric": lambda name, value: logged.append((name, value))}
        started = time.perf_counter()
        await asyncio.gather(a(["p"], ["x"], **kw), b(["p"], ["x"], **kw))
        return time.perf_counter() - started

    clock, logged = RewardClock(), []
    wall = asyncio.run(step(clock, logged)) + asyncio.run(step(clock, logged))
    assert [name for name, _ in logged] == ["reward_seconds", "reward_seconds"]
    assert all(0.2 <= value <= 0.2 + wall for _, value in logged)  # the longer one, not a sum
    assert clock.phases == 2 and clock.total == pytest.approx(sum(v for _, v in logged))
    assert clock.active == 0


def test_reward_clock_closes_the_phase_when_a_reward_raises() -> None:
    async def oom(prompts, completions, **kw):  # noqa: ANN001, ANN202
        raise RuntimeError("CUDA out of memory")

    clock = RewardClock()
    with pytest.raises(RuntimeError):
        asyncio.run(guarded(oom, "rm", {}, clock)(["p"], ["x"]))
    assert clock.active == 0 and clock.phases == 1


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


@pytest.mark.parametrize("where", ["batch", "one completion"])
def test_guard_lets_a_cuda_failure_fail_the_step(where: str) -> None:
    """A CUDA out-of-memory in a reward must stop the step, not become neutral rewards.
    (The OOM is raised by the test: no GPU here, the error type is torch's real one.)"""
    import torch

    def oom(prompts, completions, **kw):  # noqa: ANN001, ANN202
        if where == "batch" or "long" in completions[0]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        if len(completions) > 1:
            raise RuntimeError("batch too mixed")  # forces the one-by-one retry
        return [1.0]

    failures: dict[str, int] = {}
    with pytest.raises(torch.cuda.OutOfMemoryError):
        asyncio.run(guarded(oom, "rm", failures)(["p", "p"], ["short", "long one"]))
    assert failures == {}


def test_batch_size_is_the_global_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = apply_preset(GRPOConfig(preset="paper"))
    assert trainer_args(cfg, tmp_path, on_gpu=False, world=8)["per_device_train_batch_size"] == 4
    monkeypatch.setenv("WORLD_SIZE", "16")  # as torchrun sets it: 2 nodes x 8 GPUs
    assert trainer_args(cfg, tmp_path, on_gpu=False)["per_device_train_batch_size"] == 2
    monkeypatch.setenv("WORLD_SIZE", "12")
    with pytest.raises(ValueError, match="batch_size=32 is the global batch.*WORLD_SIZE=12"):
        trainer_args(cfg, tmp_path, on_gpu=False)


def test_fp16_fallback_reaches_trainer_and_deepspeed(tmp_path: Path) -> None:
    args = trainer_args(GRPOConfig(deepspeed="zero3"), tmp_path, on_gpu=True,
                        precision=Precision("fp16"))
    assert (args["bf16"], args["fp16"]) == (False, True)
    ds = deepspeed_config("zero3")
    assert ds["fp16"] == {"enabled": "auto"} and ds["bf16"] == {"enabled": "auto"}


def test_vllm_without_gpus_fails_at_run_start(zhufu_home: Path) -> None:
    """On this CPU machine (real: torch sees no GPU) ``zhufu grpo`` with vLLM rollouts stops
    before the policy loads, naming the setting."""
    from zhufu.pipeline.hardware import HardwareError
    from zhufu.pipeline.stage_runner import run

    cfg = GRPOConfig(policy="tiny", vllm="server", vllm_server_url="http://127.0.0.1:9/v1",
                     rewards=[{"name": "format"}])
    with pytest.raises(HardwareError, match="vllm: server needs CUDA GPUs"):
        run("grpo", cfg)
    with pytest.raises(HardwareError, match="vllm: colocate needs CUDA GPUs"):
        run("grpo", GRPOConfig(policy="tiny", vllm="colocate"))


@pytest.mark.parametrize(("given", "root"), [
    ("http://vllm:8000", "http://vllm:8000"),
    ("http://vllm:8000/", "http://vllm:8000"),
    ("http://vllm:8000/v1", "http://vllm:8000"),
    (" https://gpu-7.zhufu.svc:8000/v1/ ", "https://gpu-7.zhufu.svc:8000"),
    ("http://gateway/vllm/v1", "http://gateway/vllm"),
])
def test_vllm_server_url_is_the_root(given: str, root: str) -> None:
    assert GRPOConfig(vllm="server", vllm_server_url=given).vllm_server_url == root


@pytest.mark.parametrize("bad", ["vllm:8000", "ftp://vllm:8000", "http:///v1", ""])
def test_bad_vllm_server_url_names_the_field(bad: str) -> None:
    with pytest.raises(ConfigError, match="vllm_server_url"):
        load_config(GRPOConfig, None, ["vllm=server", f"vllm_server_url={bad!r}"])
