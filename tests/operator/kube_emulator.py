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
  a watch-list (``sendInitialEvents``) ends its initial events with the bookmark kubectl
  waits for; ``fieldSelector`` on ``metadata.name``/``metadata.namespace``;
- the ``status`` subresource is split from the main resource both ways;
- merge patch (RFC 7386), JSON patch (RFC 6902) with ``test`` failing as 422;
- deletion with finalizers (``deletionTimestamp``), then garbage collection of dependents
  through ``ownerReferences`` (the real controller-manager's job);
- custom resources are validated against their CRD schema (422 ``Invalid``), like the API
  server with ``kubectl``'s strict field validation;
- core-group discovery answers ``groupVersion: v1`` (kmock says ``/v1``), with the CRDs'
  short names and categories (``kubectl get zgr``, ``kubectl get zhufu``).

Tests may inject faults: :meth:`KubeEmulator.fail_next` answers the next matching requests
with an error status, :meth:`KubeEmulator.hold` parks matching requests until released.
"""

from __future__ import annotations

import asyncio
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
from kmock._internal import k8s as kmock_k8s
from kmock._internal import rendering

Key = tuple[str, str | None, str]  # (resource "group/version/plural", namespace, name)


@attrs.define(kw_only=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a status subresource
    schema: dict[str, Any] | None = None  # JSON schema of the whole object (custom resources)
    short_names: tuple[str, ...] = ()  # served in discovery (kubectl get <short name>)
    categories: tuple[str, ...] = ()  # served in discovery (kubectl get <category>)

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}" if self.group else (
            f"{self.version}/{self.plural}")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


BUILTIN = [
    Resource(group="", version="v1", plural="pods", kind="Pod", status=True,
             short_names=("po",)),
    Resource(group="", version="v1", plural="configmaps", kind="ConfigMap",
             short_names=("cm",)),
    Resource(group="", version="v1", plural="services", kind="Service", status=True,
             short_names=("svc",)),
    Resource(group="", version="v1", plural="events", kind="Event", short_names=("ev",)),
    Resource(group="", version="v1", plural="namespaces", kind="Namespace", namespaced=False,
             status=True, short_names=("ns",)),
    Resource(group="batch", version="v1", plural="jobs", kind="Job", status=True),
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


def _selector_ok(obj: dict[str, Any], selector: str | None) -> bool:
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


def _fields_ok(obj: dict[str, Any], selector: str | None) -> bool:
    """``fieldSelector`` terms on ``metadata.name``/``metadata.namespace`` (what kubectl
    sends); other fields are not emulated and match everything."""
    meta = obj.get("metadata") or {}
    for term in (selector or "").split(","):
        negate = "!=" in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        field = {"metadata.name": "name", "metadata.namespace": "namespace"}.get(key.strip())
        if field and (meta.get(field) == value.strip()) == negate:
            return False
    return True


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

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for res in BUILTIN:
            self.declare(res)

    # ---------------------------------------------------------------- declarations
    def declare(self, res: Resource) -> None:
        self.kinds[res.key] = res
        self.resources[res.key] = kmock.ResourceInfo(
            kind=res.kind, namespaced=res.namespaced, singular=res.kind.lower(),
            verbs={"create", "delete", "get", "list", "patch", "watch"},
            subresources={"status"} if res.status else set(),
            shortnames=set(res.short_names), categories=set(res.categories))

    def install_crd(self, crd: dict[str, Any], validate: bool = True) -> None:
        """Store a CRD and serve its kind (validating objects against its schema)."""
        from zhufu.operator.crds import to_jsonschema

        spec = crd["spec"]
        version = spec["versions"][0]
        schema = to_jsonschema(version["schema"]["openAPIV3Schema"]) if validate else None
        if schema is not None:
            schema["properties"]["metadata"] = {"type": "object"}
        self.declare(Resource(group=spec["group"], version=version["name"],
                              plural=spec["names"]["plural"], kind=spec["names"]["kind"],
                              status="status" in version.get("subresources", {}),
                              schema=schema,
                              short_names=tuple(spec["names"].get("shortNames", ())),
                              categories=tuple(spec["names"].get("categories", ()))))
        self._write_create(self.kinds["apiextensions.k8s.io/v1/customresourcedefinitions"],
                           None, copy.deepcopy(crd))

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

    def _write_create(self, res: Resource, namespace: str | None, obj: dict[str, Any]
                      ) -> dict[str, Any]:
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
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1,
                    resourceVersion=self._next_rv())
        self.store[key] = obj
        self._bump(res, "ADDED", obj)
        return obj

    def _write_patch(self, res: Resource, key: Key, data: Any, ctype: str,
                     subresource: str | None) -> dict[str, Any]:
        if key not in self.store:
            raise _error(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        old = self.store[key]
        if "json-patch" in ctype:
            new = json_patch(old, data if isinstance(data, list) else [])
        else:
            new = merge_patch(old, data)
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
        self._collect_garbage(obj["metadata"]["uid"])
        return obj

    def _write_delete(self, res: Resource, key: Key) -> dict[str, Any]:
        if key not in self.store:
            raise _error(404, "NotFound", f'{res.plural} "{key[2]}" not found')
        obj = copy.deepcopy(self.store[key])
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = _now()
                meta["deletionGracePeriodSeconds"] = 0
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

    def delete(self, plural: str, namespace: str | None, name: str) -> None:
        res = self._res_by_plural(plural)
        self._write_delete(res, (res.key, namespace, name))

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
        # kmock 0.8 cannot parse the cluster-scoped /api/v1/namespaces[/NAME] (it reads
        # "namespaces" as the namespace prefix and crashes): build that request ourselves.
        parts = raw_request.path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) > 4:
            return await super().__call__(raw_request)
        body = await raw_request.read()
        name = parts[3] if len(parts) == 4 else None
        method = kmock.method(raw_request.method)
        watch = raw_request.query.get("watch") == "true"
        action = (kmock.action.WATCH if watch else kmock.action.FETCH if name else
                  kmock.action.LIST if method == kmock.method.GET else kmock.action.CREATE)
        request = kmock.Request(
            id=len(self._requests), raw_request=raw_request, url=raw_request.url,
            method=raw_request.method, params=dict(raw_request.query),
            headers=dict(raw_request.headers), body=body, text=body.decode(errors="replace"),
            data=json.loads(body) if body else None, action=action,
            resource=kmock.resource(group="", version="v1", plural="namespaces"),
            namespace=None, name=name)
        self._requests.append(request)
        try:
            return await self._handle(request)
        except Exception as e:  # noqa: BLE001 - rendered as a Kubernetes Status, like kmock
            return await self._render_error(e)

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
        async with self._lock:
            if request.name is None and method == "GET":
                items = [copy.deepcopy(o) for (k, n, _), o in self.store.items()
                         if k == res.key and (ns is None or n == ns)
                         and _selector_ok(o, request.params.get("labelSelector"))
                         and _fields_ok(o, request.params.get("fieldSelector"))]
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
                elif method == "PATCH":
                    body = copy.deepcopy(self._write_patch(
                        res, key, request.data, request.headers.get("Content-Type", ""),
                        request.subresource))
                elif method == "DELETE":
                    body = copy.deepcopy(self._write_delete(res, key))
                else:
                    raise _error(405, "MethodNotAllowed", f"{method} is not emulated")
            else:
                raise _error(405, "MethodNotAllowed", f"{method} is not emulated")
        return aiohttp.web.json_response(body)

    async def _watch(self, request: kmock.Request, res: Resource) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(raw)
        ns, selector = request.namespace, request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        since = request.params.get("resourceVersion")
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._lock:
            if since in (None, "", "0") or request.params.get("sendInitialEvents") == "true":
                pending = [{"type": "ADDED", "object": copy.deepcopy(o)}
                           for (k, n, _), o in self.store.items()
                           if k == res.key and (ns is None or n == ns)]
                position = len(self.history)
            else:
                position = next((i for i, (rv, _, _) in enumerate(self.history)
                                 if rv > int(since)), len(self.history))
                pending = []
            if request.params.get("sendInitialEvents") == "true":
                # A watch-list (kubectl 1.37's `rollout status`) waits for this bookmark.
                pending.append({"type": "BOOKMARK", "object": {
                    "apiVersion": res.api_version, "kind": res.kind, "metadata": {
                        "resourceVersion": str(self.rv),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}})
        try:
            while True:
                for event in pending:
                    obj = event["object"]
                    if event["type"] == "BOOKMARK" or (
                            (ns is None or obj["metadata"].get("namespace") == ns)
                            and _selector_ok(obj, selector) and _fields_ok(obj, fields)):
                        await response.write(json.dumps(event).encode() + b"\n")
                left = deadline - asyncio.get_running_loop().time()
                transport = raw.transport
                if left <= 0 or self.closing or transport is None or transport.is_closing():
                    break
                if position >= len(self.history):
                    tick = self._tick or asyncio.Event()
                    try:
                        await asyncio.wait_for(tick.wait(), timeout=min(left, 1))
                    except TimeoutError:
                        pass
                pending = [copy.deepcopy(e) for _, k, e in self.history[position:]
                           if k == res.key]
                position = len(self.history)
        except ConnectionResetError:
            return response
        await response.write_eof()
        return response

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_version(request)
        if request.resource is not None and request.resource.group == "":
            payload["groupVersion"] = request.resource.version  # kmock says "/v1"
        # kmock gives each subresource (grporuns/status) its resource's short names and
        # categories, so kubectl would resolve `zgr` or `zhufu` to it too; a real API server
        # gives them to the resource only.
        for entry in payload["resources"]:
            if "/" in entry["name"]:
                entry["shortNames"], entry["categories"] = [], []
        return payload
