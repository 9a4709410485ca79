"""The flow a user runs on a cluster, driven only through ``kubectl``, and its checks.

``kubectl apply -f`` a JudgeTraining (offline backend), a CurationJob (against the stand-in
LLM, then a reward model trained on its pairs) and a GRPORun that uses both (``judgeRef``,
``curationRef``) and runs SFT first (``sft``) on two nodes, then ``kubectl wait
--for=condition=Succeeded`` on all three. :func:`check` then verifies what a user would:
each status names its MLflow run and registered versions (the GRPORun's already while it
runs, found by the operator from the run's tags), MLflow holds exactly one
``zhufu-policy`` version from the SFT stage and one from the GRPO stage, whose lineage tags
name the SFT version it trained and the judge and reward-model versions it used, and the
artifacts are in the bucket. Faults (operator stopped mid-run, GRPO pods killed after a
checkpoint) are injected by :mod:`faults` between apply and wait.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from stack import BIN, BUCKET, Stack, StepFailed

API = "zhufu.dev/v1alpha1"
PLURALS = {"JudgeTraining": "judgetrainings", "CurationJob": "curationjobs",
           "GRPORun": "grporuns"}


@dataclass
class Flow:
    """Names and sizes of one run of the flow (small enough for 2 CPU cores)."""

    judge: str = "greetings-judge"
    curation: str = "greetings-curation"
    grpo: str = "greetings-grpo"
    nodes: int = 2
    shards: int = 2  # the CurationJob's pods (an Indexed Job, then the whole result's Job)
    max_steps: int = 4
    save_steps: int = 2
    timeout_s: float = 900
    started: float = field(default_factory=time.monotonic)
    #: ``kind/name`` of the resources whose status named an MLflow run while Running.
    run_while_running: set[str] = field(default_factory=set)

    def resources(self, llm_url: str) -> list[dict[str, Any]]:
        """The three custom resources, as a user would write them."""
        judge = {"apiVersion": API, "kind": "JudgeTraining", "metadata": {"name": self.judge},
                 "spec": {"experiment": "zhufu-e2e", "rounds": 2, "batchSize": 16,
                          "stepsPerRound": 20, "llm": {"backend": "offline"},
                          "outputDir": f"s3://{BUCKET}/judges/{self.judge}",
                          "registerAs": "zhufu-judge"}}
        curation = {"apiVersion": API, "kind": "CurationJob",
                    "metadata": {"name": self.curation},
                    "spec": {"experiment": "zhufu-e2e", "maxQueries": 4,
                             "samplesPerQuery": 2, "shards": self.shards,
                             "outputDir": f"s3://{BUCKET}/curation/{self.curation}",
                             "llm": {"backend": "openai", "model": "stand-in",
                                     "baseUrl": llm_url, "concurrency": 8,
                                     "maxRetries": 2, "timeoutSeconds": 30},
                             "rewardModel": {"baseModel": "tiny", "numEpochs": 1,
                                              "batchSize": 4, "maxLength": 64,
                                              "evalFraction": 0.25}}}
        grpo = {"apiVersion": API, "kind": "GRPORun", "metadata": {"name": self.grpo},
                "spec": {"experiment": "zhufu-e2e", "judgeRef": self.judge,
                         "curationRef": self.curation, "policy": "tiny",
                         "sft": {"maxSteps": 2, "batchSize": 4, "maxLength": 64,
                                 "learningRate": 1e-3},
                         "rewards": [{"name": "judge", "weight": 1.0},
                                     {"name": "rm", "weight": 0.5},
                                     {"name": "format", "weight": 0.5}],
                         "numGenerations": 2, "batchSize": 4, "maxSteps": self.max_steps,
                         "saveSteps": self.save_steps, "maxCompletionLength": 16,
                         "learningRate": 1e-3,
                         "checkpointDir": f"s3://{BUCKET}/checkpoints/{self.grpo}",
                         "outputDir": f"s3://{BUCKET}/policies/{self.grpo}",
                         "nodes": self.nodes, "backoffLimit": 2}}
        return [judge, curation, grpo]

    def names(self) -> list[str]:
        """``kind/name`` of each resource, as ``kubectl`` spells them."""
        return [f"judgetraining/{self.judge}", f"curationjob/{self.curation}",
                f"grporun/{self.grpo}"]


def apply(stack: Stack, flow: Flow) -> list[Path]:
    """Write each resource to a file and ``kubectl apply -f`` it; return the files."""
    files = []
    for obj in flow.resources(stack.llm_url):
        path = stack.workdir / f"{obj['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        out = stack.kubectl("apply", "-f", str(path)).stdout.strip()
        stack.say(out)
        files.append(path)
    return files


def statuses(stack: Stack) -> dict[str, dict[str, Any]]:
    """``kind/name`` → status of every Zhufu resource."""
    items = stack.get("judgetrainings,curationjobs,grporuns")["items"]
    return {f"{o['kind']}/{o['metadata']['name']}": o.get("status") or {} for o in items}


def wait(stack: Stack, flow: Flow, during: Any = None) -> dict[str, dict[str, Any]]:
    """``kubectl wait --for=condition=Succeeded`` on the three resources.

    The wait runs in the background while the statuses are polled, so a resource that
    ``Failed`` ends the wait at once with the diagnostics; ``during(stack, statuses)`` is
    called on every poll (fault injection).
    """
    cmd = [str(BIN / "kubectl"), "wait", "--for=condition=Succeeded", *flow.names(),
           f"--timeout={int(flow.timeout_s)}s"]
    waiter = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=stack.env(), cwd=stack.workdir)
    last: dict[str, str] = {}
    try:
        while waiter.poll() is None:
            current = statuses(stack)
            phases = {k: f"{v.get('phase', '-')}/{v.get('reason', '-')}"
                      for k, v in current.items()}
            flow.run_while_running |= {k for k, v in current.items()
                                       if v.get("phase") == "Running" and v.get("mlflowRunId")}
            if phases != last:
                stack.say("phases: " + ", ".join(f"{k} {v}" for k, v in sorted(phases.items())))
                last = phases
            failed = [k for k, v in current.items() if v.get("phase") == "Failed"]
            if failed:
                raise StepFailed(f"{', '.join(failed)} Failed: "
                                 + "; ".join(current[k].get("message", "") for k in failed))
            if during is not None:
                during(stack, current)
            time.sleep(1 if during is not None else 3)  # faults watch for checkpoints
        out = waiter.stdout.read() if waiter.stdout else ""
        if waiter.returncode != 0:
            raise StepFailed(f"kubectl wait failed ({waiter.returncode}):\n{out}")
        stack.say(out.strip())
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    return statuses(stack)


def _mlflow(stack: Stack, path: str, **params: str) -> dict[str, Any]:
    url = f"{stack.mlflow.uri}/api/2.0/mlflow/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def check(stack: Stack, flow: Flow, final: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The checks of a finished flow; returns the summary JSON object (raises on a miss)."""
    problems: list[str] = []
    registered: dict[str, str] = {}
    for key, st in sorted(final.items()):
        if st.get("phase") != "Succeeded":
            problems.append(f"{key}: phase {st.get('phase')}")
        run_id = st.get("mlflowRunId")
        if not run_id:
            problems.append(f"{key}: status has no mlflowRunId")
        else:
            run = _mlflow(stack, "runs/get", run_id=run_id)["run"]
            if run["info"]["status"] != "FINISHED":
                problems.append(f"{key}: MLflow run {run_id} is {run['info']['status']}")
        if not st.get("registered"):
            problems.append(f"{key}: status.registered is empty")
        for name, version in (st.get("registered") or {}).items():
            registered[name] = str(version).rsplit("/", 1)[-1]
    versions = _mlflow(stack, "model-versions/search", filter="name='zhufu-policy'")
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for v in versions.get("model_versions", []):
        stage = {t["key"]: t["value"] for t in v.get("tags", [])}.get("zhufu.stage", "?")
        by_stage.setdefault(stage, []).append(v)
    for stage in ("sft", "grpo"):
        if len(by_stage.get(stage, [])) != 1:
            problems.append(f"zhufu-policy: {len(by_stage.get(stage, []))} versions from the "
                            f"{stage} stage, expected exactly 1")
    if not problems:
        sft_version, grpo_version = by_stage["sft"][0], by_stage["grpo"][0]
        tags = {t["key"]: t["value"] for t in grpo_version.get("tags", [])}
        want = f"models:/zhufu-policy/{sft_version['version']}"
        if tags.get("base_policy") != want:
            problems.append(f"zhufu-policy lineage: base_policy = {tags.get('base_policy')!r}, "
                            f"expected the SFT version {want}")
        for reward, model in (("judge", "zhufu-judge"), ("rm", "zhufu-reward")):
            want = f"{model}/{registered.get(model, '?')}"
            if want not in tags.get(f"reward.{reward}", ""):
                problems.append(f"zhufu-policy lineage: reward.{reward} = "
                                f"{tags.get(f'reward.{reward}')!r}, expected {want}")
    keys = [o["Key"] for page in stack.s3.client().get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET) for o in page.get("Contents", [])]
    parts = [f"curation/{flow.curation}/shard-{i}/report.json" for i in range(flow.shards)]
    for key in parts if flow.shards > 1 else []:  # each shard's part, then the whole
        if key not in keys:
            problems.append(f"s3://{BUCKET}/{key}: missing (a shard's part)")
    shards = final.get(f"CurationJob/{flow.curation}", {}).get("shards")
    if flow.shards > 1 and shards != f"{flow.shards}/{flow.shards}":
        problems.append(f"CurationJob/{flow.curation}: status.shards {shards!r}, expected "
                        f"{flow.shards}/{flow.shards}")
    for prefix in ("artifacts/", f"checkpoints/{flow.grpo}/", f"curation/{flow.curation}/"):
        if not any(k.startswith(prefix) for k in keys):
            problems.append(f"s3://{BUCKET}/{prefix}: no objects")
    if f"GRPORun/{flow.grpo}" not in flow.run_while_running:
        problems.append(f"GRPORun/{flow.grpo}: status never named its MLflow run while Running")
    if problems:
        raise StepFailed("checks failed:\n  " + "\n  ".join(problems))
    return {"phases": {k: v.get("phase") for k, v in sorted(final.items())},
            "registered": dict(sorted(registered.items())), "grpo_nodes": flow.nodes,
            "curation_shards": flow.shards,
            "mlflow_run_while_running": sorted(flow.run_while_running),
            "seconds": round(time.monotonic() - flow.started)}
