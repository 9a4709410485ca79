"""The custom resources' spec models: a stage's pipeline config plus the workload fields.

Each spec is *inlined*: the stage config fields (exactly as in the YAML given to ``zhufu
curate --config``) sit at the top level of ``spec`` next to the workload fields. Every field
is ``camelCase`` (Kubernetes API conventions). The CRD schema lists only the camelCase names,
so the API server refuses (``kubectl apply``) or prunes a ``snake_case`` one, although the
models, like the YAML configs, accept both. :func:`split_spec` separates the two again. The
CRD schema is generated from these models (see :mod:`zhufu.operator.crds`), so there is one
source for the CLI, the pod command and the API server's validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from zhufu.pipeline import stages
from zhufu.pipeline.config import StageConfig

GROUP = "zhufu.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: A Kubernetes quantity such as ``500m``, ``4``, ``1.5``, ``32Gi``.
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
#: A DNS-1123 label (Kueue queue names, secret names, priority classes).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A DNS-1123 subdomain (resource names).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
#: A dependency: a resource name in the same namespace, or a registry/storage URI.
REF = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|(models|runs):/.+|s3://.+)$"


class K8sModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(K8sModel):
    """What one pod (one node) asks for."""

    gpus: int = Field(0, ge=0, le=16, description="GPUs per pod, requested as nvidia.com/gpu.")
    cpu: str | None = Field(None, pattern=QUANTITY, description="CPU request, e.g. '8', '500m'.")
    memory: str | None = Field(None, pattern=QUANTITY,
                               description="Memory request and limit, e.g. '32Gi'.")


class Toleration(K8sModel):
    """A pod toleration (same fields as in a Pod spec)."""

    key: str | None = Field(None, max_length=316)
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = Field(None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = Field(None, ge=0)


class SecretKey(K8sModel):
    """A key in a Secret of the resource's namespace; mounted as a read-only file."""

    name: str = Field(..., pattern=DNS_SUBDOMAIN, max_length=253, description="Secret name.")
    key: str = Field("api-key", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253,
                     description="Key inside the Secret.")


class FreeForm(BaseModel):
    """A Kubernetes object passed through as is (volume, env var), checked when the Job is made."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(..., min_length=1, max_length=253)


class VolumeMount(FreeForm):
    mountPath: str = Field(..., min_length=1, description="Path in the container.")


class PodMetadata(K8sModel):
    labels: dict[str, str] | None = Field(None, description="Merged into the pod's labels.")
    annotations: dict[str, str] | None = Field(None, description="Merged into the pod's "
                                                "annotations.")


class ContainerResources(K8sModel):
    requests: dict[str, int | str] | None = None
    limits: dict[str, int | str] | None = None


class ContainerOverride(K8sModel):
    """Additions to one container of the Job's pod, picked by name (``trainer``)."""

    name: str = Field(..., pattern=DNS_LABEL, max_length=63, description="Container name.")
    env: list[FreeForm] | None = Field(None, description="Env vars (EnvVar objects); one "
                                       "with the name of an operator's var replaces it.")
    envFrom: list[dict[str, Any]] | None = Field(None, description="EnvFromSource objects.")
    volumeMounts: list[VolumeMount] | None = Field(None, description="VolumeMount objects; "
                                                   "one at an operator's mountPath replaces it.")
    resources: ContainerResources | None = Field(None, description="Merged into the "
                                                 "container's requests and limits.")


class PodSpecOverride(K8sModel):
    imagePullSecrets: list[FreeForm] | None = Field(None, description="LocalObjectReferences.")
    volumes: list[FreeForm] | None = Field(None, description="Volume objects; one named like "
                                           "an operator's volume (cache, workspace…) replaces "
                                           "it. hostPath is refused.")
    affinity: dict[str, Any] | None = Field(None, description="Pod Affinity object.")
    tolerations: list[Toleration] | None = Field(None, max_length=32)
    nodeSelector: dict[str, str] | None = None
    priorityClassName: str | None = Field(None, pattern=DNS_SUBDOMAIN, max_length=253)
    runtimeClassName: str | None = Field(None, pattern=DNS_SUBDOMAIN, max_length=253)
    schedulerName: str | None = Field(None, min_length=1, max_length=253)
    containers: list[ContainerOverride] | None = Field(None, max_length=8)


class PodTemplate(K8sModel):
    """Overrides merged into the Job's pod template (rules: zhufu.operator.overrides)."""

    metadata: PodMetadata | None = None
    spec: PodSpecOverride | None = None


