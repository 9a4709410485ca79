"""Trainer callbacks shared by the training stages."""

from __future__ import annotations

import time
from typing import Any


def mlflow_metrics_callback(prefix: str = "train/") -> Any:
    """A Trainer callback sending every logged number to the active MLflow run, plus tokens/s.

    TRL's GRPO logs ``num_tokens`` (cumulative tokens seen); the callback turns it into
    ``tokens_per_s`` over the interval since the previous log.
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
                    metrics[f"{prefix}tokens_per_s"] = (tokens - self._last[1]) / (
                        now - self._last[0])
                self._last = (now, float(tokens))
            tracking.log_metrics(metrics, step=state.global_step)

    return MLflowMetrics()
