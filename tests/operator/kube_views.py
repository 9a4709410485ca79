"""What the emulator shows clients beyond stored objects: selectors, tables, OpenAPI stubs.

Pure functions over plain dicts, used by :mod:`kube_emulator`:

- :func:`labels_match` / :func:`fields_match`: ``labelSelector`` (``a=b``, ``a!=b``, ``a``,
  ``!a``) and ``fieldSelector`` (``metadata.name=x``, ``involvedObject.name==x``,
  ``status.phase!=Running``: any dotted path, compared as strings, like the API server
  does for the fields it indexes);
- :func:`table`: a ``meta.k8s.io/v1`` Table for ``kubectl get`` (NAME, the CRD's
  ``additionalPrinterColumns`` or a few built-in columns, AGE);
- :func:`openapi_root` / :func:`openapi_group`: just enough OpenAPI v3 for ``kubectl`` to
  see that every PATCH accepts ``fieldValidation``, so a plain ``kubectl apply -f`` sends
  ``fieldValidation=Strict`` and leaves validation to the server (the emulator validates
  custom resources against their CRD schema) instead of asking for ``--validate=false``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def labels_match(obj: dict[str, Any], selector: str | None) -> bool:
    """Whether the object's labels satisfy an equality-based ``labelSelector``."""
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def fields_match(obj: dict[str, Any], selector: str | None) -> bool:
    """Whether the object satisfies a ``fieldSelector`` (``path=value``, ``path!=value``)."""
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            path, value = term.split("!=", 1)
            if _field(obj, path) == value:
                return False
        else:
            path, value = term.replace("==", "=").split("=", 1)
            if _field(obj, path) != value:
                return False
    return True


def age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    """``kubectl``'s short age (``42s``, ``3m5s``, ``17m``, ``2h10m``, ``5h``, ``3d``)."""
    if not timestamp:
        return "<unknown>"
    then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    s = max(0, int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    return f"{h}h" if h < 48 else f"{h // 24}d"


def _json_path(obj: dict[str, Any], path: str) -> Any:
    """The value at a simple ``.a.b`` JSONPath (what printer columns use), or None."""
    node: Any = obj
    for part in path.strip().lstrip(".").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _job_status(job: dict[str, Any]) -> str:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
            return c["type"]
    return "Running"


def _pod_ready(pod: dict[str, Any]) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _pod_status(pod: dict[str, Any]) -> str:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state = cs.get("state") or {}
        reason = (state.get("waiting") or {}).get("reason") or (
            state.get("terminated") or {}).get("reason")
        if reason:
            return str(reason)
    return str((pod.get("status") or {}).get("phase") or "Pending")


#: Built-in columns between NAME and AGE: (header, type, how to compute the cell).
BUILTIN_COLUMNS: dict[str, list[tuple[str, str, Any]]] = {
    "pods": [("Ready", "string", _pod_ready), ("Status", "string", _pod_status),
             ("Restarts", "integer", lambda p: sum(
                 int(c.get("restartCount", 0))
                 for c in (p.get("status") or {}).get("containerStatuses") or []))],
    "jobs": [("Status", "string", _job_status),
             ("Completions", "string", lambda j: f"{(j.get('status') or {}).get('succeeded', 0)}"
              f"/{(j.get('spec') or {}).get('completions', 1)}")],
    "deployments": [("Ready", "string", lambda d: "{}/{}".format(
        (d.get("status") or {}).get("readyReplicas", 0), (d.get("spec") or {}).get("replicas", 1))),
        ("Up-to-date", "integer", lambda d: (d.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", "integer", lambda d: (d.get("status") or {}).get("availableReplicas", 0))],
    "events": [("Type", "string", lambda e: e.get("type", "")),
               ("Reason", "string", lambda e: e.get("reason", "")),
               ("Object", "string", lambda e: "{}/{}".format(
                   str((e.get("involvedObject") or {}).get("kind", "")).lower(),
                   (e.get("involvedObject") or {}).get("name", ""))),
               ("Message", "string", lambda e: e.get("message", ""))],
}


def _printer_cell(column: dict[str, Any]) -> Any:
    """The cell function of a CRD printer column (``date`` columns show an age)."""
    path, kind = column["jsonPath"], column.get("type")

    def cell(obj: dict[str, Any]) -> Any:
        value = _json_path(obj, path)
        return age(value) if kind == "date" and value else value
    return cell


def table(plural: str, objects: list[dict[str, Any]], printer_columns: list[dict[str, Any]],
          resource_version: str, include_object: str = "Metadata") -> dict[str, Any]:
    """A Table as the API server returns it for ``Accept: …;as=Table;g=meta.k8s.io``."""
    columns = [(col["name"], col.get("type", "string"), _printer_cell(col))
               for col in printer_columns if col.get("priority", 0) == 0
               and col.get("jsonPath") != ".metadata.creationTimestamp"]
    columns += BUILTIN_COLUMNS.get(plural, [])
    definitions = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                    "description": "Name of the object"}]
    definitions += [{"name": n, "type": t, "format": "", "priority": 0, "description": n}
                    for n, t, _ in columns]
    definitions.append({"name": "Age", "type": "string", "format": "", "priority": 0,
                        "description": "Time since creation"})
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        cells: list[Any] = [meta.get("name", "")]
        for _, _, cell in columns:
            value = cell(obj)
            cells.append("<none>" if value is None else value)
        cells.append(age(meta.get("creationTimestamp")))
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": meta}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_root(group_versions: list[tuple[str, str]]) -> dict[str, Any]:
    """``/openapi/v3``: one entry per served group/version."""
    return {"paths": {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}"}
                      for g, v in sorted(set(group_versions))}}


def openapi_group(group: str, version: str, kinds: list[tuple[str, str, bool]]
                  ) -> dict[str, Any]:
    """``/openapi/v3/apis/G/V``: a PATCH operation per kind that takes ``fieldValidation``.

    ``kinds`` holds (plural, kind, namespaced). Only what ``kubectl``'s query-parameter check
    reads is here (no schemas: client-side validation is never needed).
    """
    param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
             "description": "Ignore, Warn or Strict"}
    paths: dict[str, Any] = {}
    for plural, kind, namespaced in kinds:
        base = f"/{_gv_path(group, version)}/"
        base += f"namespaces/{{namespace}}/{plural}/{{name}}" if namespaced else (
            f"{plural}/{{name}}")
        gvk = {"group": group, "version": version, "kind": kind}
        paths[base] = {"patch": {
            "operationId": f"patch{kind}", "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk, "parameters": [param],
            "requestBody": {"content": {"application/merge-patch+json": {
                "schema": {"type": "object"}}}},
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (emulated)", "version": "v1.37.0"},
            "paths": paths}
