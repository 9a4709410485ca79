"""The operator's settings, read once from the environment (the Helm chart sets them).

| variable | meaning | default |
|---|---|---|
| ``ZHUFU_NAMESPACE`` | namespace to watch (empty = all) | ``""`` |
| ``ZHUFU_TRAINER_IMAGE`` | job pods' image unless a spec names one | see the dataclass |
| ``ZHUFU_IMAGE_PULL_POLICY`` | imagePullPolicy of job pods | ``IfNotPresent`` |
| ``ZHUFU_MLFLOW_URI`` | MLFLOW_TRACKING_URI given to job pods | ``http://zhufu-mlflow:5000`` |
| ``ZHUFU_S3_ENDPOINT`` | AWS_ENDPOINT_URL + MLFLOW_S3_ENDPOINT_URL; empty = AWS | ``""`` |
| ``ZHUFU_S3_SECRET`` | Secret holding AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY | ``""`` |
| ``ZHUFU_JOB_SERVICE_ACCOUNT`` | ServiceAccount of job pods (no API rights) | ``zhufu-job`` |
| ``ZHUFU_GPU_RESOURCE`` | extended resource name of a GPU | ``nvidia.com/gpu`` |
| ``ZHUFU_DEPENDENCY_POLL_S`` | re-check delay while waiting for a dependency | ``15`` |
| ``ZHUFU_DEPENDENCY_TIMEOUT_S`` | how long a missing dependency may stay missing | ``600`` |
| ``ZHUFU_RECHECK_INTERVAL_S`` | period of the re-check of unfinished resources | ``30`` |
| ``ZHUFU_RUN_AS_USER`` | uid of job pods (non-root) | ``1000`` |
| ``ZHUFU_DEFAULT_NODE_SELECTOR`` | JSON object used when a spec sets no nodeSelector | ``""`` |
| ``ZHUFU_DEFAULT_TOLERATIONS`` | JSON list used when a spec sets no tolerations | ``""`` |
| ``ZHUFU_DEFAULT_PRIORITY_CLASS`` | priorityClassName when a spec sets none | ``""`` |

Secret values never pass through here: only Secret *names*, which job pods reference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class OperatorSettings:
    namespace: str = ""
    trainer_image: str = "ghcr.io/zhufu-dev/zhufu-trainer:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    mlflow_uri: str = "http://zhufu-mlflow:5000"
    s3_endpoint: str = ""
    s3_secret: str = ""
    job_service_account: str = "zhufu-job"
    gpu_resource: str = "nvidia.com/gpu"
    dependency_poll_s: float = 15.0
    dependency_timeout_s: float = 600.0
    recheck_interval_s: float = 30.0
    run_as_user: int = 1000
    default_node_selector: str = ""
    default_tolerations: str = ""
    default_priority_class: str = ""

    def defaults(self) -> dict[str, object]:
        """Workload defaults for GPU scheduling (nodeSelector, tolerations, priority class)."""
        out: dict[str, object] = {}
        for key, raw, kind in (("nodeSelector", self.default_node_selector, dict),
                               ("tolerations", self.default_tolerations, list)):
            value = json.loads(raw) if raw.strip() else None
            if value:
                if not isinstance(value, kind):
                    raise SettingsError(f"default {key}: expected a JSON {kind.__name__}")
                out[key] = value
        if self.default_priority_class:
            out["priorityClassName"] = self.default_priority_class
        return out


class SettingsError(ValueError):
    """An environment variable with a value of the wrong type (names the variable)."""


def load_settings(environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """Settings from ``ZHUFU_*`` variables; unset variables keep their defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in fields(OperatorSettings):
        var = f"ZHUFU_{f.name.upper()}"
        if var not in env:
            continue
        raw = env[var]
        kind = type(getattr(OperatorSettings, f.name))
        try:
            values[f.name] = kind(raw) if kind is not str else raw
        except ValueError as e:
            raise SettingsError(f"{var}={raw!r}: expected {kind.__name__}") from e
    try:
        OperatorSettings(**values).defaults()  # type: ignore[arg-type]
    except json.JSONDecodeError as e:
        raise SettingsError(f"ZHUFU_DEFAULT_NODE_SELECTOR/TOLERATIONS: not JSON: {e}") from e
    if float(values.get("recheck_interval_s", 1.0)) <= 0:  # type: ignore[arg-type]
        raise SettingsError("ZHUFU_RECHECK_INTERVAL_S: expected a number of seconds > 0")
    if "image_pull_policy" in values and values["image_pull_policy"] not in (
            "Always", "IfNotPresent", "Never"):
        raise SettingsError("ZHUFU_IMAGE_PULL_POLICY: expected Always, IfNotPresent or Never")
    return OperatorSettings(**values)  # type: ignore[arg-type]


#: The settings the handlers use; replaced once by the startup handler.
current: OperatorSettings = OperatorSettings()


def configure(settings: OperatorSettings) -> None:
    global current
    current = settings
