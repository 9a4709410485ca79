"""``spec.podTemplate``: pod overrides merged into a Job's pod template by fixed rules.

Three layers are merged into the pod template the operator builds, each over the one before:

1. operator defaults (settings: ``ZHUFU_DEFAULT_NODE_SELECTOR``, ``…_TOLERATIONS``,
   ``…_PRIORITY_CLASS``, ``ZHUFU_IMAGE_PULL_SECRETS``, from the chart's values);
2. the spec's top-level shorthands ``nodeSelector``, ``tolerations``, ``priorityClassName``;
3. ``spec.podTemplate`` (``metadata.labels``/``annotations``; ``spec.imagePullSecrets``,
   ``volumes``, ``affinity``, ``tolerations``, ``nodeSelector``, ``priorityClassName``,
   ``runtimeClassName``, ``schedulerName``; ``spec.containers[]`` by name: ``env``,
   ``envFrom``, ``volumeMounts``, ``resources``).

Rules (:func:`merge`): maps are merged key by key (recursively; the later layer wins a key);
lists are appended, except lists of named objects: an ``env`` var, a volume or an image pull
secret with the name of an earlier one replaces it in place, a ``volumeMount`` at the same
``mountPath`` replaces it, and a container with the same name is merged; scalars are replaced.

Refused, naming the field (:func:`check`, on the spec; :func:`hardening_violations`, on the
merged template): anything that would undo the pod's hardening (privileged containers, root
user, privilege escalation, host namespaces, the API token, host paths), overriding the
operator's labels (they find the Job's pods), its config and secret volumes, or the env vars
that report the result, and a container name the pod does not have.
"""

from __future__ import annotations

import copy
from typing import Any

#: Keys of the pod (and container) spec that would undo the hardening, with why.
HARDENING = {
    "securityContext": "the operator's securityContext (non-root, no privilege escalation, "
                       "all capabilities dropped, RuntimeDefault seccomp) is not overridable",
    "privileged": "job containers never run privileged",
    "runAsUser": "the uid is the operator's setting (ZHUFU_RUN_AS_USER, never 0)",
    "runAsNonRoot": "job pods always run as non-root",
    "allowPrivilegeEscalation": "job containers never escalate privileges",
    "capabilities": "job containers drop all capabilities",
    "hostNetwork": "job pods never share the host's network namespace",
    "hostPID": "job pods never share the host's PID namespace",
    "hostIPC": "job pods never share the host's IPC namespace",
    "hostUsers": "job pods never share the host's user namespace",
    "automountServiceAccountToken": "job pods get no API token (their ServiceAccount has no "
                                    "rights and needs none)",
    "serviceAccountName": "job pods run as the operator's job ServiceAccount",
    "hostPath": "hostPath volumes expose the node's filesystem",
}
#: Volumes and env vars the operator's wiring depends on.
PROTECTED_VOLUMES = frozenset({"config", "llm-key"})
#: Lists of objects merged by a key instead of appended (field name -> key).
KEYED_LISTS = {"env": "name", "volumes": "name", "imagePullSecrets": "name",
               "volumeMounts": "mountPath", "containers": "name"}
#: Of those, the ones whose objects are merged (the rest replace the earlier object).
DEEP_MERGED = frozenset({"containers"})


class OverrideError(ValueError):
    """A refused override; ``field`` is its path under ``spec.podTemplate``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _walk(node: Any, path: str) -> list[tuple[str, str]]:
    """Every (path, key) of a map under ``node``."""
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((f"{path}.{key}", key))
            out += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _walk(value, f"{path}[{i}]")
    return out


def check(pod_template: dict[str, Any] | None, *, containers: set[str],
          reserved_labels: set[str], reserved_env: set[str],
          path: str = "spec.podTemplate") -> None:
    """Refuse (:class:`OverrideError`) an override that would undo the hardening or the
    operator's wiring. ``containers``: the pod's container names; ``reserved_labels`` and
    ``reserved_env``: the labels and env vars the operator sets and relies on."""
    for where, key in _walk(pod_template, path):
        if key in HARDENING:
            raise OverrideError(where, f"refused: {HARDENING[key]}")
    # Shapes are the schema's business (the spec model names a wrong type); only maps and
    # lists of maps are looked into here.
    for key in _dict(_dict(pod_template).get("metadata")).get("labels") or {}:
        if key in reserved_labels:
            raise OverrideError(f"{path}.metadata.labels[{key}]", "refused: the operator sets "
                                "this label (it finds the Job's pods by it)")
    spec = _dict(_dict(pod_template).get("spec"))
    for i, volume in _items(spec.get("volumes")):
        if volume.get("name") in PROTECTED_VOLUMES:
            raise OverrideError(f"{path}.spec.volumes[{i}].name", f"refused: "
                                f"{volume['name']!r} is the operator's volume")
    for i, container in _items(spec.get("containers")):
        if container.get("name") not in containers:
            raise OverrideError(f"{path}.spec.containers[{i}].name", f"no container "
                                f"{container.get('name')!r} in the pod; its containers: "
                                f"{', '.join(sorted(containers))}")
    for where, var in env_vars(spec, f"{path}.spec"):
        if var.get("name") in reserved_env:
            raise OverrideError(f"{where}.name", f"refused: the operator sets {var['name']} "
                                "(the stage reports through it)")


def _dict(node: Any) -> dict[str, Any]:
    return node if isinstance(node, dict) else {}


def _items(node: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, v) for i, v in enumerate(node) if isinstance(v, dict)] if isinstance(
        node, list) else []


def env_vars(spec: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every env var of every container of a pod spec (or its override): (its path, the
    var). ``path`` is the spec's own path, e.g. ``spec.podTemplate.spec``."""
    return [(f"{path}.containers[{c}].env[{j}]", var)
            for c, container in _items(_dict(spec).get("containers"))
            for j, var in _items(container.get("env"))]


