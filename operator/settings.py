"""The operator's settings: ``ZHUFU_*`` environment variables (the Helm chart sets them), read
and typed by pydantic-settings.

| variable | meaning | default |
|---|---|---|
| ``ZHUFU_NAMESPACE`` | namespaces watched (comma-separated); empty: every namespace | ``""`` |
| ``ZHUFU_TRAINER_IMAGE`` | job pods' image unless a spec names one | see the field |
| ``ZHUFU_IMAGE_PULL_POLICY`` | imagePullPolicy of job pods | ``IfNotPresent`` |
| ``ZHUFU_MLFLOW_URI`` | MLFLOW_TRACKING_URI given to job pods | ``http://zhufu-mlflow:5000`` |
| ``ZHUFU_MLFLOW_UI_URL`` | MLflow UI address users open; set: status.mlflowRunUrl | ``""`` |
| ``ZHUFU_S3_ENDPOINT`` | AWS_ENDPOINT_URL + MLFLOW_S3_ENDPOINT_URL; empty = AWS | ``""`` |
| ``ZHUFU_S3_SECRET`` | Secret holding AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY | ``""`` |
| ``ZHUFU_JOB_SERVICE_ACCOUNT`` | ServiceAccount of job pods (no API rights) | ``zhufu-job`` |
| ``ZHUFU_GPU_RESOURCE`` | extended resource name of a GPU | ``nvidia.com/gpu`` |
| ``ZHUFU_DEPENDENCY_POLL_S`` | re-check delay while waiting for a dependency | ``15`` |
| ``ZHUFU_DEPENDENCY_TIMEOUT_S`` | how long a missing dependency may stay missing | ``600`` |
| ``ZHUFU_RECHECK_INTERVAL_S`` | period of the re-check of unfinished resources | ``30`` |
| ``ZHUFU_RUN_AS_USER`` | uid of job pods (non-root) | ``1000`` |
| ``ZHUFU_DEFAULT_NODE_SELECTOR`` | JSON object used when a spec sets no nodeSelector | ``{}`` |
| ``ZHUFU_DEFAULT_TOLERATIONS`` | JSON list used when a spec sets no tolerations | ``[]`` |
| ``ZHUFU_DEFAULT_PRIORITY_CLASS`` | priorityClassName when a spec sets none | ``""`` |
| ``ZHUFU_ALLOWED_IMAGES`` | JSON list of repositories ``spec.image`` may name | trainer's |
| ``ZHUFU_S3_BUCKET`` | bucket of the default per-namespace prefix | ``""`` |
| ``ZHUFU_S3_PREFIX_TEMPLATE`` | a namespace's S3 prefix; "": unchecked | see the field |
| ``ZHUFU_STORAGE`` | JSON ``{namespace: {"secret": S3 Secret, "prefix": "s3://…/"}}`` | ``{}`` |
| ``ZHUFU_MLFLOW_NAME_PREFIX`` | MLflow names get ``<namespace>.`` in front | ``true`` |
| ``ZHUFU_ALLOWED_TOLERATIONS`` | JSON list of the tolerations a spec may ask for | GPU taint |
| ``ZHUFU_ALLOWED_PRIORITY_CLASSES`` | JSON list of priority classes a spec may name | ``[]`` |
| ``ZHUFU_KUEUE`` | Jobs go through Kueue: ``spec.queue`` is required | ``false`` |
| ``ZHUFU_MLFLOW_SECRET`` | Secret with MLFLOW_TRACKING_USERNAME/_PASSWORD for job pods | ``""`` |
| ``ZHUFU_JUDGE_LLM_URL`` | server of saved judges (pods' ZHUFU_JUDGE_SERVER) | ``""`` |
| ``ZHUFU_IMAGE_PULL_SECRETS`` | JSON list of Secret names: job pods' imagePullSecrets | ``[]`` |

The defaults are the first layer of a job pod's template; a spec's shorthands and its
``podTemplate`` merge over them (rules: :mod:`zhufu.operator.overrides`).

``ZHUFU_NAMESPACE`` takes effect in :mod:`zhufu.operator.main` (``zhufu-operator``), which
starts Kopf with ``--namespace`` or ``--all-namespaces`` from it. Other ``ZHUFU_*`` variables
(``ZHUFU_HOME`` of the pipeline, say) are ignored. Secret values never pass through here: only
Secret *names*, which job pods reference.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PREFIX = "ZHUFU_"
#: The toleration of the usual GPU node taint (the NVIDIA GPU operator's).
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


class SettingsError(ValueError):
    """An environment variable with a value of the wrong type (names the variable)."""


class NamespaceStorage(BaseModel):
    """One namespace's S3 credentials Secret (in that namespace) and prefix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str = ""
    prefix: str = Field("", pattern=r"^(s3://[^/]+/.*)?$")


