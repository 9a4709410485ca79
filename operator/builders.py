"""Pure functions that build the children of a Zhufu resource as plain dicts (no API calls).

A resource ``NAME`` of kind K gets, in its namespace:

- ConfigMap ``NAME-<stage>-config`` holding ``config.yaml`` (the validated stage config);
- Job ``NAME-<stage>`` running ``zhufu <stage command> --config /etc/zhufu/config.yaml``
  (``<stage>`` is ``curate``, ``judge`` or ``grpo``);
- for ``nodes > 1`` a headless Service ``NAME-<stage>`` so pod 0 is reachable as the
  torchrun rendezvous (``NAME-<stage>-0.NAME-<stage>``);
- for a CurationJob with ``shards: N`` (N > 1) the Job is Indexed, one pod per shard running
  ``zhufu curate … --shard $(JOB_COMPLETION_INDEX)``, each index retried alone
  (``backoffLimitPerIndex``); once every shard succeeded the operator creates Job
  ``NAME-curate-all`` (:func:`whole_job`, the same pod without ``--shard``): it reads every
  part, writes the whole pairs and trains the reward model when the spec asks for one.

The names are fixed, so creating them again after an operator restart answers 409 instead
of making a duplicate. Secrets enter pods only as ``secretKeyRef`` env vars or mounted files.

A distributed kind's Job (GRPORun: a group of torch ranks) fails as a whole
when one pod's trainer exits non-zero (``podFailurePolicy`` ``FailJob``), so the operator can
restart the whole group (:func:`pod_failure_policy`); its ``zhufu.dev/restart`` annotation
says how many restarts came before it.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

import yaml

from zhufu.operator import overrides
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import Kind
from zhufu.pipeline.judge.server import JUDGE_SERVER_ENV
from zhufu.pipeline.results import RESULT_FILE_ENV

CONFIG_DIR = "/etc/zhufu"
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
LLM_KEY_DIR = "/var/run/secrets/zhufu/llm"
LLM_KEY_FILE = f"{LLM_KEY_DIR}/api-key"
WORK_DIR = "/workspace"
CACHE_DIR = "/var/cache/zhufu"
TERMINATION_LOG = "/dev/termination-log"
RENDEZVOUS_PORT = 29500
CONTAINER = "trainer"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
MANAGED_BY = "zhufu-operator"
#: How a retried or restarted pod finds the steps earlier attempts finished (MLflow tag
#: ``zhufu.job_uid``): the resource's uid, the same for every Job the resource gets.
RUN_UID_ENV = "ZHUFU_JOB_UID"
#: Env vars of the wiring a spec's podTemplate may not replace (the result, the owner).
RESERVED_ENV = frozenset({RESULT_FILE_ENV, "ZHUFU_RESOURCE", RUN_UID_ENV,
                          "JOB_COMPLETION_INDEX"})
#: The top-level spec fields that are shorthands for pod spec fields.
SHORTHANDS = ("nodeSelector", "tolerations", "priorityClassName")
#: Job annotations: the spec generation it was built from, and how many group restarts of
#: the resource came before it (0 for the first Job).
GENERATION_ANNOTATION = "zhufu.dev/generation"
RESTART_ANNOTATION = "zhufu.dev/restart"
#: Job names are label values (≤ 63); Indexed Job pods add ``-<index>`` to their hostnames.
MAX_JOB_NAME = 60


#: Annotation on a sharded Job: its shard count.
SHARDS_ANNOTATION = "zhufu.dev/shards"
#: What the Job controller and the API server add to a Job's pod template labels.
_DEFAULTED_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid",
                     "batch.kubernetes.io/job-name", "job-name")


@dataclass(frozen=True)
class ChildNames:
    job: str
    config_map: str
    service: str
    whole: str  # a sharded curation's second Job (every part → the whole result)


def child_names(kind: Kind, name: str) -> ChildNames:
    """The fixed names of a resource's children (derived from the parent's name)."""
    job = f"{name}-{kind.stage}"
    return ChildNames(job=job, config_map=f"{job}-config", service=job, whole=f"{job}-all")


def shards_of(config: dict[str, Any]) -> int:
    """How many shards the stage config asks for (1 when it has no such field)."""
    return int(config.get("shards") or 1)


def labels(kind: Kind, name: str) -> dict[str, str]:
    """Labels on every child; ``zhufu.dev/job`` finds a Job's pods."""
    return {
        "app.kubernetes.io/name": "zhufu",
        "app.kubernetes.io/component": kind.stage,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "zhufu.dev/kind": kind.kind,
        "zhufu.dev/owner": name,
        "zhufu.dev/job": child_names(kind, name).job,
    }


