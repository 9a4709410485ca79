"""An in-memory Kubernetes API server for the operator tests, built on ``kmock``.

No kube-apiserver, kind or envtest can run on the development machines, so the real Kopf
operator talks HTTP to this emulator instead. kmock 0.8 gives the HTTP server, request
parsing (resource, namespace, name, subresource, action), API discovery and Kubernetes-style
error bodies; this subclass replaces its object store with one that has the fidelity a Kopf
operator relies on (each gap was seen failing against plain kmock):

- ``uid``, ``creationTimestamp``, ``generation`` (bumped when anything but metadata/status
  changes), one global ``resourceVersion`` bumped on every write;
- namespace taken from the URL; ``generateName``; 409 ``AlreadyExists``; 404 ``NotFound``;
- lists carry ``kind``/``apiVersion``/``resourceVersion`` and honour ``labelSelector``;
- watch honours ``resourceVersion`` (replays later events only) and ``timeoutSeconds``;
- the ``status`` subresource is split from the main resource both ways;
- merge patch (RFC 7386), JSON patch (RFC 6902) with ``test`` failing as 422;
- deletion with finalizers (``deletionTimestamp``), then garbage collection of dependents
  through ``ownerReferences`` (the real controller-manager's job);
- custom resources are validated against their CRD schema (422 ``Invalid``), like the API
  server with ``kubectl``'s strict field validation;
- core-group discovery answers ``groupVersion: v1`` (kmock says ``/v1``), with short names
  and categories (``kubectl get gr``);
- what the real ``kubectl`` (1.37) sends: ``fieldSelector`` on list and watch, watch-list
  (``sendInitialEvents=true`` ends the initial ADDED events with the
  ``k8s.io/initial-events-end`` BOOKMARK ``kubectl wait`` waits for), PUT (replace, 409 on a
  stale ``resourceVersion``), a ``resourceVersion`` in a patch as precondition, strategic
  merge patches applied as merge patches (approximation: lists are replaced, not merged by
  key), ``propagationPolicy: Orphan`` and ``Foreground`` (the owner keeps a
  ``foregroundDeletion`` finalizer until its ``blockOwnerDeletion`` dependents are gone),
  Tables for ``kubectl get`` and an OpenAPI v3 stub so a plain ``kubectl apply -f``
  validates server-side (see :mod:`kube_views`);
- the API server's defaulting of Job selectors/labels, Secrets' ``stringData``, and (with
  ``admission=True``) the ServiceAccount and ResourceQuota admission checks on pods
  (:mod:`kube_admission`); pod logs from files a kubelet registers in ``pod_logs``.

Tests may inject faults: :meth:`KubeEmulator.fail_next` answers the next matching requests
with an error status, :meth:`KubeEmulator.hold` parks matching requests until released.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp.web
import attrs
import jsonschema
import kmock
import kube_protobuf
from kmock._internal import k8s as kmock_k8s
from kmock._internal import parsing, rendering
from kube_admission import check_pod
from kube_views import fields_match, labels_match, openapi_group, openapi_root, table, wants_table

Key = tuple[str, str | None, str]  # (resource "group/version/plural", namespace, name)
#: The finalizer the API server puts on an object deleted with ``propagationPolicy: Foreground``.
FOREGROUND = "foregroundDeletion"


@attrs.define(kw_only=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a status subresource
    schema: dict[str, Any] | None = None  # JSON schema of the whole object (custom resources)
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = ()
    scale: bool = False  # has a scale subresource (``kubectl scale``)

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}" if self.group else (
            f"{self.version}/{self.plural}")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


BUILTIN = [
    Resource(group="", version="v1", plural="pods", kind="Pod", status=True,
             short_names=("po",), categories=("all",)),
    Resource(group="", version="v1", plural="configmaps", kind="ConfigMap", short_names=("cm",)),
    Resource(group="", version="v1", plural="secrets", kind="Secret"),
    Resource(group="", version="v1", plural="serviceaccounts", kind="ServiceAccount",
             short_names=("sa",)),
    Resource(group="", version="v1", plural="resourcequotas", kind="ResourceQuota",
             status=True, short_names=("quota",)),
    Resource(group="", version="v1", plural="services", kind="Service", status=True,
             short_names=("svc",), categories=("all",)),
    Resource(group="", version="v1", plural="events", kind="Event", short_names=("ev",)),
    Resource(group="", version="v1", plural="namespaces", kind="Namespace", namespaced=False,
             status=True, short_names=("ns",)),
    Resource(group="", version="v1", plural="persistentvolumeclaims",
             kind="PersistentVolumeClaim", status=True, short_names=("pvc",)),
    Resource(group="batch", version="v1", plural="jobs", kind="Job", status=True,
             categories=("all",)),
    Resource(group="apps", version="v1", plural="deployments", kind="Deployment", status=True,
             short_names=("deploy",), categories=("all",), scale=True),
    Resource(group="networking.k8s.io", version="v1", plural="networkpolicies",
             kind="NetworkPolicy", short_names=("netpol",)),
    Resource(group="rbac.authorization.k8s.io", version="v1", plural="roles", kind="Role"),
    Resource(group="rbac.authorization.k8s.io", version="v1", plural="rolebindings",
             kind="RoleBinding"),
    Resource(group="rbac.authorization.k8s.io", version="v1", plural="clusterroles",
             kind="ClusterRole", namespaced=False),
    Resource(group="rbac.authorization.k8s.io", version="v1", plural="clusterrolebindings",
             kind="ClusterRoleBinding", namespaced=False),
    Resource(group="apiextensions.k8s.io", version="v1", plural="customresourcedefinitions",
             kind="CustomResourceDefinition", namespaced=False, status=True,
             short_names=("crd", "crds")),
]


class ApiError(kmock_k8s.KubernetesError):
    pass


def _error(status: int, reason: str, message: str) -> ApiError:
    return ApiError(status=status, reason=reason, message=message, details={})


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 add/remove/replace/test; a failed ``test`` or bad path raises ApiError 422."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op["path"])
        parent: Any = doc
        try:
            for p in parts[:-1]:
                parent = parent[int(p)] if isinstance(parent, list) else parent[p]
            leaf = parts[-1] if parts else None
            kind = op["op"]
            if kind == "test":
                current = (parent[int(leaf)] if isinstance(parent, list) else parent[leaf])
                if current != op.get("value"):
                    raise _error(422, "Invalid", f"the test at {op['path']} failed")
            elif kind == "remove":
                del parent[int(leaf) if isinstance(parent, list) else leaf]
            elif kind in ("add", "replace"):
                if isinstance(parent, list):
                    idx = len(parent) if leaf == "-" else int(leaf)
                    if kind == "add":
                        parent.insert(idx, op["value"])
                    else:
                        parent[idx] = op["value"]
                else:
                    if kind == "replace" and leaf not in parent:
                        raise _error(422, "Invalid", f"replace at missing path {op['path']}")
                    parent[leaf] = op["value"]
            else:
                raise _error(422, "Invalid", f"unsupported op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise _error(422, "Invalid", f"patch path {op.get('path')!r}: {e!r}") from e
    return doc


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """The emulator: a kmock server whose object store behaves like an API server's."""

    store: dict[Key, dict[str, Any]] = attrs.field(factory=dict, init=False)
    history: list[tuple[int, str, dict[str, Any]]] = attrs.field(factory=list, init=False)
    rv: int = attrs.field(default=100, init=False)
    kinds: dict[str, Resource] = attrs.field(factory=dict, init=False)
    _tick: asyncio.Event | None = attrs.field(default=None, init=False)
    _faults: list[tuple[Callable[[kmock.Request], bool], int, int]] = attrs.field(
        factory=list, init=False)
    _holds: list[tuple[Callable[[kmock.Request], bool], asyncio.Event]] = attrs.field(
        factory=list, init=False)
    log: list[tuple[str, str]] = attrs.field(factory=list, init=False)
    closing: bool = attrs.field(default=False, init=False)
    #: ServiceAccount and ResourceQuota admission of pods (see :mod:`kube_admission`).
    admission: bool = False
    _orphans: set[str] = attrs.field(factory=set, init=False)
    #: (namespace, pod name) -> the file holding that pod's log (written by a kubelet).
    pod_logs: dict[tuple[str, str], Any] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for res in BUILTIN:
            self.declare(res)

    # ---------------------------------------------------------------- declarations
    def declare(self, res: Resource) -> None:
        self.kinds[res.key] = res
        subresources = {"status"} if res.status else set()
        if res.plural == "pods":
            subresources.add("log")
        if res.scale:
            subresources.add("scale")
        self.resources[res.key] = kmock.ResourceInfo(
            kind=res.kind, namespaced=res.namespaced, singular=res.kind.lower(),
            verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
            shortnames=set(res.short_names), categories=set(res.categories),
            subresources=subresources)

    def install_crd(self, crd: dict[str, Any], validate: bool = True) -> None:
        """Store a CRD and serve its kind (validating objects against its schema)."""
        self._write_create(self.kinds["apiextensions.k8s.io/v1/customresourcedefinitions"],
                           None, copy.deepcopy(crd), validate_crs=validate)

    def _serve_crd(self, crd: dict[str, Any], validate: bool = True) -> None:
        """Serve the kind a stored CRD defines (what the API server does once Established)."""
        from zhufu.operator.crds import to_jsonschema

        spec = crd["spec"]
        version = spec["versions"][0]
        schema = to_jsonschema(version["schema"]["openAPIV3Schema"]) if validate else None
        if schema is not None:
            schema["properties"]["metadata"] = {"type": "object"}
        names = spec["names"]
        self.declare(Resource(group=spec["group"], version=version["name"],
                              plural=names["plural"], kind=names["kind"],
                              status="status" in version.get("subresources", {}),
                              schema=schema, short_names=tuple(names.get("shortNames", ())),
                              categories=tuple(names.get("categories", ())),
                              printer_columns=tuple(version.get("additionalPrinterColumns",
                                                                ()))))

    async def changed(self, timeout: float) -> None:
        """Return at the next write to the store, or after ``timeout`` seconds."""
        if self._tick is None:
            self._tick = asyncio.Event()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races
        # its timeout, and a loop cancelled in here would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._tick.wait()

    # ---------------------------------------------------------------- fault injection
    def fail_next(self, match: Callable[[kmock.Request], bool], status: int = 500,
                  times: int = 1) -> None:
        """Answer the next ``times`` requests that ``match`` with ``status`` (no effect)."""
        self._faults.append((match, status, times))

    def hold(self, match: Callable[[kmock.Request], bool]) -> asyncio.Event:
        """Park matching requests until the returned event is set (then serve them)."""
        event = asyncio.Event()
        self._holds.append((match, event))
        return event

    # ---------------------------------------------------------------- store helpers
    def _resource(self, request: kmock.Request) -> Resource:
        r = request.resource
        key = f"{r.group}/{r.version}/{r.plural}" if r.group else f"{r.version}/{r.plural}"
        if key not in self.kinds:
            raise _error(404, "NotFound", f"the server could not find the resource {key}")
        return self.kinds[key]

    def _bump(self, res: Resource, etype: str, obj: dict[str, Any]) -> None:
        self.history.append((self.rv, res.key, {"type": etype, "object": copy.deepcopy(obj)}))
        self.notify()

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _validate(self, res: Resource, obj: dict[str, Any]) -> None:
        if res.schema is None:
            return
        body = {k: v for k, v in obj.items() if k != "metadata"}
        errors = sorted(jsonschema.Draft4Validator(res.schema).iter_errors(body),
                        key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.absolute_path) or "(root)"
            raise _error(422, "Invalid", f"{res.kind}.{res.group} is invalid: {where}: "
                         f"{e.message}")

    def _write_create(self, res: Resource, namespace: str | None, obj: dict[str, Any],
                      validate_crs: bool = True) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _error(422, "Invalid", "metadata.name or generateName is required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        key = (res.key, meta.get("namespace"), meta["name"])
        if key in self.store:
            raise _error(409, "AlreadyExists",
                         f'{res.plural} "{meta["name"]}" already exists')
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        if res.status:
            obj.pop("status", None)
        self._validate(res, obj)
        uid = str(uuid.uuid4())
        self._default(res, obj, uid)
        if res.plural == "pods" and self.admission:
            self._admit_pod(obj, meta.get("generateName") or meta["name"])
        meta.update(uid=uid, creationTimestamp=_now(), generation=1,
                    resourceVersion=self._next_rv())
        if res.plural == "customresourcedefinitions":
            self._serve_crd(obj, validate_crs)
            obj["status"] = {"conditions": [
                {"type": t, "status": "True", "reason": t, "lastTransitionTime": _now()}
                for t in ("NamesAccepted", "Established")],
                "acceptedNames": obj["spec"]["names"]}
        self.store[key] = obj
        self._bump(res, "ADDED", obj)
        return obj

    def _default(self, res: Resource, obj: dict[str, Any], uid: str) -> None:
        """What the API server fills in: Secret ``stringData``, a Job's selector and labels."""
        if res.plural == "secrets" and not obj.get("type"):
            obj["type"] = "Opaque"
        if res.plural == "secrets" and obj.get("stringData"):
            data = dict(obj.get("data") or {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj["data"] = data
        if res.plural == "jobs":
            spec = obj.setdefault("spec", {})
            name = obj["metadata"]["name"]
            spec.setdefault("selector", {"matchLabels": {
                "batch.kubernetes.io/controller-uid": uid}})
            template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
            template_meta["labels"] = {
                **(template_meta.get("labels") or {}),
                "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                "batch.kubernetes.io/job-name": name, "job-name": name}
            # with a per-index limit the Job-wide one defaults to "never" (MaxInt32)
            backoff = 2147483647 if "backoffLimitPerIndex" in spec else 6
            for field, default in (("completions", 1), ("parallelism", 1),
                                   ("backoffLimit", backoff), ("completionMode", "NonIndexed"),
                                   ("suspend", False)):
                spec.setdefault(field, default)

    def _admit_pod(self, pod: dict[str, Any], shown_name: str) -> None:
        ns = pod["metadata"]["namespace"]
        accounts = {n for (k, n_ns, n) in self.store if k == "v1/serviceaccounts"
                    and n_ns == ns}
        quotas = [o for (k, n_ns, _), o in self.store.items()
                  if k == "v1/resourcequotas" and n_ns == ns]
        pods = [o for (k, n_ns, _), o in self.store.items() if k == "v1/pods" and n_ns == ns]
        why = check_pod(pod, accounts, quotas, pods)
        if why:
            raise _error(403, "Forbidden", f'pods "{shown_name}" is forbidden: {why}')

    def _write_patch(self, res: Resource, key: Key, data: Any, ctype: str,
                     subresource: str | None) -> dict[str, Any]:
        """PATCH: JSON patch, or merge patch (also for strategic merge, an approximation)."""
        if key not in self.store:
            raise _error(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        old = self.store[key]
        if "json-patch" in ctype:
            new = json_patch(old, data if isinstance(data, list) else [])
        elif "apply-patch" in ctype:
            raise _error(415, "UnsupportedMediaType", "server-side apply is not emulated; "
                         "use client-side kubectl apply")
        else:
            wanted = ((data or {}).get("metadata") or {}).get("resourceVersion") if isinstance(
                data, dict) else None
            if wanted and wanted != old["metadata"].get("resourceVersion"):
                raise self._conflict(res, key)
            new = merge_patch(old, data)
        return self._commit(res, key, new, subresource)

    def _write_replace(self, res: Resource, key: Key, data: Any, subresource: str | None
                       ) -> dict[str, Any]:
        """PUT: the whole object; a stale ``metadata.resourceVersion`` answers 409."""
        if key not in self.store:
            raise _error(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        if not isinstance(data, dict):
            raise _error(400, "BadRequest", "the body of a PUT must be an object")
        if ((data.get("metadata") or {}).get("name")) not in (None, key[2]):
            raise _error(400, "BadRequest", "the name in the body does not match the URL")
        wanted = (data.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != self.store[key]["metadata"].get("resourceVersion"):
            raise self._conflict(res, key)
        new = copy.deepcopy(data)
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        return self._commit(res, key, new, subresource)

    def _conflict(self, res: Resource, key: Key) -> ApiError:
        return _error(409, "Conflict", f'Operation cannot be fulfilled on {res.plural}'
                      f'{"." + res.group if res.group else ""} "{key[2]}": the object has been '
                      "modified; please apply your changes to the latest version and try again")

    def _commit(self, res: Resource, key: Key, new: dict[str, Any], subresource: str | None
                ) -> dict[str, Any]:
        """Store an update: status split, immutable metadata kept, generation and RV bumped."""
        old = self.store[key]
        if subresource == "status":
            new = {**old, "status": new.get("status", {})}
        elif res.status:
            new = {**new, "status": old.get("status")}
            if new["status"] is None:
                new.pop("status")
        new["metadata"] = {**new.get("metadata", {}),
                           **{k: old["metadata"][k] for k in ("uid", "creationTimestamp",
                                                               "name", "generation")
                              if k in old["metadata"]}}
        new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
        if old["metadata"].get("namespace"):
            new["metadata"]["namespace"] = old["metadata"]["namespace"]
        if old["metadata"].get("deletionTimestamp"):
            new["metadata"]["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
        self._validate(res, new)
        spec_changed = any(new.get(k) != old.get(k) for k in set(new) | set(old)
                           if k not in ("metadata", "status"))
        if spec_changed:
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if new == old:
            return old
        new["metadata"]["resourceVersion"] = self._next_rv()
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._remove(res, key, new)
        self.store[key] = new
        self._bump(res, "MODIFIED", new)
        return new

    def _remove(self, res: Resource, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        del self.store[key]
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._bump(res, "DELETED", obj)
        if obj["metadata"]["uid"] not in self._orphans:
            self._collect_garbage(obj["metadata"]["uid"])
        for ref in obj["metadata"].get("ownerReferences") or []:
            self._finish_foreground(ref.get("uid", ""))
        return obj

    def _finish_foreground(self, owner_uid: str) -> None:
        """The GC's last step of a foreground deletion: once no dependent with
        ``blockOwnerDeletion`` names the owner, drop its ``foregroundDeletion`` finalizer."""
        owner = next(((k, o) for k, o in self.store.items()
                      if o["metadata"].get("uid") == owner_uid
                      and FOREGROUND in (o["metadata"].get("finalizers") or [])), None)
        if owner is None:
            return
        for obj in self.store.values():
            if any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion")
                   for r in obj["metadata"].get("ownerReferences") or []):
                return
        key, obj = owner
        obj = copy.deepcopy(obj)
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"]
                                         if f != FOREGROUND]
        if obj["metadata"]["finalizers"]:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self.store[key] = obj
            self._bump(self.kinds[key[0]], "MODIFIED", obj)
        else:
            obj["metadata"].pop("finalizers")
            self._remove(self.kinds[key[0]], key, obj)

    def _write_delete(self, res: Resource, key: Key, orphan: bool = False,
                      grace: int | None = None, foreground: bool = False) -> dict[str, Any]:
        """DELETE; ``orphan`` (``propagationPolicy: Orphan``) leaves dependents alone;
        ``foreground`` deletes them first, the object going last; a pod gets ``grace`` (else
        its ``terminationGracePeriodSeconds``, 30) to stop."""
        if key not in self.store:
            raise _error(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        obj = copy.deepcopy(self.store[key])
        meta = obj["metadata"]
        if orphan:
            self._orphans.add(meta["uid"])
        if foreground and not meta.get("deletionTimestamp"):
            meta["finalizers"] = [*(meta.get("finalizers") or []), FOREGROUND]
            meta["deletionTimestamp"] = _now()
            meta["deletionGracePeriodSeconds"] = 0
            meta["resourceVersion"] = self._next_rv()
            self.store[key] = obj
            self._bump(res, "MODIFIED", obj)
            self._collect_garbage(meta["uid"])
            self._finish_foreground(meta["uid"])
            return copy.deepcopy(self.store.get(key, obj))
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = _now()
                meta["deletionGracePeriodSeconds"] = (
                    grace if grace is not None else int(
                        (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
                    if res.plural == "pods" else 0)
                meta["resourceVersion"] = self._next_rv()
                self.store[key] = obj
                self._bump(res, "MODIFIED", obj)
            return obj
        return self._remove(res, key, obj)

    def _collect_garbage(self, owner_uid: str) -> None:
        """Delete dependents whose ownerReferences name ``owner_uid`` (the GC's job)."""
        for key, obj in list(self.store.items()):
            refs = (obj.get("metadata") or {}).get("ownerReferences") or []
            if key in self.store and any(r.get("uid") == owner_uid for r in refs):
                self._write_delete(self.kinds[key[0]], key)

    # ---------------------------------------------------------------- public in-process API
    def objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a resource (plural like ``jobs`` or ``grporuns``)."""
        return [copy.deepcopy(o) for (k, ns, _), o in self.store.items()
                if k.rsplit("/", 1)[-1] == plural and (namespace is None or ns == namespace)]

    def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        for (k, ns, n), o in self.store.items():
            if k.rsplit("/", 1)[-1] == plural and ns == namespace and n == name:
                return copy.deepcopy(o)
        return None

    def _res_by_plural(self, plural: str) -> Resource:
        for res in self.kinds.values():
            if res.plural == plural:
                return res
        raise KeyError(plural)

    def create(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object in-process (as kubectl would over HTTP); raises ApiError."""
        res = self._res_by_plural(plural)
        out = self._write_create(res, obj.get("metadata", {}).get("namespace"),
                                 copy.deepcopy(obj))
        return copy.deepcopy(out)

    def patch(self, plural: str, namespace: str | None, name: str, body: dict[str, Any],
              status: bool = False) -> dict[str, Any]:
        """Merge-patch an object (``status=True``: its status subresource) in-process."""
        res = self._res_by_plural(plural)
        return copy.deepcopy(self._write_patch(res, (res.key, namespace, name), body,
                                               "application/merge-patch+json",
                                               "status" if status else None))

    def delete(self, plural: str, namespace: str | None, name: str,
               propagation: str = "Background") -> None:
        """Delete an object in-process (``propagation``: as the DELETE body's policy)."""
        res = self._res_by_plural(plural)
        self._write_delete(res, (res.key, namespace, name), orphan=propagation == "Orphan",
                           foreground=propagation == "Foreground")

    def close_watches(self) -> None:
        """End every watch stream (before the server stops, so it need not wait for them)."""
        self.closing = True
        self.notify()

    def notify(self) -> None:
        """Wake every watch stream (a fresh event per write: waiters hold the old one)."""
        if self._tick is not None:
            self._tick.set()
        self._tick = asyncio.Event()

    # ---------------------------------------------------------------- HTTP
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        parts = raw_request.path.strip("/").split("/")
        if parts[0] == "openapi":
            return self._serve_openapi(parts)
        protobuf = raw_request.headers.get("Content-Type", "").startswith(
            kube_protobuf.CONTENT_TYPE)
        # kmock 0.8 cannot parse the cluster-scoped /api/v1/namespaces[/NAME] (it reads
        # "namespaces" as the namespace prefix and crashes), nor protobuf bodies (typed
        # clients: kubectl create, helm): build those requests ourselves.
        namespaces = parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4
        if not (namespaces or protobuf):
            return await super().__call__(raw_request)
        try:
            request = await self._request(raw_request, namespaces, protobuf)
        except ValueError as e:
            return await self._render_error(_error(415, "UnsupportedMediaType", str(e)))
        self._requests.append(request)
        try:
            return await self._handle(request)
        except Exception as e:  # noqa: BLE001 - rendered as a Kubernetes Status, like kmock
            return await self._render_error(e)

    async def _request(self, raw: aiohttp.web.BaseRequest, namespaces: bool, protobuf: bool
                       ) -> kmock.Request:
        """A kmock request for what kmock cannot parse (namespaces; protobuf bodies)."""
        body = await raw.read()
        data = kube_protobuf.decode(body) if protobuf and body else (
            json.loads(body) if body else None)
        method = kmock.method(raw.method)
        if namespaces:
            parts = raw.path.strip("/").split("/")
            path = parsing.ParsedPath("", "v1", "namespaces", None,
                                      parts[3] if len(parts) == 4 else None, None)
        else:
            path = parsing.parse_path(raw.path)
        action = parsing.guess_k8s(path, method, dict(raw.query))
        return kmock.Request(
            id=len(self._requests), raw_request=raw, url=raw.url, method=raw.method,
            params=dict(raw.query), headers=dict(raw.headers), body=body,
            text=json.dumps(data) if data is not None else "", data=data, action=action,
            resource=kmock.resource(group=path.group, version=path.version,
                                    plural=path.plural),
            namespace=path.namespace, name=path.name, subresource=path.subresource)

    def _serve_openapi(self, parts: list[str]) -> aiohttp.web.Response:
        """``/openapi/v3[/api/v1 | /apis/G/V]`` (see :func:`kube_views.openapi_group`)."""
        gvs = [(r.group, r.version) for r in self.kinds.values()]
        if parts[1:2] != ["v3"]:
            return aiohttp.web.json_response({"kind": "Status", "apiVersion": "v1",
                                              "status": "Failure", "code": 404,
                                              "reason": "NotFound"}, status=404)
        if len(parts) == 2:
            return aiohttp.web.json_response(openapi_root(gvs))
        group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4])
        kinds = [(r.plural, r.kind, r.namespaced) for r in self.kinds.values()
                 if (r.group, r.version) == (group, version)]
        return aiohttp.web.json_response(openapi_group(group, version, kinds))

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self._tick is None:
            self._tick = asyncio.Event()
        self.log.append((str(request.method.value).upper(), request.url.path))
        for i, (match, status, times) in enumerate(self._faults):
            if match(request):
                if times <= 1:
                    self._faults.pop(i)
                else:
                    self._faults[i] = (match, status, times - 1)
                raise _error(status, "InjectedFault", f"injected {status} for the test")
        for match, event in list(self._holds):
            if match(request):
                await event.wait()
        if request.resource is None or request.resource.plural is None:
            return await super(kmock_k8s.KubernetesEmulator, self)._handle(request)
        res = self._resource(request)
        ns = request.namespace
        method = str(request.method.value).upper()
        if request.action == kmock.action.WATCH:
            return await self._watch(request, res)
        if res.plural == "pods" and request.subresource == "log":
            return self._serve_log(ns or "default", request.name or "", request.params)
        if res.scale and request.subresource == "scale":
            async with self._lock:
                return aiohttp.web.json_response(self._serve_scale(res, ns, request, method))
        accept = request.headers.get("Accept", "")
        async with self._lock:
            if request.name is None and method == "GET":
                items = self._select(res, ns, request.params)
                if wants_table(accept):
                    return aiohttp.web.json_response(self._table(res, items, request.params))
                body: dict[str, Any] = {"apiVersion": res.api_version, "kind": f"{res.kind}List",
                                        "metadata": {"resourceVersion": str(self.rv)},
                                        "items": items}
            elif request.name is None and method == "POST":
                body = copy.deepcopy(self._write_create(res, ns, dict(request.data or {})))
                return aiohttp.web.json_response(body, status=201)
            elif request.name is not None:
                key = (res.key, ns if res.namespaced else None, request.name)
                if method == "GET":
                    if key not in self.store:
                        raise _error(404, "NotFound", f'{res.plural} "{request.name}" not found')
                    body = copy.deepcopy(self.store[key])
                    if wants_table(accept):
                        body = self._table(res, [body], request.params)
                elif method == "PATCH":
                    body = copy.deepcopy(self._write_patch(
                        res, key, request.data, request.headers.get("Content-Type", ""),
                        request.subresource))
                elif method == "PUT":
                    body = copy.deepcopy(self._write_replace(res, key, request.data,
                                                             request.subresource))
                elif method == "DELETE":
                    policy = (request.data or {}).get("propagationPolicy") or \
                        request.params.get("propagationPolicy")
                    grace = (request.data or {}).get("gracePeriodSeconds",
                                                     request.params.get("gracePeriodSeconds"))
                    body = copy.deepcopy(self._write_delete(
                        res, key, orphan=policy == "Orphan",
                        grace=None if grace is None else int(grace),
                        foreground=policy == "Foreground"))
                else:
                    raise _error(405, "MethodNotAllowed", f"{method} is not emulated")
            else:
                raise _error(405, "MethodNotAllowed", f"{method} is not emulated")
        return aiohttp.web.json_response(body)

    def _serve_scale(self, res: Resource, ns: str | None, request: kmock.Request, method: str
                     ) -> dict[str, Any]:
        """The ``scale`` subresource: an autoscaling/v1 Scale over ``spec.replicas``."""
        key = (res.key, ns, request.name or "")
        if key not in self.store:
            raise _error(404, "NotFound", f'{res.plural} "{request.name}" not found')
        if method in ("PATCH", "PUT"):
            data = request.data or {}
            if isinstance(data, list):  # JSON patch on the Scale
                data = json_patch(self._scale(res, self.store[key]), data)
            replicas = (data.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise _error(422, "Invalid", "spec.replicas: must be a non-negative integer")
            self._write_patch(res, key, {"spec": {"replicas": replicas}},
                              "application/merge-patch+json", None)
        elif method != "GET":
            raise _error(405, "MethodNotAllowed", f"{method} on scale is not emulated")
        return self._scale(res, self.store[key])

    @staticmethod
    def _scale(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                 "creationTimestamp") if k in meta},
            "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
            "status": {"replicas": int((obj.get("status") or {}).get("replicas", 0)),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}

    def _select(self, res: Resource, ns: str | None, params: Any) -> list[dict[str, Any]]:
        """Stored objects of ``res`` in ``ns`` matching the label and field selectors."""
        return [copy.deepcopy(o) for (k, n, _), o in self.store.items()
                if k == res.key and (ns is None or n == ns)
                and labels_match(o, params.get("labelSelector"))
                and fields_match(o, params.get("fieldSelector"))]

    def _table(self, res: Resource, items: list[dict[str, Any]], params: Any) -> dict[str, Any]:
        return table(res.plural, items, list(res.printer_columns), str(self.rv),
                     params.get("includeObject", "Metadata"))

    def _serve_log(self, ns: str, name: str, params: Any) -> aiohttp.web.Response:
        """A pod's log (``kubectl logs``) from the file its kubelet registered."""
        if ("v1/pods", ns, name) not in self.store:
            raise _error(404, "NotFound", f'pods "{name}" not found')
        path = self.pod_logs.get((ns, name))
        text = path.read_text(encoding="utf-8", errors="replace") if path and path.exists() \
            else ""
        if params.get("tailLines"):
            text = "".join(text.splitlines(keepends=True)[-int(params["tailLines"]):])
        return aiohttp.web.Response(text=text, content_type="text/plain")

    async def _watch(self, request: kmock.Request, res: Resource) -> aiohttp.web.StreamResponse:
        """A watch stream; ``sendInitialEvents=true`` ends the replay with a BOOKMARK."""
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(raw)
        ns, params = request.namespace, dict(request.params)
        if request.name:  # the old /…/NAME?watch=true form
            params["fieldSelector"] = ",".join(
                f for f in (params.get("fieldSelector"), f"metadata.name={request.name}") if f)
        timeout = float(params.get("timeoutSeconds") or 3600)
        since = params.get("resourceVersion")
        initial = params.get("sendInitialEvents") == "true"
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._lock:
            if initial or since in (None, "", "0"):
                pending = [{"type": "ADDED", "object": o} for o in self._select(res, ns, params)]
                position = len(self.history)
            else:
                position = next((i for i, (rv, _, _) in enumerate(self.history)
                                 if rv > int(since)), len(self.history))
                pending = []
            if initial:
                pending.append({"type": "BOOKMARK", "object": {
                    "kind": res.kind, "apiVersion": res.api_version, "metadata": {
                        "resourceVersion": str(self.rv),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}})
        try:
            while True:
                for event in pending:
                    obj = event["object"]
                    if event["type"] == "BOOKMARK" or (
                            (ns is None or obj["metadata"].get("namespace") == ns)
                            and labels_match(obj, params.get("labelSelector"))
                            and fields_match(obj, params.get("fieldSelector"))):
                        await response.write(json.dumps(event).encode() + b"\n")
                left = deadline - asyncio.get_running_loop().time()
                transport = raw.transport
                if left <= 0 or self.closing or transport is None or transport.is_closing():
                    break
                if position >= len(self.history):
                    await self.changed(min(left, 1))
                pending = [copy.deepcopy(e) for _, k, e in self.history[position:]
                           if k == res.key]
                position = len(self.history)
        except ConnectionResetError:
            return response
        await response.write_eof()
        return response

    async def _serve_server_version(self, request: rendering.Request) -> rendering.Payload:
        """``/version``: the Kubernetes version whose API (and kubectl) this emulates."""
        return {"major": "1", "minor": "37", "gitVersion": "v1.37.1-zhufu-emulator",
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"}

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_version(request)
        if request.resource is not None and request.resource.group == "":
            payload["groupVersion"] = request.resource.version  # kmock says "/v1"
        for entry in payload.get("resources", []):
            if "/" in entry["name"]:  # subresources have no short names or categories
                entry.update(shortNames=[], categories=[],
                             verbs=["get"] if entry["name"].endswith("/log") else
                             ["get", "patch", "update"])
        return payload
