"""What the training stages share around a Trainer: the MLflow callback and :func:`fit`."""

from __future__ import annotations

import math
import time
from typing import Any

from zhufu.pipeline.errors import ConfigError


def fit(trainer: Any, stage: str, **train_kwargs: Any) -> tuple[int, float, float]:
    """``trainer.train(**train_kwargs)``; returns (optimizer steps, training loss, seconds).

    A loss that is not finite is a :class:`~zhufu.pipeline.errors.ConfigError`: the run
    diverged and the learning rate is the knob to turn.
    """
    started = time.perf_counter()
    output = trainer.train(**train_kwargs)
    seconds = time.perf_counter() - started
    steps, loss = int(output.global_step), float(output.training_loss)
    if not math.isfinite(loss):
        raise ConfigError(f"{stage}: training loss is {loss} after {steps} steps; "
                          "lower learning_rate")
    return steps, loss, seconds


def mlflow_metrics_callback(prefix: str = "train/") -> Any:
    """A Trainer callback sending every logged number to the active MLflow run (through
    MLflow's background logger: the step does not wait for the write), plus tokens/s.

    TRL's GRPO logs ``num_tokens`` (cumulative tokens seen, summed over every process); the
    callback turns it into ``tokens_per_s`` over the interval since the previous log and, when
    training on GPUs, ``tokens_per_s_per_gpu`` (over the run's processes, one GPU each: the
    figure NeMo-RL and verl publish).
    """
    from transformers import TrainerCallback

    from zhufu.pipeline import tracking

    class MLflowMetrics(TrainerCallback):
        def __init__(self) -> None:
            self._last: tuple[float, float] | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if not logs or not state.is_world_process_zero:
                return
            metrics = {f"{prefix}{k}": v for k, v in logs.items()}
            tokens = logs.get("num_tokens")
            now = time.perf_counter()
            if isinstance(tokens, int | float):
                if self._last is not None and now > self._last[0]:
                    rate = (tokens - self._last[1]) / (now - self._last[0])
                    metrics[f"{prefix}tokens_per_s"] = rate
                    if getattr(args.device, "type", "cpu") == "cuda":
                        metrics[f"{prefix}tokens_per_s_per_gpu"] = rate / max(
                            1, args.world_size)
                self._last = (now, float(tokens))
            # queued, not written in the step (0.3 s a step at load 7 on 2 cores, profiled);
            # the run's end flushes the queue
            tracking.log_metrics(metrics, step=state.global_step, wait=False)

    return MLflowMetrics()
