"""What a resource may reach on a cluster shared by several teams (one team per namespace).

Run by the handlers after :func:`zhufu.operator.validation.validate`, with the operator's
settings; each refusal is a :class:`~zhufu.operator.validation.SpecError` naming the field:

- **images**: ``spec.image`` must be a repository of ``ZHUFU_ALLOWED_IMAGES`` (default: the
  trainer image's repository), so a resource cannot run its own code with the pod's keys;
- **keys**: ``llm.api_key_env`` is fixed to ``OPENAI_API_KEY`` (in a pod the key comes from
  ``spec.llmApiKeySecret``; any other name could make the client send ``AWS_*`` or
  ``MLFLOW_*`` values as a Bearer token);
- **storage**: every ``s3://`` URI in the spec (defaults of the stage config included) lies
  under the namespace's prefix (``ZHUFU_STORAGE`` or ``ZHUFU_S3_PREFIX_TEMPLATE``, by
  default ``s3://<bucket>/<namespace>/``);
- **MLflow names**: experiment and registered-model names, and the model names in
  ``models:/`` URIs, are prefixed with ``<namespace>.`` (``team-a.zhufu-policy``), defaults
  included, so one team neither reads nor moves another's aliases through Zhufu; ``runs:/``
  URIs (which can name any team's run) are refused;
- **scheduling**: tolerations and priority classes only from the chart's allowlists (in
  ``spec.podTemplate`` too), ``spec.queue`` required when the chart says Kueue admits the
  Jobs;
- **pod template overrides**: Secrets (``secret`` volumes, ``secretKeyRef``, ``envFrom``)
  only those the install lists (``ZHUFU_POD_SECRETS``, the chart's ``jobs.podSecrets``), no
  projected or CSI volumes, none of the credential and endpoint variables (``AWS_*``,
  ``MLFLOW_*``…) except ``HF_TOKEN`` from a listed Secret.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from zhufu.operator import overrides
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import Kind, Workload
from zhufu.operator.validation import SpecError

#: The only env var the LLM client may read its key from inside a pod.
LLM_KEY_ENV = "OPENAI_API_KEY"
#: Keys whose values are MLflow names the operator prefixes with the namespace.
_NAME_FIELDS = ("experiment", "register_as")


def image_repository(image: str) -> str:
    """``registry/repo`` of an image reference, without ``:tag`` or ``@digest``.

    >>> image_repository("ghcr.io/zhufu-dev/zhufu-trainer:0.1.0@sha256:ab")
    'ghcr.io/zhufu-dev/zhufu-trainer'
    >>> image_repository("localhost:5000/trainer:1")
    'localhost:5000/trainer'
    """
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    return name


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model class inside ``annotation`` (``X | None``, ``list[X]``) and whether a list."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found[0] is not None:
                return found
        return None, False
    if origin is list:
        inner, _ = _submodel(typing.get_args(annotation)[0])
        return inner, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _walk(model: type[BaseModel], data: dict[str, Any], path: str = "spec"
          ) -> Iterator[tuple[dict[str, Any], str, str, str, Any]]:
    """Every plain field of ``model`` (nested models walked where ``data`` has them):
    (the dict holding it, its key there, its spec path as users write it, its attribute
    name, its value, the default when ``data`` does not set it)."""
    for name, info in model.model_fields.items():
        alias = info.validation_alias  # the camelCase spelling, once the models carry one
        shown = alias if isinstance(alias, str) else (info.alias or name)
        key = shown if shown in data and name not in data else name
        default = None if info.is_required() or info.default_factory else info.default
        value = data.get(key, default)
        inner, many = _submodel(info.annotation)
        if inner is not None and isinstance(value, dict) and not many:
            yield from _walk(inner, value, f"{path}.{shown}")
        elif inner is not None and isinstance(value, list) and many:
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _walk(inner, item, f"{path}.{shown}[{i}]")
        else:
            yield data, key, f"{path}.{shown}", name, value


def _strings(model: type[BaseModel], data: dict[str, Any]
             ) -> Iterator[tuple[dict[str, Any], str, str, str, str]]:
    """Every string setting, defaults included: (holder, key, path, attribute, value)."""
    for holder, key, path, attr, value in _walk(model, data):
        if isinstance(value, str):
            yield holder, key, path, attr, value


def _defaults_filled(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with the defaults checked here written in (MLflow names and URIs),
    so the pod runs exactly what was checked, not a default the operator never saw."""
    data = copy.deepcopy(data)
    for holder, key, _path, attr, value in list(_walk(model, data)):
        if key not in holder and isinstance(value, str) and (
                attr in _NAME_FIELDS or value.startswith(("s3://", "models:/", "runs:/"))):
            holder[key] = value
    return data


