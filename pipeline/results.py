"""What a stage produces and what it hands back.

A stage's run function returns a :class:`StageOutput` (what it made: a trainer or model files
to save, metrics, outputs, the registration it wants); the stage wrapper
(:mod:`zhufu.pipeline.stage_runner`) saves, publishes and registers it and returns a
:class:`StageResult`: the MLflow run, output URIs and registered model versions.

In a pod the operator reads the result from the container's termination message: when
``ZHUFU_RESULT_FILE`` is set (the operator sets it to ``/dev/termination-log``) global rank 0
writes it there as compact JSON, kept under Kubernetes' 4096-byte limit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULT_FILE_ENV = "ZHUFU_RESULT_FILE"
TERMINATION_MESSAGE_LIMIT = 4096


@dataclass(frozen=True)
class Registration:
    """A model version to register: ``name`` gets a new version whose files are the saved
    model under the run's ``artifact_path``; ``alias`` (if any) moves to it."""

    name: str
    alias: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    artifact_path: str = "model"


@dataclass
class StageOutput:
    """What a run function produced; the wrapper does the rest on the right ranks.

    - ``trainer``: a transformers/TRL Trainer whose own ``save_model`` writes the model (every
      rank calls it: under ZeRO-3 it gathers the shards; LoRA adapters are merged after);
    - ``write_model(folder)``: writes the model (a judge state) or extra files next to the
      trainer's (rank 0 only);
    - ``register``: the version to register once the model is published;
    - ``metrics``: logged to the stage's MLflow run; those named in ``summary`` (all when
      empty) go into the result;
    - ``outputs``: URIs the stage wrote itself (curated pairs, traces).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    summary: tuple[str, ...] = ()
    outputs: dict[str, str] = field(default_factory=dict)
    trainer: Any = None
    write_model: Callable[[Path], None] | None = None
    register: Registration | None = None

    @property
    def has_model(self) -> bool:
        return self.trainer is not None or self.write_model is not None

    def summary_metrics(self) -> dict[str, float]:
        if not self.summary:
            return dict(self.metrics)
        return {k: self.metrics[k] for k in self.summary if k in self.metrics}


@dataclass
class StageResult:
    stage: str
    mlflow_run_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    registered: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """Compact JSON; metrics are dropped if the whole would not fit a termination message."""
        text = json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) > TERMINATION_MESSAGE_LIMIT:
            text = json.dumps({**asdict(self), "metrics": {}}, ensure_ascii=False,
                              separators=(",", ":"))
        return text

    @classmethod
    def from_json(cls, text: str) -> StageResult:
        return cls(**json.loads(text))


def emit(result: StageResult) -> None:
    """Write the result where the operator looks for it (if anywhere), on global rank 0 only."""
    from zhufu.pipeline.distributed import is_main_process

    target = os.environ.get(RESULT_FILE_ENV)
    if target and is_main_process():
        Path(target).write_text(result.to_json(), encoding="utf-8")