def secret_refs(spec: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """Every Secret whose data a pod spec (or its override) brings into the pod, as (the
    referencing field's path, the Secret's name): ``secret`` volumes, env
    ``valueFrom.secretKeyRef`` and ``envFrom[].secretRef``. (``imagePullSecrets`` reach only
    the kubelet, never the pod.)"""
    spec = _dict(spec)
    out = [(f"{path}.volumes[{i}].secret", str(_dict(v["secret"]).get("secretName", "")))
           for i, v in _items(spec.get("volumes")) if "secret" in v]
    for where, var in env_vars(spec, path):
        ref = _dict(var.get("valueFrom")).get("secretKeyRef")
        if ref is not None:
            out.append((f"{where}.valueFrom.secretKeyRef", str(_dict(ref).get("name", ""))))
    for c, container in _items(spec.get("containers")):
        for j, source in _items(container.get("envFrom")):
            if "secretRef" in source:
                out.append((f"{path}.containers[{c}].envFrom[{j}].secretRef",
                            str(_dict(source["secretRef"]).get("name", ""))))
    return out


def _merge_list(base: list[Any], over: list[Any], field: str | None) -> list[Any]:
    key = KEYED_LISTS.get(field or "")
    out = copy.deepcopy(base)
    for item in over:
        at = next((i for i, old in enumerate(out) if key and isinstance(old, dict)
                   and isinstance(item, dict) and old.get(key) == item.get(key)), None)
        if at is None:
            if item not in out:  # the same toleration twice is one toleration
                out.append(copy.deepcopy(item))
        elif field in DEEP_MERGED:
            out[at] = merge(out[at], item)
        else:
            out[at] = copy.deepcopy(item)
    return out


def merge(base: Any, over: Any, field: str | None = None) -> Any:
    """``over`` merged onto ``base``: maps merged, lists appended (named objects replaced),
    scalars replaced; neither argument is changed.

    >>> merge({"a": {"x": 1}, "l": [1]}, {"a": {"y": 2}, "l": [2], "s": "v"})
    {'a': {'x': 1, 'y': 2}, 'l': [1, 2], 's': 'v'}
    >>> merge({"env": [{"name": "A", "value": "1"}]}, {"env": [{"name": "A", "value": "2"}]})
    {'env': [{'name': 'A', 'value': '2'}]}
    """
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value, key) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(over, list):
        return _merge_list(base, over, field)
    return copy.deepcopy(over)


def pod_template(base: dict[str, Any], *layers: dict[str, Any] | None) -> dict[str, Any]:
    """The pod template ``base`` (``{"metadata": …, "spec": …}``) with each layer (same shape,
    ``None`` skipped) merged over it in order; raises :class:`OverrideError` if the result is
    not hardened (:func:`hardening_violations`)."""
    out = copy.deepcopy(base)
    for layer in layers:
        if layer:
            out = merge(out, layer)
    problems = hardening_violations(out)
    if problems:
        raise OverrideError("spec.podTemplate", "; ".join(problems))
    return out


def hardening_violations(template: dict[str, Any]) -> list[str]:
    """What in a merged pod template breaks the hardening (an empty list: none)."""
    spec = template.get("spec") or {}
    out = [f"spec.{k} is set" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if spec.get("automountServiceAccountToken") is not False:
        out.append("spec.automountServiceAccountToken is not false")
    if (spec.get("securityContext") or {}).get("runAsNonRoot") is not True:
        out.append("spec.securityContext.runAsNonRoot is not true")
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            out.append(f"volume {v.get('name')!r} is a hostPath")
    for c in spec.get("containers") or []:
        sc = c.get("securityContext") or {}
        if sc.get("privileged") or sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"container {c.get('name')!r} may escalate privileges")
        if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is not True:
            out.append(f"container {c.get('name')!r} may run as root")
    return out