class OperatorSettings(BaseSettings):
    """What the chart tells the operator; every field is ``ZHUFU_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    namespace: str = Field("", description="Watch only these namespaces (comma-separated); "
                           "empty: all namespaces.")
    trainer_image: str = "ghcr.io/zhufu-dev/zhufu-trainer:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    mlflow_uri: str = "http://zhufu-mlflow:5000"
    mlflow_ui_url: str = ""
    s3_endpoint: str = ""
    s3_secret: str = ""
    job_service_account: str = "zhufu-job"
    gpu_resource: str = "nvidia.com/gpu"
    dependency_poll_s: float = Field(15.0, gt=0)
    dependency_timeout_s: float = Field(600.0, gt=0)
    recheck_interval_s: float = Field(30.0, gt=0)
    run_as_user: int = Field(1000, ge=1)
    default_node_selector: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    default_tolerations: Annotated[list[dict[str, Any]], NoDecode] = Field(default_factory=list)
    default_priority_class: str = ""
    allowed_images: Annotated[list[str], NoDecode] = Field(default_factory=list)
    s3_bucket: str = ""
    s3_prefix_template: str = "s3://{bucket}/{namespace}/"
    storage: Annotated[dict[str, NamespaceStorage], NoDecode] = Field(default_factory=dict)
    mlflow_name_prefix: bool = True
    allowed_tolerations: Annotated[list[dict[str, Any]], NoDecode] = Field(
        default_factory=lambda: [dict(GPU_TOLERATION)])
    allowed_priority_classes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    kueue: bool = False
    mlflow_secret: str = ""
    judge_llm_url: str = ""

    image_pull_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    pod_secrets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Secrets (by name, in the resource's namespace) a "
        "spec.podTemplate may reference; any other is refused.")

    @field_validator("default_node_selector", "default_tolerations", "allowed_images",
                     "storage", "allowed_tolerations", "allowed_priority_classes",
                     "image_pull_secrets", "pod_secrets", mode="before")
    @classmethod
    def _json(cls, raw: Any, info: ValidationInfo) -> Any:
        """The chart renders these as JSON text; empty text or ``null`` means none."""
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else None
            except json.JSONDecodeError as e:
                raise ValueError(f"not JSON: {e}") from e
        if raw is None:
            return {} if info.field_name in ("default_node_selector", "storage") else []
        if info.field_name == "image_pull_secrets" and isinstance(raw, list):
            # the chart's values may list names or {name: …} objects
            return [r.get("name") if isinstance(r, dict) else r for r in raw]
        return raw

    def allowed_image_repositories(self) -> list[str]:
        """Repositories ``spec.image`` may use: the allowlist, else the trainer image's."""
        from zhufu.operator.tenancy import image_repository

        return list(self.allowed_images) or [image_repository(self.trainer_image)]

    def s3_prefix(self, namespace: str) -> str:
        """The S3 prefix (ending in ``/``) a namespace's resources may use; "" = unchecked."""
        own = self.storage.get(namespace)
        if own is not None and own.prefix:
            return own.prefix.rstrip("/") + "/"
        if not self.s3_prefix_template or not self.s3_bucket:
            return ""
        prefix = self.s3_prefix_template.format(bucket=self.s3_bucket, namespace=namespace)
        return prefix.rstrip("/") + "/"

    def s3_secret_for(self, namespace: str) -> str:
        """The S3 credentials Secret (in the namespace) of a namespace's job pods."""
        own = self.storage.get(namespace)
        return own.secret if own is not None and own.secret else self.s3_secret

    def toleration_allowed(self, toleration: dict[str, Any]) -> bool:
        """Whether a spec's toleration equals one of the allowlist (absent fields = unset)."""
        def norm(t: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(t.get(k) for k in ("key", "operator", "value", "effect",
                                            "tolerationSeconds"))
        return any(norm(toleration) == norm(a) for a in self.allowed_tolerations)

    def defaults(self) -> dict[str, object]:
        """Pod spec defaults: GPU scheduling (nodeSelector, tolerations, priority class) and
        the registry credentials (imagePullSecrets)."""
        out: dict[str, object] = {}
        if self.image_pull_secrets:
            out["imagePullSecrets"] = [{"name": n} for n in self.image_pull_secrets]
        if self.default_node_selector:
            out["nodeSelector"] = dict(self.default_node_selector)
        if self.default_tolerations:
            out["tolerations"] = [dict(t) for t in self.default_tolerations]
        if self.default_priority_class:
            out["priorityClassName"] = self.default_priority_class
        return out


def load_settings() -> OperatorSettings:
    """The settings from the process environment; a bad value raises :class:`SettingsError`
    naming the variable and what it should be."""
    try:
        return OperatorSettings()
    except ValidationError as e:
        problems = []
        for err in e.errors():
            var = PREFIX + str(err["loc"][0]).upper() if err["loc"] else PREFIX + "*"
            problems.append(f"{var}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("; ".join(problems)) from None


#: The settings the handlers use: the defaults until the startup handler calls
#: :func:`configure` with what :func:`load_settings` read.
current: OperatorSettings = OperatorSettings.model_construct()


def configure(settings: OperatorSettings) -> None:
    global current
    current = settings
