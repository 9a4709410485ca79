"""What a stage hands back: its MLflow run, output URIs and registered model versions.

In a pod the operator reads this from the container's termination message: when
``ZHUFU_RESULT_FILE`` is set (the operator sets it to ``/dev/termination-log``) the result is
written there as compact JSON, kept under Kubernetes' 4096-byte limit.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULT_FILE_ENV = "ZHUFU_RESULT_FILE"
TERMINATION_MESSAGE_LIMIT = 4096


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
    """Write the result where the operator looks for it (if anywhere)."""
    target = os.environ.get(RESULT_FILE_ENV)
    if target:
        Path(target).write_text(result.to_json(), encoding="utf-8")