def config_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=True, allow_unicode=True)


def config_map(kind: Kind, name: str, namespace: str, config: dict[str, Any]) -> dict[str, Any]:
    """The ConfigMap holding the stage config (no secrets: only secret file paths)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": child_names(kind, name).config_map, "namespace": namespace,
                     "labels": labels(kind, name)},
        "data": {"config.yaml": config_yaml(config)},
    }


def headless_service(kind: Kind, name: str, namespace: str) -> dict[str, Any]:
    """Headless Service giving the Indexed Job's pods DNS names (torchrun rendezvous)."""
    names = child_names(kind, name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.service, "namespace": namespace, "labels": labels(kind, name)},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"zhufu.dev/job": names.job},
            "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT,
                       "targetPort": RENDEZVOUS_PORT, "protocol": "TCP"}],
        },
    }


SHARD_ARGS = ["--shard", "$(JOB_COMPLETION_INDEX)"]


def command(kind: Kind, name: str, nodes: int, gpus: int, shards: int = 1) -> list[str]:
    """The container command: the stage CLI, wrapped in torchrun for several GPUs or nodes
    when the kind's stages are distributed (single-process stages such as ``curate`` run
    once, whatever the GPUs; validation refuses ``nodes > 1`` for them); with several
    shards, the pod's shard is its completion index."""
    stage = ["zhufu", *kind.cli, "--config", CONFIG_PATH]
    if shards > 1:
        return [*stage, *SHARD_ARGS]
    if not kind.distributed:
        return stage
    if nodes > 1:
        job = child_names(kind, name).job
        return ["torchrun", f"--nnodes={nodes}", f"--nproc-per-node={max(gpus, 1)}",
                "--node-rank=$(JOB_COMPLETION_INDEX)", f"--master-addr={job}-0.{job}",
                f"--master-port={RENDEZVOUS_PORT}", "--no-python", *stage]
    if gpus > 1:
        return ["torchrun", "--standalone", f"--nproc-per-node={gpus}", "--no-python", *stage]
    return stage


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _run_uid_env(run_uid: str | None) -> dict[str, Any]:
    """``ZHUFU_JOB_UID``: the resource's uid, so the pods of a retried pod *and* of a Job the
    operator re-created after a group failure find the steps earlier attempts finished (an
    SFT step is not run twice). Without a known owner uid (``zhufu operator render``) the
    Job's own uid, which the API server puts on its pods as a label."""
    if run_uid:
        return {"name": RUN_UID_ENV, "value": run_uid}
    return {"name": RUN_UID_ENV, "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.labels['{JOB_UID_LABEL}']"}}}


def run_uid(job: dict[str, Any]) -> str:
    """The uid a Job's pods tag their MLflow runs with (``zhufu.job_uid``): the literal
    ``ZHUFU_JOB_UID`` of its trainer container, else (a Job rendered without an owner uid)
    the Job's own uid."""
    for container in job["spec"]["template"]["spec"].get("containers") or []:
        for var in container.get("env") or []:
            if var.get("name") == RUN_UID_ENV and var.get("value"):
                return str(var["value"])
    return str(job["metadata"].get("uid", ""))


def restarts_before(job: dict[str, Any]) -> int:
    """How many group restarts of its resource came before ``job`` (its annotation; 0)."""
    ann = (job.get("metadata") or {}).get("annotations") or {}
    try:
        return max(0, int(ann.get(RESTART_ANNOTATION, 0)))
    except ValueError:
        return 0


def pod_failure_policy(kind: Kind, nodes: int) -> dict[str, Any]:
    """When the Job counts a failed pod, retries it, or fails at once.

    Every kind: a pod disrupted by the cluster (preemption, eviction, node drain: condition
    ``DisruptionTarget``) is not counted against ``backoffLimit``. A distributed kind runs a
    *group* of ranks that checkpoints and resumes, so one pod's trainer exiting non-zero
    fails the whole Job (``FailJob``) instead of the Job controller replacing that pod alone
    (which cannot rejoin the survivors' rendezvous); the operator then restarts the group.
    A single-node group lets a disrupted pod be replaced in place (``Ignore``: the new pod
    resumes from the checkpoint, no restart spent); with ``nodes > 1`` a disruption fails
    the Job too, for the same reason as an exit. Rules are matched in order."""
    disrupted = {"onPodConditions": [{"type": "DisruptionTarget"}]}
    if not kind.distributed:
        return {"rules": [{"action": "Ignore", **disrupted}]}
    return {"rules": [
        {"action": "Ignore" if nodes == 1 else "FailJob", **disrupted},
        {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "NotIn",
                                              "values": [0]}},
    ]}