class Workload(K8sModel):
    """How the stage runs on the cluster (the rest of the spec is the stage config)."""

    image: str | None = Field(None, min_length=1, max_length=512,
                              description="Trainer image; default: the operator's setting.")
    resources: Resources = Field(default_factory=Resources, description="Per-pod resources.")
    nodes: int = Field(1, ge=1, le=64, description="Pods (nodes); >1 runs an Indexed Job "
                       "with torchrun rendezvous on pod 0.")
    nodeSelector: dict[str, str] | None = Field(None, description="Pod nodeSelector.")
    tolerations: list[Toleration] | None = Field(None, max_length=32,
                                                 description="Pod tolerations.")
    priorityClassName: str | None = Field(None, pattern=DNS_SUBDOMAIN, max_length=253)
    queue: str | None = Field(None, pattern=DNS_LABEL, max_length=63,
                              description="Kueue LocalQueue (label kueue.x-k8s.io/queue-name).")
    activeDeadlineSeconds: int | None = Field(None, ge=1, description="Job deadline in seconds.")
    backoffLimit: int = Field(2, ge=0, le=100, description="Pod retries before the Job fails.")
    suspend: bool = Field(False, description="Create the Job suspended (Kueue admits it).")
    podTemplate: PodTemplate | None = Field(
        None, description="Pod overrides merged into the Job's pod template: operator defaults "
        "< nodeSelector/tolerations/priorityClassName above < podTemplate; maps merged, lists "
        "appended, scalars replaced. Overrides cannot undo the pod's hardening.")
    llmApiKeySecret: SecretKey | None = Field(
        None, description="Secret with the LLM API key; mounted as a file, its path set as "
        "llm.apiKeyFile in the config.")


class GroupRestarts(K8sModel):
    """Distributed kinds only: the operator restarts the whole Job when a pod of it fails."""

    maxRestarts: int = Field(
        3, ge=0, le=100, description="Whole-group restarts: when a pod's trainer exits non-zero "
        "(or, with nodes > 1, a pod is disrupted) the Job fails at once and the operator "
        "deletes it with its pods and creates it again, resuming from the last checkpoint; "
        "after this many restarts the resource is Failed. Counted in status.restarts.")


class Dependencies(K8sModel):
    """GRPORun only: resources (same namespace) or URIs whose outputs feed the rewards."""

    judgeRef: str | None = Field(
        None, pattern=REF, max_length=253, description="A JudgeTraining name or a judge URI "
        "(models:/…); fills rewards[name=judge].model.")
    curationRef: str | None = Field(
        None, pattern=REF, max_length=253, description="A CurationJob name or a reward model "
        "URI; fills rewards[name=rm].model.")


@dataclass(frozen=True)
class Kind:
    """One custom resource kind: its names, and what its Job runs (from the stage table)."""

    kind: str
    plural: str
    singular: str
    short: str
    stage: str  # the Job's name suffix (NAME-<stage>): stored state in live clusters
    cli: tuple[str, ...]  # the zhufu command the Job runs (its main stage's)
    config: type[StageConfig]
    spec: type[BaseModel]
    distributed: bool  # every step rank-safe: torchrun for several GPUs or nodes
    workload: type[BaseModel]  # Workload, plus GroupRestarts for the distributed kinds

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


#: kubectl short names (``kubectl get zcj``; plain ``cj`` is CronJob's).
SHORT_NAMES = {"CurationJob": "zcj", "JudgeTraining": "zjt", "GRPORun": "zgr"}
#: Spec fields beyond the stage config and the workload.
EXTRA_SPEC: dict[str, tuple[type[BaseModel], ...]] = {"GRPORun": (Dependencies,)}


def _kind(definition: stages.Kind) -> Kind:
    """A :class:`Kind` from the stage table's entry: the spec model is the main stage's
    config, inlined next to the workload fields (and GRPORun's dependencies)."""
    main = definition.main
    doc = f"{definition.title} (zhufu {' '.join(main.command)}) as a Job"
    later = [f"then {s.stage} when {s.section} is set" for s in definition.steps if s.section]
    workload: type[BaseModel] = Workload
    if definition.distributed:  # a group of ranks: restarted whole, never one pod alone
        workload = create_model(f"{definition.kind}Workload", __base__=(Workload, GroupRestarts))
    spec = create_model(f"{definition.kind}Spec",
                        __base__=(main.config, workload, *EXTRA_SPEC.get(definition.kind, ())),
                        __doc__=f"{', '.join([doc, *later])}.")
    name = definition.kind.lower()
    return Kind(definition.kind, f"{name}s", name, SHORT_NAMES[definition.kind], definition.job,
                main.command, main.config, spec, definition.distributed, workload)


KINDS: dict[str, Kind] = {k: _kind(d) for k, d in stages.KINDS.items()}

WORKLOAD_FIELDS = frozenset(Workload.model_fields) | frozenset(GroupRestarts.model_fields)
DEPENDENCY_FIELDS = frozenset(Dependencies.model_fields)


def kind_of(plural_or_kind: str) -> Kind:
    for k in KINDS.values():
        if plural_or_kind in (k.kind, k.plural, k.singular, k.short):
            return k
    raise KeyError(f"unknown Zhufu kind {plural_or_kind!r}; known: {', '.join(KINDS)}")


def split_spec(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split an inlined spec into (workload, dependencies, stage config) dicts."""
    workload = {k: v for k, v in spec.items() if k in WORKLOAD_FIELDS}
    deps = {k: v for k, v in spec.items() if k in DEPENDENCY_FIELDS}
    config = {k: v for k, v in spec.items()
              if k not in WORKLOAD_FIELDS and k not in DEPENDENCY_FIELDS}
    return workload, deps, config
