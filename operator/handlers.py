"""The Kopf handlers: run with ``kopf run --standalone -m zhufu.operator.handlers -A``.

Handlers orchestrate; :mod:`~zhufu.operator.builders` builds and
:mod:`~zhufu.operator.status` decides. Handler ids are stored state (Kopf keys its progress
by them): ``<kind>_create``, ``<kind>_resume``, ``<kind>_update``, ``<kind>_delete`` and the
timer ``<kind>_recheck`` for each of ``curationjob``, ``judgetraining``, ``grporun``, plus
``job_event`` and ``pod_event``.

Rules a user sees:

- create/resume: validate the spec (invalid → ``Failed`` + Event naming the field, then
  ``kopf.PermanentError``); a GRPORun waits for its dependencies (``WaitingForDependency``,
  re-checked every ``ZHUFU_DEPENDENCY_POLL_S``); then the children are created if absent.
- Status follows the Job and its pods (``job_event``/``pod_event``), with an Event at each
  transition; the pod's termination message (a StageResult) is copied into status. A Job
  without pods is explained by its Events (``FailedCreate``: a missing ServiceAccount, an
  exceeded quota). While the stage runs, and after it failed, ``mlflowRunId`` (and
  ``mlflowRunUrl`` when ``ZHUFU_MLFLOW_UI_URL`` is set) name the Job's newest MLflow run,
  found by its ``zhufu.resource`` and ``zhufu.job_uid`` tags (the resource's uid, which every
  Job of the resource gives its pods).
- A spec change after the Job exists restarts nothing: the ignored generation is recorded in
  the ``SpecChangeIgnored`` condition. To run with a new spec, create a new resource.
- A distributed kind's Job that a pod failure failed (podFailurePolicy) is restarted whole,
  up to ``spec.maxRestarts`` (:mod:`~zhufu.operator.restarts`): ``Restarting`` with an
  Event, the Job deleted in the foreground with its pods, then created again.
- delete: the children are deleted explicitly (their ownerReferences also let the
  garbage collector remove them on a real cluster).
- recheck (a timer, every ``ZHUFU_RECHECK_INTERVAL_S`` while a resource is neither
  ``Succeeded`` nor ``Failed``): a safety net for lost progress. Kopf retries a handler that
  fails, but when Kopf's *own* PATCH of the resource (adding the finalizer, recording
  progress, the "touch" that wakes a delayed retry) is refused — 409 Conflict, or a 5xx or
  dropped connection past its request retries — it waits for the next change of the object,
  which may never come. The timer re-runs the idempotent path instead: without a Job (or
  still waiting for a dependency) it reconciles, with one it recomputes the status from the
  Job and pods (a lost Job/pod event or a refused status write leaves it stale otherwise).
  Its own status writes are changes, so Kopf's bookkeeping gets another try as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from zhufu.operator import builders, dependencies, render, restarts, runs, tenancy
from zhufu.operator import settings as settings_mod
from zhufu.operator.kube import Kube, api_message, configure_client, owned_by
from zhufu.operator.spec import API_VERSION, GROUP, KINDS, VERSION, Kind, kind_of
from zhufu.operator.status import (
    JobState,
    changed,
    job_state,
    phase_conditions,
    set_condition,
    status_patch,
)
from zhufu.operator.validation import SpecError, validate
from zhufu.pipeline.redact import strip_url_credentials

MANAGED = {"app.kubernetes.io/managed-by": builders.MANAGED_BY}
TERMINAL = ("Succeeded", "Failed")
RETRY_S = 2.0
#: Label the Job controller puts on a Job's pods (the Job's uid).
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
#: Label or annotation by which a Secret opts in as an LLM key (``spec.llmApiKeySecret``).
LLM_KEY_OPT_IN = "zhufu.dev/llm-key"
log = logging.getLogger(__name__)


def _recheck_interval() -> float:
    """``ZHUFU_RECHECK_INTERVAL_S``, read when the handlers are registered (at import)."""
    try:
        return settings_mod.load_settings().recheck_interval_s
    except settings_mod.SettingsError:  # the startup handler reports the bad variable
        return float(settings_mod.OperatorSettings.model_fields["recheck_interval_s"].default)


RECHECK_S = _recheck_interval()

_kube: Kube | None = None
_locks: defaultdict[tuple[str, str, str], asyncio.Lock] = defaultdict(asyncio.Lock)


def kube() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube(configure_client())
    return _kube


@kopf.on.startup()
async def operator_startup(settings: kopf.OperatorSettings, logger: logging.Logger,
                           **_: Any) -> None:
    """Configure the operator in one place, from ``ZHUFU_*`` environment variables."""
    ours = settings_mod.load_settings()
    settings_mod.configure(ours)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{GROUP}/cleanup"
    settings.posting.level = logging.WARNING  # only our own Events, not every handler log
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    kube()
    logger.info("zhufu operator: trainer image %s, MLflow %s", ours.trainer_image,
                ours.mlflow_uri)


def _event(body: dict[str, Any], kind: str, reason: str, message: str) -> None:
    kopf.event(body, type=kind, reason=reason, message=strip_url_credentials(message)[:1024])


async def _write_status(kind: Kind, body: dict[str, Any], status: dict[str, Any],
                        new: dict[str, Any]) -> None:
    meta = body["metadata"]
    await kube().patch_status(API_VERSION, kind.plural, meta["namespace"], meta["name"], new)
    old = (status.get("phase"), status.get("reason"))
    if old != (new.get("phase", old[0]), new.get("reason", old[1])):
        bad = new.get("phase") == "Failed" or new.get("reason") in (
            "ImagePullBackOff", "Unschedulable", "OOMKilled", "Evicted",
            "CreateContainerConfigError", "FailedCreate", "Restarting")
        _event(body, "Warning" if bad else "Normal", new.get("reason", ""),
               new.get("message", ""))


async def _fail(kind: Kind, body: dict[str, Any], reason: str, field: str, message: str) -> None:
    """Mark the resource Failed (condition + Event naming the field); caller raises."""
    status = dict(body.get("status") or {})
    text = strip_url_credentials(f"{field}: {message}")
    new = {"phase": "Failed", "reason": reason, "message": text,
           "conditions": phase_conditions(status.get("conditions") or [], "Failed", reason,
                                          text, body["metadata"].get("generation"))}
    await _write_status(kind, body, status, new)


async def _dependencies(kind: Kind, body: dict[str, Any], deps: dict[str, Any],
                        config: dict[str, Any], runtime_s: float) -> dict[str, Any]:
    """Return the config with dependency models filled, or raise Temporary/PermanentError."""
    namespace = body["metadata"]["namespace"]
    lookup: dict[str, dict[str, Any] | None] = {}
    for field, (ref_kind, _) in dependencies.REFS.items():
        ref = deps.get(field)
        if ref and not dependencies.is_uri(ref):
            lookup[field] = await kube().get(API_VERSION, KINDS[ref_kind].plural, namespace, ref)
    check = dependencies.check(deps, lookup)
    s = settings_mod.current
    if check.state == "failed":
        await _fail(kind, body, "DependencyFailed", check.field, check.message)
        raise kopf.PermanentError(f"{check.field}: {check.message}")
    if check.state == "waiting":
        missing = dependencies.missing(deps, lookup)
        if missing and runtime_s > s.dependency_timeout_s:
            msg = f"still missing after {s.dependency_timeout_s:.0f}s: {check.message}"
            await _fail(kind, body, "DependencyNotFound", missing[0], msg)
            raise kopf.PermanentError(f"{missing[0]}: {msg}")
        status = dict(body.get("status") or {})
        text = f"{check.field}: {check.message}"
        new = {"phase": "Waiting", "reason": "WaitingForDependency", "message": text,
               "conditions": phase_conditions(status.get("conditions") or [], "Waiting",
                                              "WaitingForDependency", text)}
        if (status.get("phase"), status.get("message")) != ("Waiting", text):
            await _write_status(kind, body, status, new)
        raise kopf.TemporaryError(text, delay=s.dependency_poll_s)
    if not check.models:
        return config
    status = dict(body.get("status") or {})
    if status.get("resolved") != check.models:  # what the run took, for lineage
        meta = body["metadata"]
        await kube().patch_status(API_VERSION, kind.plural, meta["namespace"], meta["name"],
                                  {"resolved": check.models})
    return dependencies.apply_models(config, check.models)


async def reconcile(kind: Kind, body: kopf.Body, runtime_s: float) -> None:
    """Validate, wait for dependencies, create the children if absent, refresh status."""
    obj = dict(body)
    meta = obj["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    if (obj.get("status") or {}).get("phase") in TERMINAL:
        return
    try:
        workload, deps, config = validate(kind, name, dict(obj.get("spec") or {}))
        workload, deps, config = tenancy.enforce(kind, namespace, workload, deps, config,
                                                 settings_mod.current)
        await _check_key_secret(namespace, workload)
    except SpecError as e:
        await _fail(kind, obj, "InvalidSpec", e.field, e.message)
        raise kopf.PermanentError(str(e)) from e
    if deps:
        config = await _dependencies(kind, obj, deps, config, runtime_s)
    generation = int(meta.get("generation") or 1)
    children = render.build(kind, body, workload, config, settings_mod.current)
    for child in children:
        created = await _create_child(kind, obj, child)
        if created and child["kind"] == "Job":
            again = builders.restarts_before(child)
            _event(obj, "Normal", "JobCreated", f"created Job {child['metadata']['name']}"
                   + (f" (restart {again})" if again else ""))
    await sync_parent(kind, namespace, name, created_generation=generation)


async def _check_key_secret(namespace: str, workload: dict[str, Any]) -> None:
    """``spec.llmApiKeySecret`` must name a Secret that opted in (label or annotation
    ``zhufu.dev/llm-key: "true"``): only its metadata is read."""
    ref = workload.get("llmApiKeySecret")
    if not ref:
        return
    meta = await kube().get_metadata("v1", "Secret", namespace, ref["name"])
    field = "spec.llmApiKeySecret.name"
    if meta is None:
        raise SpecError(field, f"no Secret {ref['name']!r} in namespace {namespace!r}")
    marks = {**(meta.get("annotations") or {}), **(meta.get("labels") or {})}
    if marks.get(LLM_KEY_OPT_IN) != "true":
        raise SpecError(field, f"Secret {ref['name']!r} is not an LLM key Secret: only a "
                        f"Secret labelled {LLM_KEY_OPT_IN}=true may be mounted as one "
                        f"(kubectl label secret {ref['name']} {LLM_KEY_OPT_IN}=true)")


async def _create_child(kind: Kind, parent: dict[str, Any], child: dict[str, Any]) -> bool:
    """Create a child if absent. One that exists must be ours (ownerReferences hold the
    resource's uid), else the resource fails; so does a 4xx answer other than 409 (exists)
    and 429 (throttled, retried): a permanent refusal is reported, not retried forever."""
    meta = child["metadata"]
    what = f"{child['kind']} {meta['name']!r}"
    try:
        created = await kube().create_if_absent(child)
    except ApiException as e:
        if e.status is None or not 400 <= e.status < 500 or e.status == 429:
            raise
        msg = f"the API server refused to create it: {api_message(e)}"
        await _fail(kind, parent, "APIRefused", what, msg)
        raise kopf.PermanentError(f"{what}: {msg}") from e
    if created:
        return True
    existing = await kube().get(child["apiVersion"], child["kind"], meta["namespace"],
                                meta["name"])
    if existing is None:  # 409, then gone: create it on the retry
        raise kopf.TemporaryError(f"{what} existed and is gone; retrying", delay=RETRY_S)
    uid = parent["metadata"].get("uid", "")
    if not owned_by(existing, uid):
        msg = (f"already exists and is not owned by this {kind.kind} (uid {uid}); the operator "
               "neither adopts nor changes it: rename the resource or remove the object")
        await _fail(kind, parent, "NotOwned", what, msg)
        raise kopf.PermanentError(f"{what}: {msg}")
    return False


async def sync_parent(kind: Kind, namespace: str, name: str,
                      created_generation: int | None = None) -> bool:
    """Recompute a resource's status from its Job and pods; patch it and post an Event.

    A group failure is restarted here (:func:`_restart`). True when the resource is
    restarting and its old Job is gone: the caller then creates the new one
    (:func:`recreate`, outside this resource's lock)."""
    async with _locks[(kind.kind, namespace, name)]:
        parent = await kube().get(API_VERSION, kind.plural, namespace, name)
        if parent is None or (parent.get("metadata") or {}).get("deletionTimestamp"):
            return False
        status = dict(parent.get("status") or {})
        if status.get("phase") in TERMINAL:
            return False
        names = builders.child_names(kind, name)
        if created_generation is None and not status.get("jobName"):
            return False  # not created by us yet (e.g. still waiting for a dependency)
        job = await kube().get("batch/v1", "Job", namespace, names.job)
        if job is not None and not owned_by(job, (parent.get("metadata") or {}).get("uid", "")):
            job = None  # someone else's Job of that name: never read as ours
        if job is None and status.get("reason") == "Restarting":
            return True
        pods = await _job_pods(namespace, job)
        job, pods, shards = await _shards_then_whole(kind, parent, job, pods)
        if job is None:
            state = JobState("Pending", "JobMissing", "the Job is gone; it is re-created on the"
                             " next operator restart")
        else:
            state = job_state(job, pods, await _job_events(job) if not pods else [])
            decision = restarts.decide(kind, parent, job, state)
            if decision is not None:
                await _restart(kind, parent, status, job, decision)
                return False
        new = {**status_patch(status, state, names.job), **shards}
        if job is not None and state.result is None and state.phase in ("Running", "Failed"):
            new.update(await _run_fields(kind, parent, job))
        generation = created_generation
        if job is not None:
            ann = (job.get("metadata") or {}).get("annotations") or {}
            generation = int(ann.get("zhufu.dev/generation", generation or 1))
        if generation is not None:
            new["observedGeneration"] = generation
        if changed(status, new):
            await _write_status(kind, parent, status, new)
        return False


async def _restart(kind: Kind, parent: dict[str, Any], status: dict[str, Any],
                   job: dict[str, Any], decision: restarts.Decision) -> None:
    """Write the decision's status (``Restarting`` and its Event, or ``Failed``); on a
    restart delete the failed Job in the foreground (its pods go first). Every step is
    idempotent: the restart number comes from the Job, a deleting Job is not deleted again."""
    meta = job["metadata"]
    new = status_patch(status, decision.state, meta["name"])
    new = restarts.restart_status(new, decision, (parent.get("metadata") or {}).get("generation"))
    new["observedGeneration"] = int((meta.get("annotations") or {}).get(
        builders.GENERATION_ANNOTATION, 1))
    if changed(status, new):
        await _write_status(kind, parent, status, new)
    if decision.restart and not meta.get("deletionTimestamp"):
        await kube().delete("batch/v1", "Job", meta["namespace"], meta["name"],
                            propagation="Foreground")


async def recreate(kind: Kind, namespace: str, name: str) -> str:
    """Create the Job of a restarting resource whose old Job is gone, the way the first was
    created (:func:`reconcile`, from a fresh read of the resource: its ``status.restarts``
    numbers the new Job). Returns what it did (for the log)."""
    parent = await kube().get(API_VERSION, kind.plural, namespace, name)
    if parent is None:
        return "gone"
    try:
        await reconcile(kind, parent, 0.0)
    except (kopf.TemporaryError, kopf.PermanentError) as e:
        return f"deferred: {e}"  # e.g. Failed (status written) or a dependency wait
    return "recreated"


async def _shards_then_whole(kind: Kind, parent: dict[str, Any], job: dict[str, Any] | None,
                             pods: list[dict[str, Any]]
                             ) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                        dict[str, str]]:
    """A sharded curation: ``status.shards`` (done/total) and, once every shard succeeded,
    its second Job (created here if absent) and that Job's pods in place of the shards'.
    Anything else passes through unchanged."""
    shards = builders.job_shards(job) if job is not None else 1
    if job is None or shards == 1:
        return job, pods, {}
    done = int((job.get("status") or {}).get("succeeded") or 0)
    extra = {"shards": f"{min(done, shards)}/{shards}"}
    if job_state(job, []).phase != "Succeeded":
        return job, pods, extra
    meta = parent["metadata"]
    name = builders.child_names(kind, meta["name"]).whole
    whole = await kube().get("batch/v1", "Job", meta["namespace"], name)
    if whole is None:
        if await _create_child(kind, parent, builders.whole_job(job, name)):
            _event(parent, "Normal", "JobCreated", f"all {shards} shards succeeded; created "
                   f"Job {name}: every part to the whole result")
        whole = await kube().get("batch/v1", "Job", meta["namespace"], name)
    if whole is not None and not owned_by(whole, meta.get("uid", "")):
        whole = None
    return whole, await _job_pods(meta["namespace"], whole), extra


async def _job_events(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The Job's Events (the Job controller's FailedCreate); none if they cannot be read."""
    meta = job["metadata"]
    try:
        return await kube().events(meta["namespace"], "Job", meta["name"])
    except Exception as e:  # noqa: BLE001 - e.g. 403 without the chart's events rule
        log.warning("cannot read the Events of Job %s/%s: %r", meta["namespace"],
                    meta["name"], e)
        return []


async def _run_fields(kind: Kind, parent: dict[str, Any], job: dict[str, Any]
                      ) -> dict[str, str]:
    """``mlflowRunId`` (and ``mlflowRunUrl``) of the Job's newest MLflow run, found by its
    ``zhufu.resource``/``zhufu.job_uid`` tags (the uid the Job gave its pods:
    :func:`~zhufu.operator.builders.run_uid`), while the stage runs or after it failed."""
    s = settings_mod.current
    meta = parent["metadata"]
    experiment = tenancy.experiment_name(
        meta["namespace"], (parent.get("spec") or {}).get("experiment")
        or kind.config.model_fields["experiment"].default, s)
    resource = f"{kind.plural}/{meta['namespace']}/{meta['name']}"
    found = await asyncio.to_thread(runs.find_run, s.mlflow_uri, experiment, resource,
                                    builders.run_uid(job))
    if found is None:
        return {}
    out = {"mlflowRunId": found.run_id}
    if s.mlflow_ui_url:
        out["mlflowRunUrl"] = found.url(s.mlflow_ui_url)
    return out


async def _job_pods(namespace: str, job: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The Job's own pods: its ``controller-uid`` label and a controller ownerReference to
    the Job's uid (a pod merely labelled like ours is not read)."""
    if job is None:
        return []
    uid = job["metadata"]["uid"]
    pods = await kube().list("v1", "Pod", namespace, {CONTROLLER_UID: uid})
    return [p for p in pods if any(ref.get("uid") == uid and ref.get("controller")
                                   for ref in (p.get("metadata") or {}).get("ownerReferences")
                                   or [])]


def _age_s(meta: dict[str, Any]) -> float:
    """Seconds since the resource was created (0 if the timestamp is missing or odd)."""
    try:
        created = datetime.fromisoformat(str(meta["creationTimestamp"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, (datetime.now(UTC) - created).total_seconds())


async def recheck(kind: Kind, body: kopf.Body) -> str:
    """One tick of the ``<kind>_recheck`` timer; returns what it did (for the log).

    Every call it makes is idempotent (create-if-absent, GETs, a status patch only when the
    status changed), so running beside Kopf's own handlers is harmless. Errors are logged and
    left to the next tick.
    """
    obj = dict(body)
    meta = obj["metadata"]
    status = dict(obj.get("status") or {})
    if meta.get("deletionTimestamp") or status.get("phase") in TERMINAL:
        return "idle"
    try:
        if status.get("jobName"):
            if await sync_parent(kind, meta["namespace"], meta["name"]):
                return await recreate(kind, meta["namespace"], meta["name"])
            return "resynced"
        await reconcile(kind, body, _age_s(meta))
        return "reconciled"
    except (kopf.TemporaryError, kopf.PermanentError) as e:
        return f"deferred: {e}"  # waiting for a dependency, or Failed (status written)
    except Exception as e:  # noqa: BLE001 - an API error: the next tick retries
        log.warning("recheck of %s %s/%s failed, retried in %.0fs: %r", kind.kind,
                    meta.get("namespace"), meta.get("name"), RECHECK_S, e)
        return f"failed: {e!r}"


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return dict(status or {}).get("phase") not in TERMINAL


# One function per event, shared by the kinds: each looks its kind up from the resource.
# Handler ids are Kopf's stored progress in live resources: never rename them.
# backoff: an API error (500, timeout) retries the handler after 2 s, not Kopf's 60 s.


@kopf.on.create(GROUP, VERSION, "curationjobs", id="curationjob_create", backoff=RETRY_S)
@kopf.on.resume(GROUP, VERSION, "curationjobs", id="curationjob_resume", backoff=RETRY_S)
@kopf.on.create(GROUP, VERSION, "judgetrainings", id="judgetraining_create", backoff=RETRY_S)
@kopf.on.resume(GROUP, VERSION, "judgetrainings", id="judgetraining_resume", backoff=RETRY_S)
@kopf.on.create(GROUP, VERSION, "grporuns", id="grporun_create", backoff=RETRY_S)
@kopf.on.resume(GROUP, VERSION, "grporuns", id="grporun_resume", backoff=RETRY_S)
async def on_create(resource: kopf.Resource, body: kopf.Body, runtime: timedelta,
                    **_: Any) -> None:
    """A new resource, or one found at operator start: reconcile it."""
    await reconcile(kind_of(resource.plural), body, runtime.total_seconds())


@kopf.on.update(GROUP, VERSION, "curationjobs", field="spec", id="curationjob_update",
                backoff=RETRY_S)
@kopf.on.update(GROUP, VERSION, "judgetrainings", field="spec", id="judgetraining_update",
                backoff=RETRY_S)
@kopf.on.update(GROUP, VERSION, "grporuns", field="spec", id="grporun_update",
                backoff=RETRY_S)
async def on_update(resource: kopf.Resource, body: kopf.Body, meta: kopf.Meta,
                    status: kopf.Status, **_: Any) -> None:
    """A spec change: ignored once the stage started (recorded in ``SpecChangeIgnored``)."""
    current = dict(status or {})
    if not current.get("jobName") and current.get("phase") not in TERMINAL:
        return  # nothing started yet: the create handler reads the new spec
    generation = int(meta.get("generation") or 0)
    msg = (f"spec generation {generation} was not applied: a started or finished stage is"
           " never restarted; create a new resource to run with the new spec")
    conds = set_condition(current.get("conditions") or [], "SpecChangeIgnored", True,
                          "SpecChangeIgnored", msg, generation)
    obj = dict(body)
    await kube().patch_status(API_VERSION, resource.plural, obj["metadata"]["namespace"],
                              obj["metadata"]["name"], {"conditions": conds})
    _event(obj, "Warning", "SpecChangeIgnored", msg)


@kopf.on.delete(GROUP, VERSION, "curationjobs", id="curationjob_delete", backoff=RETRY_S)
@kopf.on.delete(GROUP, VERSION, "judgetrainings", id="judgetraining_delete", backoff=RETRY_S)
@kopf.on.delete(GROUP, VERSION, "grporuns", id="grporun_delete", backoff=RETRY_S)
async def on_delete(resource: kopf.Resource, name: str, namespace: str, uid: str,
                    **_: Any) -> None:
    """Delete the children explicitly (ownerReferences also let the GC remove them); an
    object of a child's name that this resource does not own is left alone."""
    names = builders.child_names(kind_of(resource.plural), name)
    for api_version, kind, child in (("batch/v1", "Job", names.job),
                                     ("batch/v1", "Job", names.whole),
                                     ("v1", "Service", names.service),
                                     ("v1", "ConfigMap", names.config_map)):
        obj = await kube().get(api_version, kind, namespace, child)
        if obj is not None and owned_by(obj, uid):
            await kube().delete(api_version, kind, namespace, child)


# Only while unfinished: Kopf stops the timer once the resource Succeeded or Failed.
_TIMER = {"interval": RECHECK_S, "initial_delay": RECHECK_S, "when": _unfinished,
          "errors": kopf.ErrorsMode.IGNORED}


@kopf.timer(GROUP, VERSION, "curationjobs", id="curationjob_recheck", **_TIMER)
@kopf.timer(GROUP, VERSION, "judgetrainings", id="judgetraining_recheck", **_TIMER)
@kopf.timer(GROUP, VERSION, "grporuns", id="grporun_recheck", **_TIMER)
async def on_timer(resource: kopf.Resource, body: kopf.Body, logger: logging.Logger,
                   **_: Any) -> None:
    """The safety net for lost progress (see the module docstring)."""
    done = await recheck(kind_of(resource.plural), body)
    if done != "idle":
        logger.debug("recheck: %s", done)


async def _child_changed(labels: dict[str, str], namespace: str | None) -> None:
    kind = KINDS.get(labels.get("zhufu.dev/kind", ""))
    owner = labels.get("zhufu.dev/owner")
    if kind is None or not owner or not namespace:
        return
    if await sync_parent(kind, namespace, owner):
        done = await recreate(kind, namespace, owner)
        log.info("%s %s/%s: Job re-created after a group failure: %s", kind.kind, namespace,
                 owner, done)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="job_event")
async def job_event(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    """A Job of ours changed: refresh its parent's status."""
    await _child_changed(dict(labels), namespace)


@kopf.on.event("", "v1", "pods", labels=MANAGED, id="pod_event")
async def pod_event(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    """A pod of ours changed (pull errors, OOM, scheduling): refresh its parent's status."""
    await _child_changed(dict(labels), namespace)
