"""The MLflow run of a resource's Job, found by its tags while it runs or after it failed.

Every stage run started in a pod carries ``zhufu.resource`` (``<plural>/<namespace>/<name>``)
and ``zhufu.job_uid`` (the uid its Job gave it: the resource's) as tags
(:func:`zhufu.pipeline.tracking.lineage_tags`), so the operator can point a user at the run
before the pod's result exists: the newest run of the resource's Job, through MLflow's REST
API (no MLflow client in the operator). Lookups that fail (server down, experiment not
created yet) answer None; status is never held up.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 5.0
#: After a failed call the server is left alone this long (a down MLflow slows no sync).
QUIET_S = 30.0
_quiet_until: dict[str, float] = {}


@dataclass(frozen=True)
class RunRef:
    run_id: str
    experiment_id: str
    status: str  # RUNNING, FINISHED, FAILED, KILLED

    def url(self, ui: str) -> str:
        """The run's page in the MLflow UI at ``ui``."""
        return f"{ui.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


def _call(uri: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
        return json.loads(resp.read() or b"{}")


def find_run(tracking_uri: str, experiment: str, resource: str, job_uid: str | None = None
             ) -> RunRef | None:
    """The newest run of ``experiment`` tagged with ``resource`` (and ``job_uid``), or None.

    Resource names and uids hold no quotes (DNS-1123 names, UUIDs), so they go into the
    filter as they are."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    if time.monotonic() < _quiet_until.get(tracking_uri, 0.0):
        return None
    try:
        exp = _call(tracking_uri, "experiments/get-by-name?"
                    + urllib.parse.urlencode({"experiment_name": experiment}))
        exp_id = exp["experiment"]["experiment_id"]
        terms = [f"tags.`zhufu.resource` = '{resource}'"]
        if job_uid:
            terms.append(f"tags.`zhufu.job_uid` = '{job_uid}'")
        found = _call(tracking_uri, "runs/search", {
            "experiment_ids": [exp_id], "filter": " and ".join(terms), "max_results": 1,
            "order_by": ["attributes.start_time DESC"]})
    except urllib.error.HTTPError:
        return None  # e.g. the experiment does not exist yet: the server is up
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        _quiet_until[tracking_uri] = time.monotonic() + QUIET_S
        return None
    runs = found.get("runs") or []
    if not runs:
        return None
    info = runs[0].get("info") or {}
    return RunRef(str(info.get("run_id", "")), str(info.get("experiment_id", exp_id)),
                  str(info.get("status", "")))
