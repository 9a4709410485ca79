"""A small async wrapper over the ``kubernetes`` client: path-based calls on plain dicts.

Only what the handlers need: create-if-absent (409 means "already there"), get (404 means
None), list by label selector, an object's Events, merge-patch of ``status``, delete. Calls
run in a thread (the client is synchronous); bodies go out and come back as dicts, never as
client models.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

_CORE = {"ConfigMap": "configmaps", "Service": "services", "Pod": "pods", "Event": "events",
         "Secret": "secrets"}
#: Ask the API server for an object's metadata only (no Secret values on the wire).
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_GROUPED = {"Job": ("batch", "v1", "jobs")}


def api_message(error: ApiException) -> str:
    """The API server's own message in an error answer (else the HTTP reason)."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return f"{error.status} {error.reason}: {message or error.body or ''}".strip()


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether ``obj`` lists ``uid`` among its ownerReferences."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


def configure_client() -> client.ApiClient:
    """An API client from the in-cluster service account, else from KUBECONFIG."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def collection_path(api_version: str, kind_or_plural: str, namespace: str) -> str:
    """``/api/v1/namespaces/NS/configmaps`` and the like, for a kind or a plural."""
    if api_version == "v1":
        plural = _CORE.get(kind_or_plural, kind_or_plural)
        return f"/api/v1/namespaces/{namespace}/{plural}"
    if kind_or_plural in _GROUPED:
        group, version, plural = _GROUPED[kind_or_plural]
        return f"/apis/{group}/{version}/namespaces/{namespace}/{plural}"
    return f"/apis/{api_version}/namespaces/{namespace}/{kind_or_plural}"


class Kube:
    """Dict-in, dict-out API calls, each run in a worker thread."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def _call(self, method: str, path: str, body: Any = None, query: list[Any] | None = None,
              content_type: str = "application/json", accept: str = "application/json"
              ) -> dict[str, Any]:
        resp = self.api.call_api(
            path, method, query_params=query or [], body=body,
            header_params={"Content-Type": content_type, "Accept": accept},
            auth_settings=["BearerToken"], _preload_content=False,
            _return_http_data_only=True, _request_timeout=30)
        data = resp.data
        return json.loads(data) if data else {}

    async def call(self, method: str, path: str, body: Any = None,
                   query: list[Any] | None = None, content_type: str = "application/json",
                   accept: str = "application/json") -> dict[str, Any]:
        return await asyncio.to_thread(self._call, method, path, body, query, content_type,
                                       accept)

    async def create_if_absent(self, obj: dict[str, Any]) -> bool:
        """Create ``obj``; False if it already existed (409), True if created now."""
        meta = obj["metadata"]
        path = collection_path(obj["apiVersion"], obj["kind"], meta["namespace"])
        try:
            await self.call("POST", path, obj)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    async def get(self, api_version: str, kind_or_plural: str, namespace: str, name: str
                  ) -> dict[str, Any] | None:
        path = f"{collection_path(api_version, kind_or_plural, namespace)}/{name}"
        try:
            return await self.call("GET", path)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    async def get_metadata(self, api_version: str, kind_or_plural: str, namespace: str,
                           name: str) -> dict[str, Any] | None:
        """An object's ``metadata`` only (PartialObjectMetadata), or None if absent."""
        path = f"{collection_path(api_version, kind_or_plural, namespace)}/{name}"
        try:
            data = await self.call("GET", path, accept=METADATA_ONLY)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return dict(data.get("metadata") or {})

    async def list(self, api_version: str, kind_or_plural: str, namespace: str,
                   selector: dict[str, str]) -> list[dict[str, Any]]:
        path = collection_path(api_version, kind_or_plural, namespace)
        sel = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        data = await self.call("GET", path, query=[("labelSelector", sel)])
        items = data.get("items") or []
        # Filter again: a server that ignores labelSelector must not leak other objects.
        return [i for i in items if all(((i.get("metadata") or {}).get("labels") or {}).get(k)
                                        == v for k, v in selector.items())]

    async def events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """The core/v1 Events about one object (``involvedObject`` field selector)."""
        path = collection_path("v1", "Event", namespace)
        sel = f"involvedObject.kind={kind},involvedObject.name={name}"
        data = await self.call("GET", path, query=[("fieldSelector", sel)])
        return [e for e in data.get("items") or []
                if (e.get("involvedObject") or {}).get("name") == name]

    async def patch_status(self, api_version: str, plural: str, namespace: str, name: str,
                           status: dict[str, Any]) -> dict[str, Any]:
        path = f"{collection_path(api_version, plural, namespace)}/{name}/status"
        return await self.call("PATCH", path, {"status": status},
                               content_type="application/merge-patch+json")

    async def delete(self, api_version: str, kind_or_plural: str, namespace: str, name: str,
                     propagation: str = "Background") -> bool:
        """Delete (dependents: ``Background``, or ``Foreground``: the object stays, with a
        ``deletionTimestamp``, until the garbage collector deleted its dependents); False if
        it was already gone."""
        path = f"{collection_path(api_version, kind_or_plural, namespace)}/{name}"
        try:
            await self.call("DELETE", path, {"propagationPolicy": propagation})
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True
