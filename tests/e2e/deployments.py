"""Play the Deployment and ReplicaSet controllers (one in this emulation) against the emulator.

:meth:`DeploymentController.sync` keeps ``spec.replicas`` pods of every Deployment, built from
its template (labels plus ``pod-template-hash``, an owner reference to the Deployment: the
ReplicaSet level is left out). A changed template replaces the pods the ``Recreate`` way (old
ones gone before new ones start) whatever the strategy says; a pod that ended is replaced.
Status carries what ``kubectl rollout status`` and ``kubectl get deploy`` read:
``observedGeneration``, ``replicas``, ``updatedReplicas``, ``readyReplicas``,
``availableReplicas`` and the ``Available``/``Progressing`` conditions. ``kubectl scale``
changes ``spec.replicas`` through the emulator's ``scale`` subresource.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from typing import Any

from kube_emulator import ApiError, KubeEmulator

HASH_LABEL = "pod-template-hash"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class DeploymentController:
    """Idempotent: call :meth:`sync` whenever the store changes."""

    def __init__(self, emu: KubeEmulator) -> None:
        self.emu = emu

    def sync(self) -> None:
        for dep in self.emu.objects("deployments"):
            if not dep["metadata"].get("deletionTimestamp"):
                self._sync(dep)

    def _sync(self, dep: dict[str, Any]) -> None:
        meta, spec = dep["metadata"], dep.get("spec") or {}
        ns, uid = meta["namespace"], meta["uid"]
        want = int(spec.get("replicas", 1))
        current = template_hash(spec.get("template") or {})
        pods = [p for p in self.emu.objects("pods", ns)
                if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences", []))]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        for p in live:
            ended = (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            stale = p["metadata"].get("labels", {}).get(HASH_LABEL) != current
            if ended or stale:
                self._delete(p)
        live = [p for p in live if (p.get("status") or {}).get("phase") not in (
            "Succeeded", "Failed") and p["metadata"]["labels"].get(HASH_LABEL) == current]
        for p in sorted(live, key=lambda p: p["metadata"]["creationTimestamp"])[want:]:
            self._delete(p)
        live = live[:want]
        old_left = any(p["metadata"]["labels"].get(HASH_LABEL) != current for p in pods)
        if not old_left:
            for _ in range(want - len(live)):
                live.append(self.emu.create("pods", self._pod(dep, current)))
        ready = sum(1 for p in live if _ready(p))
        complete = ready >= want and len(live) == want
        status = {
            "observedGeneration": meta.get("generation", 1), "replicas": len(live),
            "updatedReplicas": len(live), "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": max(0, want - ready),
            "conditions": [
                {"type": "Available", "status": "True" if ready >= want else "False",
                 "reason": "MinimumReplicasAvailable" if ready >= want else
                 "MinimumReplicasUnavailable", "message": f"{ready}/{want} replicas available"},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                 "message": f"Deployment {meta['name']} " + (
                     "has successfully progressed" if complete else "is progressing")}]}
        old = dep.get("status") or {}
        if {k: v for k, v in old.items() if k != "conditions"} != {
                k: v for k, v in status.items() if k != "conditions"} or [
                (c.get("type"), c.get("status"), c.get("reason")) for c in old.get(
                    "conditions") or []] != [(c["type"], c["status"], c["reason"])
                                            for c in status["conditions"]]:
            for c in status["conditions"]:
                c["lastUpdateTime"] = c["lastTransitionTime"] = now()
            try:
                self.emu.patch("deployments", ns, meta["name"], {"status": status}, status=True)
            except ApiError:
                pass

    def _delete(self, pod: dict[str, Any]) -> None:
        try:
            self.emu.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
        except ApiError:
            pass

    @staticmethod
    def _pod(dep: dict[str, Any], current: str) -> dict[str, Any]:
        meta = dep["metadata"]
        template = copy.deepcopy(dep["spec"]["template"])
        tmeta = template.get("metadata") or {}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "generateName": f"{meta['name']}-{current}-", "namespace": meta["namespace"],
            "labels": {**(tmeta.get("labels") or {}), HASH_LABEL: current},
            "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                 "name": meta["name"], "uid": meta["uid"], "controller": True,
                                 "blockOwnerDeletion": True}]},
            "spec": template["spec"]}