def env(kind: Kind, name: str, namespace: str, workload: dict[str, Any],
        settings: OperatorSettings, has_llm_config: bool, indexed: bool = False,
        run_uid: str | None = None
        ) -> list[dict[str, Any]]:
    """Container env: result file, MLflow/S3 endpoints, caches; secrets only by reference."""
    out: list[dict[str, Any]] = [
        {"name": RESULT_FILE_ENV, "value": TERMINATION_LOG},
        {"name": "MLFLOW_TRACKING_URI", "value": settings.mlflow_uri},
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
        {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
        {"name": "TRITON_CACHE_DIR", "value": f"{CACHE_DIR}/triton"},
        {"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "ZHUFU_RESOURCE", "value": f"{kind.plural}/{namespace}/{name}"},
        _run_uid_env(run_uid),
    ]
    if settings.s3_endpoint:
        out += [{"name": "AWS_ENDPOINT_URL", "value": settings.s3_endpoint},
                {"name": "MLFLOW_S3_ENDPOINT_URL", "value": settings.s3_endpoint}]
    s3_secret = settings.s3_secret_for(namespace)
    if s3_secret:
        out += [_secret_env(v, s3_secret, v)
                for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    if settings.mlflow_secret:
        out += [_secret_env(v, settings.mlflow_secret, v)
                for v in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")]
    # A saved judge never picks its LLM server: it talks to this one (none if empty).
    out.append({"name": JUDGE_SERVER_ENV, "value": settings.judge_llm_url})
    secret = workload.get("llmApiKeySecret")
    if secret and not has_llm_config:
        out.append(_secret_env("OPENAI_API_KEY", secret["name"], secret.get("key", "api-key")))
    if indexed:
        out.append({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}})
    return out


def _resources(workload: dict[str, Any], settings: OperatorSettings) -> dict[str, Any]:
    res = workload.get("resources") or {}
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res.get("cpu"):
        requests["cpu"] = res["cpu"]
    if res.get("memory"):
        requests["memory"] = limits["memory"] = res["memory"]
    if res.get("gpus"):
        requests[settings.gpu_resource] = limits[settings.gpu_resource] = str(res["gpus"])
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _volumes(workload: dict[str, Any], config_map_name: str, has_llm_config: bool
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": config_map_name}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
        {"name": "workspace", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": CACHE_DIR},
        {"name": "workspace", "mountPath": WORK_DIR},
    ]
    if (workload.get("resources") or {}).get("gpus"):
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    secret = workload.get("llmApiKeySecret")
    if secret and has_llm_config:
        volumes.append({"name": "llm-key", "secret": {
            "secretName": secret["name"], "defaultMode": 0o440,
            "items": [{"key": secret.get("key", "api-key"), "path": "api-key"}]}})
        mounts.append({"name": "llm-key", "mountPath": LLM_KEY_DIR, "readOnly": True})
    return volumes, mounts


def container_security(settings: OperatorSettings) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": settings.run_as_user,
        "runAsGroup": settings.run_as_user,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def config_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(config_yaml(config).encode()).hexdigest()[:16]


def job(kind: Kind, name: str, namespace: str, workload: dict[str, Any], config: dict[str, Any],
        settings: OperatorSettings, generation: int = 1, restarts: int = 0,
        owner_uid: str | None = None) -> dict[str, Any]:
    """The batch/v1 Job running the stage (Indexed with ``nodes > 1``); ``restarts``: group
    restarts before this Job; ``owner_uid``: the resource's uid (see :func:`_run_uid_env`)."""
    names = child_names(kind, name)
    nodes = int(workload.get("nodes", 1))
    shards = shards_of(config)
    indexed = nodes > 1 or shards > 1
    gpus = int((workload.get("resources") or {}).get("gpus", 0))
    has_llm = "llm" in kind.config.model_fields
    volumes, mounts = _volumes(workload, names.config_map, has_llm)
    pod_labels = labels(kind, name)
    job_labels = dict(pod_labels)
    if workload.get("queue"):
        job_labels[QUEUE_LABEL] = workload["queue"]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": workload.get("image") or settings.trainer_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command(kind, name, nodes, gpus, shards),
        "workingDir": WORK_DIR,
        "env": env(kind, name, namespace, workload, settings, has_llm, indexed, owner_uid),
        "resources": _resources(workload, settings),
        "volumeMounts": mounts,
        "securityContext": container_security(settings),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if nodes > 1:
        container["ports"] = [{"name": "rendezvous", "containerPort": RENDEZVOUS_PORT}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": settings.job_service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if nodes > 1:
        pod_spec["subdomain"] = names.service
    template = overrides.pod_template(
        {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        {"spec": settings.defaults()},
        {"spec": {k: workload[k] for k in SHORTHANDS if workload.get(k)}},
        workload.get("podTemplate"))
    pods = max(nodes, shards)
    spec: dict[str, Any] = {
        "backoffLimit": int(workload.get("backoffLimit", 2)),
        "completions": pods,
        "parallelism": pods,
        "completionMode": "Indexed" if indexed else "NonIndexed",
        "suspend": bool(workload.get("suspend", False)),
        "podFailurePolicy": pod_failure_policy(kind, nodes),
        "template": template,
    }
    annotations = {"zhufu.dev/config-sha256": config_digest(config),
                   GENERATION_ANNOTATION: str(generation), RESTART_ANNOTATION: str(restarts)}
    if shards > 1:  # a failed shard is retried alone; the others keep their finished parts
        spec["backoffLimitPerIndex"] = spec.pop("backoffLimit")
        annotations[SHARDS_ANNOTATION] = str(shards)
    if workload.get("activeDeadlineSeconds"):
        spec["activeDeadlineSeconds"] = int(workload["activeDeadlineSeconds"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": names.job,
            "namespace": namespace,
            "labels": job_labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def job_shards(job: dict[str, Any]) -> int:
    """The shard count of a Job built by :func:`job` (1 when it is not sharded)."""
    return int(((job.get("metadata") or {}).get("annotations") or {}).get(SHARDS_ANNOTATION, 1))


def whole_job(shards_job: dict[str, Any], name: str) -> dict[str, Any]:
    """A sharded curation's second Job, named ``name``, from its first (as the API server
    returns it): the same pod without ``--shard``, once, so a spec edited since the start
    changes nothing. It reads every part and runs the later steps (the reward model)."""
    meta, spec = shards_job["metadata"], shards_job["spec"]
    template = copy.deepcopy(spec["template"])
    pod_labels = {k: v for k, v in (template.get("metadata") or {}).get("labels", {}).items()
                  if k not in _DEFAULTED_LABELS}
    pod_labels["zhufu.dev/job"] = name
    template["metadata"] = {**(template.get("metadata") or {}), "labels": pod_labels}
    for container in template["spec"]["containers"]:
        if container["name"] == CONTAINER and container["command"][-2:] == SHARD_ARGS:
            container["command"] = container["command"][:-2]
            container["env"] = [e for e in container.get("env", [])
                                if e["name"] != "JOB_COMPLETION_INDEX"]
    labels_ = {**meta.get("labels", {}), "zhufu.dev/job": name}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k.startswith("zhufu.dev/") and k != SHARDS_ANNOTATION}
    out_spec: dict[str, Any] = {
        "backoffLimit": int(spec.get("backoffLimitPerIndex", 2)),
        "completions": 1, "parallelism": 1, "completionMode": "NonIndexed",
        "suspend": QUEUE_LABEL in labels_,  # Kueue admits it, as it admitted the shards
        "template": template,
    }
    for key in ("podFailurePolicy", "activeDeadlineSeconds"):
        if key in spec:
            out_spec[key] = copy.deepcopy(spec[key])
    new_meta: dict[str, Any] = {"name": name, "namespace": meta["namespace"],
                                "labels": labels_, "annotations": annotations}
    if meta.get("ownerReferences"):
        new_meta["ownerReferences"] = copy.deepcopy(meta["ownerReferences"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": new_meta, "spec": out_spec}


def children(kind: Kind, name: str, namespace: str, workload: dict[str, Any],
             config: dict[str, Any], settings: OperatorSettings, generation: int = 1,
             restarts: int = 0, owner_uid: str | None = None) -> list[dict[str, Any]]:
    """Every child in creation order: ConfigMap, [Service,] Job."""
    out = [config_map(kind, name, namespace, config)]
    if int(workload.get("nodes", 1)) > 1:
        out.append(headless_service(kind, name, namespace))
    out.append(job(kind, name, namespace, workload, config, settings, generation, restarts,
                   owner_uid))
    return out
