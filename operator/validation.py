"""Checks a spec must pass beyond the CRD schema, each naming the exact field.

The API server enforces types, enums and bounds; what it cannot see — cross-field rules of
the stage config (``batchSize`` a multiple of ``numGenerations``…), Kubernetes limits on
derived names, GPU-only options without GPUs, references that nothing uses — is caught here
before any child exists. The handler turns a :class:`SpecError` into a ``Failed`` condition
and an Event naming ``field``, then a ``kopf.PermanentError``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from zhufu.operator import overrides
from zhufu.operator.builders import (
    CONTAINER,
    LLM_KEY_FILE,
    MAX_JOB_NAME,
    RESERVED_ENV,
    child_names,
    labels,
    shards_of,
)
from zhufu.operator.dependencies import default_rewards
from zhufu.operator.spec import KINDS, Kind, split_spec
from zhufu.pipeline.config import field_name

#: A label value's limit (a Job's name is its pods' ``job-name`` label).
MAX_LABEL = 63


class SpecError(ValueError):
    """An invalid spec; ``field`` is the path a user must fix (``spec.rewards[0].weight``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _path(loc: tuple[Any, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _first_error(err: ValidationError) -> SpecError:
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    return SpecError(_path(tuple(e["loc"])), msg)


def validate(kind: Kind, name: str, spec: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return (workload, dependencies, stage config) with defaults filled, or raise SpecError.

    The stage config is returned as the user wrote it (``exclude_unset``) plus anything the
    operator injects, so the pipeline's own defaults stay the single source of defaults.
    """
    if len(child_names(kind, name).job) > MAX_JOB_NAME:
        raise SpecError("metadata.name", f"too long: the Job name {child_names(kind, name).job!r}"
                        f" must be at most {MAX_JOB_NAME} characters; use a shorter name")
    workload_raw, deps, config_raw = split_spec(spec)
    try:
        overrides.check(workload_raw.get("podTemplate"), containers={CONTAINER},
                        reserved_labels=set(labels(kind, name)), reserved_env=RESERVED_ENV)
    except overrides.OverrideError as e:
        raise SpecError(e.field, e.message) from e
    try:
        workload = kind.workload.model_validate(workload_raw).model_dump(exclude_none=True)
    except ValidationError as e:
        raise _first_error(e) from e
    if kind.kind != "GRPORun" and deps:
        field = sorted(deps)[0]
        raise SpecError(f"spec.{field}", f"only GRPORun takes dependencies, not {kind.kind}")
    config = _config(kind, config_raw)
    secret = workload.get("llmApiKeySecret")
    if secret and "llm" in kind.config.model_fields:
        if config.llm.api_key_file:
            raise SpecError("spec.llm.apiKeyFile", "set either llm.apiKeyFile or "
                            "spec.llmApiKeySecret, not both")
        llm = {k: v for k, v in (config_raw.get("llm") or {}).items()
               if field_name(k) != "api_key_file"}
        llm["api_key_file"] = LLM_KEY_FILE
        config = _config(kind, {**config_raw, "llm": llm})
    # snake_case keys from here on, whichever spelling the user wrote (the ConfigMap keeps
    # them, so a Job's config digest does not change with the spelling).
    given = config.model_dump(mode="json", exclude_unset=True)
    whole = child_names(kind, name).whole
    if shards_of(given) > 1 and len(whole) > MAX_LABEL:
        raise SpecError("metadata.name", f"too long for shards: the second Job's name {whole!r} "
                        f"must be at most {MAX_LABEL} characters; use a shorter name")
    _check_workload(kind, workload, given)
    if kind.kind == "GRPORun":
        _check_grpo(deps, given)
    return workload, deps, given


def _config(kind: Kind, raw: dict[str, Any]) -> Any:
    try:
        return kind.config.model_validate(raw)
    except ValidationError as e:
        raise _first_error(e) from e


def _check_workload(kind: Kind, workload: dict[str, Any], config: dict[str, Any]) -> None:
    gpus = workload.get("resources", {}).get("gpus", 0)
    if workload.get("nodes", 1) > 1 and not kind.distributed:
        several = ", ".join(k.kind for k in KINDS.values() if k.distributed)
        raise SpecError("spec.nodes", f"{kind.kind} runs on one node (its stages run in one "
                        f"process); only {several} uses nodes > 1")
    for i, tol in enumerate(workload.get("tolerations", [])):
        if tol.get("operator") == "Exists" and tol.get("value"):
            raise SpecError(f"spec.tolerations[{i}].value", "must be empty when operator is Exists")
        if tol.get("tolerationSeconds") is not None and tol.get("effect") != "NoExecute":
            raise SpecError(f"spec.tolerations[{i}].tolerationSeconds",
                            "only allowed with effect NoExecute")
    if gpus == 0:
        # vllm: server needs them too: the trainer sends its weights over NCCL from a GPU.
        for field, off in (("deepspeed", "none"), ("vllm", "none")):
            if config.get(field, off) != off:
                raise SpecError(f"spec.{field}", f"{config[field]!r} needs GPUs: set "
                                "spec.resources.gpus >= 1")
    world = max(gpus, 1) * workload.get("nodes", 1)
    batch = config.get("batch_size")
    if kind.kind == "GRPORun" and batch and batch % world:
        raise SpecError("spec.batchSize", f"{batch} is the global batch and must divide evenly "
                        f"over the {world} training processes (resources.gpus x nodes)")


def _check_grpo(deps: dict[str, Any], config: dict[str, Any]) -> None:
    rewards = config.get("rewards") or default_rewards()
    names = [r.get("name") for r in rewards]
    for ref, reward in (("judgeRef", "judge"), ("curationRef", "rm")):
        if deps.get(ref) and reward not in names:
            raise SpecError(f"spec.{ref}", f"set, but no reward named {reward!r} in spec.rewards "
                            "uses it; add one or drop the reference")
        for i, r in enumerate(rewards):
            if deps.get(ref) and r.get("name") == reward and r.get("model"):
                raise SpecError(f"spec.rewards[{i}].model", f"set together with spec.{ref}; "
                                "give the model in one place only")
    for i, r in enumerate(rewards):
        if r.get("name") == "rm" and not r.get("model") and not deps.get("curationRef"):
            raise SpecError(f"spec.rewards[{i}].model", "reward 'rm' needs a model: set it or "
                            "spec.curationRef")
