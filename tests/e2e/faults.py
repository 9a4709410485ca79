"""Faults injected into the running flow, only with what a user or the cluster can do.

:class:`Injector` is polled by :func:`flow.wait` and acts once per fault:

1. **operator stopped mid-curation**: when the CurationJob is ``Running``, ``kubectl scale
   deploy/zhufu-operator --replicas=0``; once its pod is gone it stays down for
   :attr:`Injector.operator_down_s` seconds (the curation pod keeps running, its events go
   unseen), then ``--replicas=1`` and ``kubectl rollout status``. Verified afterwards: the
   CurationJob still has exactly one Job, the one created before the stop (same uid), and
   one ``JobCreated`` Event; the chain completes.
2. **both GRPO pods killed after the first checkpoint**: once the GRPORun's ``LATEST``
   checkpoint marker is in the bucket, ``kubectl delete pod -l zhufu.dev/job=… --grace-period=0
   --force`` (SIGKILL, like a node loss); ``LATEST`` is read again once the pods are gone
   (the group may have saved another checkpoint before the kill landed). The Job's
   podFailurePolicy fails it (exit 137, reason ``PodFailurePolicy``) and the operator
   restarts the whole group: it deletes the Job in the foreground and creates it again.
   Verified afterwards: ``status.restarts`` is 1, the GRPORun's Job is a new one (another
   uid, annotation ``zhufu.dev/restart: "1"``), a ``Restarting`` Event was posted, the final
   MLflow run says it resumed from the checkpoint ``LATEST`` named when the pods were gone
   (``zhufu.resumed_from``) and reached ``max_steps``, the GRPORun's SFT step ran once (the
   new Job's pods reused its model), and exactly one ``zhufu-policy`` version came from each
   of the SFT and GRPO stages (checked by :func:`flow.check`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flow import Flow, _mlflow
from stack import BUCKET, OPERATOR, Stack, StepFailed

from zhufu.pipeline.train.grpo_setup import checkpoint_step


@dataclass
class Injector:
    flow: Flow
    operator_down_s: float = 20.0
    done: dict[str, dict[str, Any]] = field(default_factory=dict)

    def step(self, stack: Stack, statuses: dict[str, dict[str, Any]]) -> None:
        curation = statuses.get(f"CurationJob/{self.flow.curation}", {})
        if "operator" not in self.done and curation.get("phase") == "Running":
            self._stop_operator(stack)
        # only a checkpoint before the last step leaves steps to resume (the group may
        # checkpoint faster than this polls: the flow gives it room, ``max_steps``)
        if ("grpo_pods" not in self.done and self._checkpointed(stack)
                and (checkpoint_step(self.checkpoint) or 0) < self.flow.max_steps):
            self._kill_grpo_pods(stack)

    # ------------------------------------------------------------------ fault 1
    def _stop_operator(self, stack: Stack) -> None:
        job = f"{self.flow.curation}-curate"
        uid = stack.get("job", job)["metadata"]["uid"]
        stack.say(f"FAULT: stopping the operator while {job} runs")
        stack.kubectl("scale", OPERATOR, "--replicas=0")
        stack.kubectl("wait", "--for=delete", "pod", "-l", "app.kubernetes.io/component=operator",
                      "--timeout=60s", timeout=90)
        stopped = time.monotonic()
        time.sleep(self.operator_down_s)
        phase_at_restart = stack.get("curationjob", self.flow.curation).get("status", {}).get(
            "phase")
        job_state = stack.get("job", job).get("status", {})
        stack.kubectl("scale", OPERATOR, "--replicas=1")
        stack.kubectl("rollout", "status", OPERATOR, "--timeout=120s", timeout=150)
        stack.say(f"FAULT: operator back after {time.monotonic() - stopped:.0f}s")
        self.done["operator"] = {"job_uid": uid, "down_s": round(time.monotonic() - stopped),
                                 "curation_phase_when_restarted": phase_at_restart,
                                 "job_finished_while_down": bool(
                                     job_state.get("succeeded") or job_state.get("failed"))}

    # ------------------------------------------------------------------ fault 2
    def _checkpointed(self, stack: Stack) -> bool:
        key = f"checkpoints/{self.flow.grpo}/LATEST"
        try:
            body = stack.s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except stack.s3.client().exceptions.NoSuchKey:
            return False
        self.checkpoint = body.decode().strip()
        return True

    def _kill_grpo_pods(self, stack: Stack) -> None:
        job = f"{self.flow.grpo}-grpo"
        pods = stack.get("pods", "-l", f"zhufu.dev/job={job}")["items"]
        running = [p["metadata"]["name"] for p in pods
                   if (p.get("status") or {}).get("phase") == "Running"]
        uid = stack.get("job", job)["metadata"]["uid"]
        stack.say(f"FAULT: {self.checkpoint} is in the bucket; killing pods {running}")
        stack.kubectl("delete", "pod", "-l", f"zhufu.dev/job={job}", "--grace-period=0",
                      "--force", "--wait=false")
        seen = self.checkpoint
        # The group may checkpoint again between the read and the kill: the checkpoint it
        # must resume from is the one LATEST names once its pods are gone (the new Job's pods
        # start only after that and write nothing before they resume).
        deadline = time.monotonic() + 120
        while {p["metadata"]["name"] for p in stack.get("pods", "-l", f"zhufu.dev/job={job}")[
                "items"]} & set(running):
            if time.monotonic() > deadline:
                raise StepFailed(f"pods {running} still there 120 s after the kill")
            time.sleep(0.5)
        self._checkpointed(stack)
        self.done["grpo_pods"] = {"checkpoint_seen": seen, "checkpoint": self.checkpoint,
                                  "killed": running, "job_uid": uid}

    # ------------------------------------------------------------------ after the flow
    def verify(self, stack: Stack) -> dict[str, Any]:
        """Check what each fault should have left; return what was seen (raise on a miss)."""
        problems = [f"fault {f} never fired" for f in ("operator", "grpo_pods")
                    if f not in self.done]
        if "operator" in self.done:
            # The restarted operator adopts the Job that ran through the stop (same uid) and
            # creates each of the CurationJob's Jobs once: with shards, the Indexed Job and,
            # after it, NAME-curate-all.
            jobs = stack.get("jobs", "-l", f"zhufu.dev/owner={self.flow.curation}")["items"]
            uids = {j["metadata"]["name"]: j["metadata"]["uid"] for j in jobs}
            created = [e for e in stack.get("events")["items"]
                       if e.get("reason") == "JobCreated"
                       and e["involvedObject"]["name"] == self.flow.curation]
            self.done["operator"].update(jobs=len(jobs), job_created_events=sum(
                int(e.get("count", 1)) for e in created))
            stopped_during = f"{self.flow.curation}-curate"
            if uids.get(stopped_during) != self.done["operator"]["job_uid"]:
                problems.append(f"CurationJob's {stopped_during} is {uids.get(stopped_during)}, "
                                f"expected the Job that ran through the stop "
                                f"({self.done['operator']['job_uid']})")
            if self.done["operator"]["job_created_events"] != len(jobs):
                problems.append(f"{self.done['operator']['job_created_events']} JobCreated "
                                f"Events for the CurationJob's {len(jobs)} Jobs {sorted(uids)}, "
                                "expected one each")
        if "grpo_pods" in self.done:
            job = stack.get("job", f"{self.flow.grpo}-grpo")
            restart = (job["metadata"].get("annotations") or {}).get("zhufu.dev/restart")
            status = stack.get("grporun", self.flow.grpo)["status"]
            reasons = [e.get("reason") for e in stack.get("events")["items"]
                       if e["involvedObject"]["name"] == self.flow.grpo]
            run = _mlflow(stack, "runs/get", run_id=status.get("mlflowRunId", ""))["run"]
            tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
            metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
            sft_runs = _runs(stack, run["info"]["experiment_id"], "sft",
                             f"grporuns/default/{self.flow.grpo}")
            self.done["grpo_pods"].update(
                restarts=status.get("restarts"), new_job=job["metadata"]["uid"] != self.done[
                    "grpo_pods"]["job_uid"], job_restart_annotation=restart,
                restarting_events=reasons.count("Restarting"),
                resumed_from=tags.get("zhufu.resumed_from"),
                final_step=metrics.get("steps"), sft_runs=len(sft_runs))
            if len(sft_runs) != 1:
                problems.append(f"{len(sft_runs)} SFT runs for the GRPORun, expected 1 (the "
                                "restarted group reuses the SFT model of the first Job)")
            if status.get("restarts") != 1 or restart != "1":
                problems.append(f"GRPORun status.restarts {status.get('restarts')!r}, Job "
                                f"restart annotation {restart!r}: expected one group restart")
            if not self.done["grpo_pods"]["new_job"]:
                problems.append("the GRPO Job is still the one whose pods were killed")
            if "Restarting" not in reasons:
                problems.append(f"no Restarting Event for the GRPORun (reasons: {reasons})")
            if tags.get("zhufu.resumed_from") != self.done["grpo_pods"]["checkpoint"]:
                problems.append(f"GRPO resumed from {tags.get('zhufu.resumed_from')!r}, "
                                f"expected {self.done['grpo_pods']['checkpoint']!r}")
            if metrics.get("steps") != float(self.flow.max_steps):
                problems.append(f"GRPO ended at step {metrics.get('steps')}, expected "
                                f"{self.flow.max_steps}")
        if problems:
            raise StepFailed("fault checks failed:\n  " + "\n  ".join(problems))
        return self.done


def _runs(stack: Stack, experiment_id: str, stage: str, resource: str) -> list[dict[str, Any]]:
    """The MLflow runs of ``stage`` that ``resource`` started."""
    import json
    import urllib.request

    body = json.dumps({"experiment_ids": [experiment_id], "max_results": 100,
                       "filter": f"tags.`zhufu.stage` = '{stage}' and "
                                 f"tags.`zhufu.resource` = '{resource}'"}).encode()
    req = urllib.request.Request(f"{stack.mlflow.uri}/api/2.0/mlflow/runs/search", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read()).get("runs", [])