def check_image(workload: dict[str, Any], settings: OperatorSettings) -> None:
    image = workload.get("image")
    if not image:
        return
    allowed = settings.allowed_image_repositories()
    if image_repository(image) not in allowed:
        raise SpecError(_workload_path("image"), f"{image!r} is not an allowed image; this "
                        f"install runs only {', '.join(allowed)} (the chart's "
                        "tenancy.allowedImages)")


def _workload_path(attr: str) -> str:
    info = Workload.model_fields[attr]
    return f"spec.{info.alias or attr}"


def check_keys(kind: Kind, config: dict[str, Any]) -> None:
    for _holder, _key, path, attr, value in _strings(kind.config, config):
        if attr == "api_key_env" and value != LLM_KEY_ENV:
            raise SpecError(path, f"{value!r} is not allowed: in a pod the LLM key is read "
                            f"from {LLM_KEY_ENV} or the file of spec.llmApiKeySecret, never "
                            "from another variable (those hold S3 and MLflow credentials)")


def check_storage(kind: Kind, namespace: str, deps: dict[str, Any], config: dict[str, Any],
                  settings: OperatorSettings) -> None:
    prefix = settings.s3_prefix(namespace)
    if not prefix:
        return
    found = [(path, value) for *_, path, _attr, value in _strings(kind.config, config)]
    found += [(f"spec.{k}", v) for k, v in sorted(deps.items()) if isinstance(v, str)]
    for path, value in found:
        if value[:5].lower() == "s3://" and not (value + "/").startswith(prefix):
            raise SpecError(path, f"{value!r} is outside this namespace's storage: resources "
                            f"in {namespace!r} read and write only under {prefix}")


def _prefixed(namespace: str, name: str) -> str:
    return name if name.startswith(f"{namespace}.") else f"{namespace}.{name}"


def experiment_name(namespace: str, experiment: str, settings: OperatorSettings) -> str:
    """The MLflow experiment a resource's runs land in (prefixed when the install says so)."""
    return _prefixed(namespace, experiment) if settings.mlflow_name_prefix else experiment


def model_uri_for(namespace: str, uri: str) -> str:
    """``models:/NAME…`` with NAME prefixed by ``<namespace>.`` (kept if already so).

    >>> model_uri_for("team-a", "models:/zhufu-policy@sft")
    'models:/team-a.zhufu-policy@sft'
    >>> model_uri_for("team-a", "models:/team-a.zhufu-judge/3")
    'models:/team-a.zhufu-judge/3'
    """
    rest = uri[len("models:/"):]
    cut = min((i for i in (rest.find("/"), rest.find("@")) if i >= 0), default=len(rest))
    return f"models:/{_prefixed(namespace, rest[:cut])}{rest[cut:]}"


