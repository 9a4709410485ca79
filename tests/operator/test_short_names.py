"""The custom resources' short names, plurals and singulars collide with no built-in resource.

`kubectl get cj` must keep listing CronJobs: the API server's discovery gives built-in names
precedence, so a CRD short name that a built-in resource owns is silently unreachable.

The pinned list below is Kubernetes 1.37's built-in short names, taken from the discovery
documents checked into the Kubernetes repository (kubernetes/kubernetes ``api/discovery/
api__v1.json`` for the core group and ``api/discovery/aggregated_v2.json`` for the named
groups, alpha and beta versions included); these are what ``kubectl api-resources`` prints in
its SHORTNAMES column on a 1.37 cluster with the default API groups.
"""

from __future__ import annotations

import pytest
import yaml

from zhufu.operator.crds import render_crds
from zhufu.operator.spec import KINDS

#: resource (group/plural) -> short names, Kubernetes 1.37 built-ins (source: module docstring).
BUILTIN_SHORT_NAMES: dict[str, tuple[str, ...]] = {
    "componentstatuses": ("cs",),
    "configmaps": ("cm",),
    "endpoints": ("ep",),
    "events": ("ev",),
    "limitranges": ("limits",),
    "namespaces": ("ns",),
    "nodes": ("no",),
    "persistentvolumeclaims": ("pvc",),
    "persistentvolumes": ("pv",),
    "pods": ("po",),
    "replicationcontrollers": ("rc",),
    "resourcequotas": ("quota",),
    "serviceaccounts": ("sa",),
    "services": ("svc",),
    "apps/daemonsets": ("ds",),
    "apps/deployments": ("deploy",),
    "apps/replicasets": ("rs",),
    "apps/statefulsets": ("sts",),
    "events.k8s.io/events": ("ev",),
    "autoscaling/horizontalpodautoscalers": ("hpa",),
    "batch/cronjobs": ("cj",),
    "certificates.k8s.io/certificatesigningrequests": ("csr",),
    "networking.k8s.io/ingresses": ("ing",),
    "networking.k8s.io/ipaddresses": ("ip",),
    "networking.k8s.io/networkpolicies": ("netpol",),
    "policy/poddisruptionbudgets": ("pdb",),
    "storage.k8s.io/storageclasses": ("sc",),
    "storage.k8s.io/volumeattributesclasses": ("vac",),
    "apiextensions.k8s.io/customresourcedefinitions": ("crd", "crds"),
    "scheduling.k8s.io/priorityclasses": ("pc",),
}
#: Every built-in short name, plus the plurals that own them (a CRD name equal to a built-in
#: plural would be shadowed the same way).
TAKEN = {s for names in BUILTIN_SHORT_NAMES.values() for s in names} | {
    r.rpartition("/")[2] for r in BUILTIN_SHORT_NAMES} | {"all", "jobs", "job", "secrets"}


def test_pinned_list_holds_the_known_collision() -> None:
    """The list is the one the issue was about: CronJob owns `cj` (so the check can fail)."""
    assert "cj" in BUILTIN_SHORT_NAMES["batch/cronjobs"] and "cj" in TAKEN


@pytest.mark.parametrize("kind", list(KINDS))
def test_names_are_not_owned_by_a_built_in_resource(kind: str) -> None:
    k = KINDS[kind]
    for name in (k.short, k.plural, k.singular):
        assert name not in TAKEN, f"{kind}: {name!r} is a built-in Kubernetes resource name"


def test_short_names_are_distinct_and_in_the_crds() -> None:
    shorts = [k.short for k in KINDS.values()]
    assert len(set(shorts)) == len(shorts)
    for text in render_crds().values():
        names = yaml.safe_load(text)["spec"]["names"]
        assert names["shortNames"] == [KINDS[names["kind"]].short]
        assert not set(names["shortNames"]) & TAKEN
