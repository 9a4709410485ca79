"""Two admission checks of the API server that decide whether a Job's pods can exist.

When the emulator has ``admission`` on, creating a pod is refused with ``403 Forbidden`` and
the API server's own wording when

- its ``spec.serviceAccountName`` names no ServiceAccount in the namespace (the
  ServiceAccount admission plugin): ``error looking up service account NS/NAME:
  serviceaccount "NAME" not found``;
- it would push a ResourceQuota of the namespace past ``hard`` (``pods``, ``requests.cpu``,
  ``requests.memory``, ``requests.<extended resource>``, ``cpu``/``memory`` meaning
  ``requests.*``): ``exceeded quota: Q, requested: …, used: …, limited: …``.

The Job controller turns such a refusal into a ``FailedCreate`` Warning Event on the Job —
what a user sees on a real cluster when pods never appear.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_SUFFIX = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
           "Pi": 2**50, "Ei": 2**60}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity (``500m``, ``2``, ``4Gi``) as a number."""
    m = _QUANTITY.match(str(text).strip())
    if m is None:
        raise ValueError(f"not a quantity: {text!r}")
    return Decimal(m.group(1)) * Decimal(_SUFFIX[m.group(2) or ""])


def _fmt(value: Decimal) -> str:
    return str(value.normalize()) if value == value.to_integral() else f"{value * 1000:.0f}m"


def pod_requests(pod: dict[str, Any]) -> dict[str, Decimal]:
    """``requests.<resource>`` summed over the pod's containers (limits stand in if unset)."""
    out: dict[str, Decimal] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, value in merged.items():
            out[f"requests.{name}"] = out.get(f"requests.{name}", Decimal(0)) + quantity(value)
    return out


def _terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def check_pod(pod: dict[str, Any], service_accounts: set[str], quotas: list[dict[str, Any]],
              pods: list[dict[str, Any]]) -> str | None:
    """Why the API server would refuse ``pod`` (message after ``is forbidden:``), or None.

    ``service_accounts`` and ``quotas`` are the namespace's; ``pods`` its existing pods.
    """
    sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    if sa not in service_accounts:
        return f'error looking up service account {ns}/{sa}: serviceaccount "{sa}" not found'
    wanted = {"pods": Decimal(1), **pod_requests(pod)}
    live = [p for p in pods if not _terminal(p)]
    for quota in quotas:
        hard = {("requests." + k if k in ("cpu", "memory") else k): quantity(v)
                for k, v in ((quota.get("spec") or {}).get("hard") or {}).items()}
        used = {k: (Decimal(len(live)) if k == "pods" else
                    sum((pod_requests(p).get(k, Decimal(0)) for p in live), Decimal(0)))
                for k in hard}
        over = sorted(k for k in hard if k in wanted and used[k] + wanted[k] > hard[k])
        if over:
            name = (quota.get("metadata") or {}).get("name", "")
            req = ",".join(f"{k}={_fmt(wanted[k])}" for k in over)
            use = ",".join(f"{k}={_fmt(used[k])}" for k in over)
            lim = ",".join(f"{k}={_fmt(hard[k])}" for k in over)
            return f"exceeded quota: {name}, requested: {req}, used: {use}, limited: {lim}"
    return None