def scope_mlflow(kind: Kind, namespace: str, deps: dict[str, Any], config: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Experiment, registered-model and ``models:/`` names prefixed with the namespace."""
    config = _defaults_filled(kind.config, config)
    for holder, key, path, attr, value in list(_strings(kind.config, config)):
        if value.startswith("runs:/"):
            raise SpecError(path, f"{value!r}: runs:/ URIs can name any team's run; register "
                            "the model and use models:/NAME (read as this namespace's)")
        if attr in _NAME_FIELDS:
            holder[key] = _prefixed(namespace, value)
        elif value.startswith("models:/"):
            holder[key] = model_uri_for(namespace, value)
    deps = dict(deps)
    for field, value in sorted(deps.items()):
        if isinstance(value, str) and value.startswith("runs:/"):
            raise SpecError(f"spec.{field}", f"{value!r}: runs:/ URIs can name any team's run;"
                            " register the model and use models:/NAME")
        if isinstance(value, str) and value.startswith("models:/"):
            deps[field] = model_uri_for(namespace, value)
    return deps, config


def check_scheduling(workload: dict[str, Any], settings: OperatorSettings,
                     prefix: str = "spec") -> None:
    for i, tol in enumerate(workload.get("tolerations") or []):
        if not settings.toleration_allowed(tol):
            allowed = settings.allowed_tolerations or "none"
            raise SpecError(f"{prefix}.tolerations[{i}]", f"{tol} is not allowed; "
                            f"this install allows only {allowed} (the chart's "
                            "tenancy.allowedTolerations)")
    pc = workload.get("priorityClassName")
    if pc and pc not in settings.allowed_priority_classes:
        allowed = ", ".join(settings.allowed_priority_classes) or "none"
        raise SpecError(f"{prefix}.priorityClassName", f"{pc!r} is not allowed; this "
                        f"install allows only: {allowed} (the chart's "
                        "tenancy.allowedPriorityClasses)")


def check_queue(workload: dict[str, Any], settings: OperatorSettings) -> None:
    if settings.kueue and not workload.get("queue"):
        raise SpecError(_workload_path("queue"), "required: this install admits every Job "
                        "through Kueue; name your namespace's LocalQueue")


#: Env var name prefixes a pod template may not set: the credentials and endpoints the
#: operator gives the pod (an override could send them elsewhere or swap in another Secret).
RESERVED_ENV_PREFIXES = ("AWS_", "MLFLOW_", "OPENAI_", "ZHUFU_", "HF_", "VLLM_")
#: Of those, the variables a pod template may set, but only from a Secret the install lists
#: (``pod_secrets``): credentials the operator does not provide itself.
SECRET_ONLY_ENV = frozenset({"HF_TOKEN"})
#: Volume sources that can carry credentials (or an API token) into a pod, never allowed.
CREDENTIAL_VOLUMES = ("projected", "csi")


def check_pod_template(workload: dict[str, Any], settings: OperatorSettings) -> None:
    """``spec.podTemplate`` (merged into the Job's pod) may reference only the Secrets the
    install lists (``settings.pod_secrets``), may not change the credential and endpoint
    variables (``HF_TOKEN`` only from a listed Secret), and may not step around the
    scheduling allowlists."""
    template = workload.get("podTemplate") or {}
    spec = template.get("spec") or {}
    path = "spec.podTemplate.spec"
    check_scheduling(spec, settings, prefix=path)
    listed = ", ".join(settings.pod_secrets) or "none"
    for field, secret in overrides.secret_refs(spec, path):
        if secret not in settings.pod_secrets:
            raise SpecError(field, f"refused: Secret {secret!r} is not one pod overrides may "
                            f"reference; this install allows: {listed} (the chart's "
                            "jobs.podSecrets)")
    for i, volume in enumerate(spec.get("volumes") or []):
        for source in CREDENTIAL_VOLUMES:
            if source in volume:
                raise SpecError(f"{path}.volumes[{i}].{source}", f"refused: {source} volumes "
                                "can bring in credentials; use a secret volume of a Secret "
                                "the install lists (jobs.podSecrets)")
    for where, var in overrides.env_vars(spec, path):
        name = str(var.get("name", ""))
        if name in SECRET_ONLY_ENV:
            if "secretKeyRef" not in (var.get("valueFrom") or {}):
                raise SpecError(f"{where}.name", f"refused: {name} may come only from a "
                                "Secret the install lists (valueFrom.secretKeyRef; the "
                                "chart's jobs.podSecrets)")
        elif name.startswith(RESERVED_ENV_PREFIXES):
            raise SpecError(f"{where}.name", f"refused: {name} is one of the credential and "
                            "endpoint variables the operator sets")


def enforce(kind: Kind, namespace: str, workload: dict[str, Any], deps: dict[str, Any],
            config: dict[str, Any], settings: OperatorSettings
            ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Refuse what reaches beyond the namespace; return (workload, deps, config) scoped."""
    check_image(workload, settings)
    check_scheduling(workload, settings)
    check_queue(workload, settings)
    check_pod_template(workload, settings)
    check_keys(kind, config)
    check_storage(kind, namespace, deps, config, settings)
    if settings.mlflow_name_prefix:
        deps, config = scope_mlflow(kind, namespace, deps, config)
    return workload, deps, config
