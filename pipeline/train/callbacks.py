"""What the training stages share around a Trainer: the MLflow callback and :func:`fit`."""

from __future__ import annotations

import math
import time
from typing import Any

from zhufu.pipeline import gcscope
from zhufu.pipeline.errors import ConfigError


class _AlreadyTrained(Exception):
    """Raised by :func:`_stop_if_trained` when a resumed run has nothing left to train."""


def _stop_if_trained() -> Any:
    """A callback that ends ``train()`` before its first step when the checkpoint it resumed
    from is already at ``max_steps``.

    Trainer checks ``max_steps`` only after a step: resumed from its final checkpoint (a pod
    killed after the last save, before the model was registered), a run would train one step
    past ``max_steps``. ``on_train_begin`` comes after Trainer restored the weights, optimizer
    and state from the checkpoint under every backend (DeepSpeed included), so stopping there
    leaves the trainer holding the finished model.
    """
    from transformers import TrainerCallback

    class StopIfTrained(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            if 0 < state.max_steps <= state.global_step:
                raise _AlreadyTrained

    return StopIfTrained()


def _logged_loss(trainer: Any) -> float:
    """The mean of the losses a resumed trainer's state logged (its run's training loss)."""
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return sum(losses) / len(losses) if losses else 0.0


def fit(trainer: Any, stage: str, **train_kwargs: Any) -> tuple[int, float, float]:
    """``trainer.train(**train_kwargs)``; returns (optimizer steps, training loss, seconds).

    A loss that is not finite is a :class:`~zhufu.pipeline.errors.ConfigError`: the run
    diverged and the learning rate is the knob to turn. Metrics a callback still holds
    (:func:`mlflow_metrics_callback`) are sent even when training raises. Resumed from a
    checkpoint already at ``max_steps``, nothing is trained: the trainer holds the
    checkpoint's model, the loss is the mean its state logged, and seconds are 0.

    The objects that exist when training starts (the stage's libraries: MLflow, SQLAlchemy,
    pydantic, the reward models, the loaded policy) are frozen while it runs
    (:func:`~zhufu.pipeline.gcscope.fewer_collections`, collection thresholds unchanged): the
    full collections inside training (accelerate runs one when training ends) walk only what
    training made, not the ~700 k objects of a ``zhufu grpo`` process (profiled, issue 15).
    """
    started = time.perf_counter()
    stop = _stop_if_trained()
    trainer.add_callback(stop)
    try:
        with gcscope.fewer_collections(young=0):  # freeze only: 0 keeps the thresholds
            output = trainer.train(**train_kwargs)
        steps, loss = int(output.global_step), float(output.training_loss)
    except _AlreadyTrained:
        return trainer.state.global_step, _logged_loss(trainer), 0.0
    finally:  # a run that fails mid-way still records the metrics of its last steps
        trainer.remove_callback(stop)
        for callback in trainer.callback_handler.callbacks:
            if callable(getattr(callback, "flush", None)):
                callback.flush()
    seconds = time.perf_counter() - started
    if not math.isfinite(loss):
        raise ConfigError(f"{stage}: training loss is {loss} after {steps} steps; "
                          "lower learning_rate")
    return steps, loss, seconds


#: Seconds the MLflow callback gathers logged steps before sending them as one batch.
FLUSH_S = 10.0


def mlflow_metrics_callback(prefix: str = "train/", flush_s: float = FLUSH_S) -> Any:
    """A Trainer callback sending every logged number to the active MLflow run, plus
    tokens/s.

    Steps are gathered and sent as one batch (:func:`zhufu.pipeline.tracking.log_metric_history`,
    each step keeping its own step number and time) at most every ``flush_s`` seconds, at
    each checkpoint and when training ends (:func:`fit` also sends them when it raises),
    through MLflow's background logger: the step does not wait for the write. One batch per
    step cost ~0.03 s of CPU a step against the local store (profiled, issue 15); with steps
    longer than ``flush_s`` every step is still sent as it is logged.

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
            self._pending: list[tuple[int, float, dict[str, float]]] = []
            self._sent = time.perf_counter()

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
            self._pending.append((state.global_step, time.time(), metrics))
            if now - self._sent >= flush_s:
                self.flush()

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            self.flush()

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.flush()

        def flush(self) -> None:
            """Queue the gathered steps to MLflow's background logger (the run's end
            flushes that queue)."""
            pending, self._pending = self._pending, []
            self._sent = time.perf_counter()
            if pending:
                tracking.log_metric_history(pending, wait=False)

    return MLflowMetrics()
