"""The MLflow metrics callback gathers steps into one batch, and :func:`fit` sends them.

Real transformers Trainer on a one-weight torch model, real local MLflow store.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _trainer(tmp_path: Path, steps: int, callbacks: list) -> object:
    import torch
    from transformers import Trainer, TrainingArguments

    class Line(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": ((self.w * x - y) ** 2).mean()}

    data = [{"x": torch.tensor([1.0]), "y": torch.tensor([2.0])} for _ in range(4)]
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=steps,
                             per_device_train_batch_size=2, logging_steps=1, report_to="none",
                             use_cpu=True, save_strategy="no", disable_tqdm=True)
    return Trainer(model=Line(), args=args, train_dataset=data, callbacks=callbacks)


def _history(run_id: str, key: str) -> list:
    import mlflow

    mlflow.flush_async_logging()
    return mlflow.MlflowClient().get_metric_history(run_id, key)


def test_steps_are_held_until_flush_s_then_sent_with_their_own_step(
        zhufu_home: Path, tmp_path: Path) -> None:
    import mlflow
    from transformers import TrainerCallback

    from zhufu.pipeline import tracking
    from zhufu.pipeline.train.callbacks import fit, mlflow_metrics_callback

    tracking.configure()
    seen: list[int] = []

    class Count(TrainerCallback):  # after the metrics callback: what MLflow holds at each log
        def on_log(self, args, state, control, **kwargs):  # noqa: ANN001
            seen.append(len(_history(run.info.run_id, "train/loss")))

    with mlflow.start_run(experiment_id=tracking.ensure_experiment("callbacks")) as run:
        trainer = _trainer(tmp_path, 3, [mlflow_metrics_callback(flush_s=3600), Count()])
        steps, _, _ = fit(trainer, "test")
    history = _history(run.info.run_id, "train/loss")
    # three steps and Trainer's closing summary were logged; nothing sent within flush_s
    assert steps == 3 and seen == [0, 0, 0, 0]
    assert [m.step for m in history] == [1, 2, 3]  # all sent at the end, each at its step
    assert history[0].timestamp <= history[1].timestamp <= history[2].timestamp


def test_every_step_is_sent_when_steps_are_longer_than_flush_s(zhufu_home: Path,
                                                              tmp_path: Path) -> None:
    import mlflow
    from transformers import TrainerCallback

    from zhufu.pipeline import tracking
    from zhufu.pipeline.train.callbacks import fit, mlflow_metrics_callback

    tracking.configure()
    seen: list[int] = []

    class Count(TrainerCallback):
        def on_log(self, args, state, control, **kwargs):  # noqa: ANN001
            seen.append(len(_history(run.info.run_id, "train/loss")))

    with mlflow.start_run(experiment_id=tracking.ensure_experiment("callbacks")) as run:
        fit(_trainer(tmp_path, 2, [mlflow_metrics_callback(flush_s=0), Count()]), "test")
    assert seen == [1, 2, 2]  # each step as it is logged (then Trainer's closing summary)


def test_fit_sends_the_held_steps_when_training_raises(zhufu_home: Path,
                                                       tmp_path: Path) -> None:
    import mlflow
    from transformers import TrainerCallback

    from zhufu.pipeline import tracking
    from zhufu.pipeline.train.callbacks import fit, mlflow_metrics_callback

    tracking.configure()

    class Boom(TrainerCallback):
        def on_log(self, args, state, control, **kwargs):  # noqa: ANN001
            if state.global_step == 2:
                raise RuntimeError("boom at step 2")

    with mlflow.start_run(experiment_id=tracking.ensure_experiment("callbacks")) as run:
        trainer = _trainer(tmp_path, 5, [mlflow_metrics_callback(flush_s=3600), Boom()])
        with pytest.raises(RuntimeError, match="boom at step 2"):
            fit(trainer, "test")
    assert [m.step for m in _history(run.info.run_id, "train/loss")] == [1, 2]


def test_fit_trains_with_the_objects_from_before_frozen_and_unfreezes_after(
        tmp_path: Path) -> None:
    import gc

    from transformers import TrainerCallback

    from zhufu.pipeline.train.callbacks import fit

    made_before = [object() for _ in range(1000)]
    frozen_during: list[int] = []
    thresholds = gc.get_threshold()

    class Look(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            frozen_during.append(gc.get_freeze_count())

    steps, _, _ = fit(_trainer(tmp_path, 2, [Look()]), "test")
    assert steps == 2 and len(frozen_during) == 2
    assert min(frozen_during) >= len(made_before)  # the process's objects, these included
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
