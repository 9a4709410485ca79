"""Device, world size and precision choices, checked on CPU.

No GPU exists on the machines these tests run on: where a test needs torch to *see* GPUs
(``cuda:<LOCAL_RANK>``, a GPU without bf16) it replaces ``torch.cuda``'s answers with
monkeypatch and says so. What it proves is the choice Zhufu makes from those answers and
from the environment torchrun sets, not CUDA itself.
"""

from __future__ import annotations

import doctest
import logging

import pytest
import torch

from zhufu.pipeline import hardware
from zhufu.pipeline.hardware import (
    HardwareError,
    Precision,
    is_device_error,
    per_device_batch,
    rank_device,
    train_precision,
    world_size,
)


def _pretend_gpus(monkeypatch: pytest.MonkeyPatch, count: int, bf16: bool = True) -> None:
    """Mock: torch.cuda answers as on a node with ``count`` GPUs (none exist here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-32GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 0))


def test_doctests() -> None:
    assert doctest.testmod(hardware).failed == 0


def test_cpu_only_machine_uses_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert not torch.cuda.is_available()  # real: these machines have no GPU
    assert rank_device() == "cpu"
    assert rank_device("cpu") == "cpu"
    with pytest.raises(HardwareError, match="no CUDA device"):
        rank_device("cuda")


@pytest.mark.parametrize(("local_rank", "expected"), [(None, "cuda:0"), ("0", "cuda:0"),
                                                      ("5", "cuda:5")])
def test_each_rank_gets_its_own_gpu(monkeypatch: pytest.MonkeyPatch, local_rank: str | None,
                                    expected: str) -> None:
    _pretend_gpus(monkeypatch, 8)
    if local_rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert rank_device() == expected
    assert rank_device("cuda") == expected  # plain "cuda" means this rank's GPU, not GPU 0
    assert rank_device("cuda:7") == "cuda:7"  # an explicit index wins


def test_more_local_ranks_than_gpus_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_gpus(monkeypatch, 2)
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(HardwareError, match="LOCAL_RANK=2.*only 2 CUDA"):
        rank_device()


def test_bad_rank_variables_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(HardwareError, match="WORLD_SIZE='two'"):
        world_size()
    monkeypatch.setenv("WORLD_SIZE", "0")
    with pytest.raises(HardwareError, match="WORLD_SIZE=0"):
        world_size()
    monkeypatch.delenv("WORLD_SIZE")
    assert world_size() == 1


def test_reward_model_device_is_chosen_when_first_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RM reward is built before the trainer sets the rank's device (and before torchrun's
    LOCAL_RANK is read): the device must be this rank's at the first call. The loader is
    replaced by a recorder (mock), and torch.cuda pretends to see 4 GPUs."""
    from zhufu.pipeline import models
    from zhufu.pipeline.rewards import rm

    loads: list[tuple[str, str | None]] = []

    class Scored:
        def __init__(self, n: int) -> None:
            self.logits = torch.zeros(n, 1)

    class Model:
        device = torch.device("cpu")
        config = type("C", (), {"zhufu_max_length": 16})()

        def eval(self) -> Model:
            return self

        def __call__(self, input_ids: torch.Tensor, **_: object) -> Scored:
            return Scored(len(input_ids))

    class Tok:
        pad_token, eos_token, sep_token, cls_token = "<p>", "<e>", None, None

        def __call__(self, texts: list[str], **_: object) -> dict[str, list[list[int]]]:
            return {"input_ids": [[1] for _ in texts], "attention_mask": [[1] for _ in texts]}

    def record(spec: str, device: str | None = None) -> tuple[Model, Tok]:
        loads.append((spec, device))
        return Model(), Tok()

    monkeypatch.setattr(models, "load_reward_model", record)
    monkeypatch.setattr(rm, "_CACHE", {})
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    reward = rm.rm_reward("some-rm")  # built as build_rewards does, before the trainer starts
    assert loads == []
    _pretend_gpus(monkeypatch, 4)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert reward(prompts=["生日祝福"], completions=["生日快乐"]) == [0.0]
    assert reward(prompts=["生日祝福"], completions=["万事如意"]) == [0.0]
    assert loads == [("some-rm", "cuda:3")]  # loaded once, on rank 3's own GPU


def test_reward_model_loads_on_the_cpu_here(zhufu_home: object) -> None:
    """Real load of the tiny RM: with no GPU the rank's device is the CPU."""
    from zhufu.pipeline.models import load_reward_model

    model, _ = load_reward_model("tiny-rm")
    assert model.device.type == "cpu"


def test_bf16_only_where_the_gpu_has_it(monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    assert train_precision(on_gpu=False) == Precision("fp32")
    _pretend_gpus(monkeypatch, 1, bf16=True)
    assert train_precision(on_gpu=True).trainer_flags == {"bf16": True, "fp16": False}
    _pretend_gpus(monkeypatch, 1, bf16=False)
    with caplog.at_level(logging.WARNING, logger="zhufu.pipeline.hardware"):
        fallback = train_precision(on_gpu=True)
    assert fallback.trainer_flags == {"bf16": False, "fp16": True}
    assert fallback.load_dtype == "float32"  # fp16 mixed precision trains fp32 weights
    assert "V100" in caplog.text and "7.0" in caplog.text and "fp16" in caplog.text


def test_global_batch_splits_over_the_world() -> None:
    assert per_device_batch(32, 1) == 32
    assert per_device_batch(32, 16) == 2
    with pytest.raises(HardwareError, match=r"batch_size=32 .* WORLD_SIZE=6 .*e\.g\. 36"):
        per_device_batch(32, 6)


def test_device_errors_are_recognised() -> None:
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert is_device_error(oom)
    assert is_device_error(RuntimeError("CUDA error: device-side assert triggered"))
    assert is_device_error(RuntimeError("NCCL error in: ProcessGroupNCCL.cpp:1970"))
    try:
        try:
            raise oom
        except RuntimeError as inner:
            raise ValueError("reward model failed") from inner
    except ValueError as wrapped:
        assert is_device_error(wrapped)  # found through the cause chain
    assert not is_device_error(ValueError("bad completion"))
    assert not is_device_error(RuntimeError("shape mismatch"))
