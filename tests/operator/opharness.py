"""Helpers for running the real operator against the emulator, and for playing the Job
controller (the emulator has no controller-manager: tests create pods and write statuses).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kmock
import yaml
from kube_emulator import KubeEmulator

from zhufu.operator.crds import crd
from zhufu.operator.spec import KINDS

NS = "default"


@contextlib.asynccontextmanager
async def emulator() -> AsyncIterator[tuple[KubeEmulator, str]]:
    """The emulator on 127.0.0.1 with the Zhufu CRDs installed; yields (emulator, URL)."""
    async with KubeEmulator() as emu, kmock.Server(emu) as server:
        for kind in KINDS.values():
            emu.install_crd(crd(kind))
        emu.create("namespaces", {"metadata": {"name": NS}})
        # The examples' LLM key Secret, opted in as one (zhufu.dev/llm-key).
        emu.create("secrets", {"metadata": {"name": "llm-api-key", "namespace": NS,
                                            "labels": {"zhufu.dev/llm-key": "true"}},
                               "stringData": {"api-key": "example-key"}})
        try:
            yield emu, str(server.url).rstrip("/")
        finally:
            emu.close_watches()


def write_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emu",
        "clusters": [{"name": "emu", "cluster": {"server": url}}],
        "users": [{"name": "emu", "user": {"token": "emulator"}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "emu",
                                                 "namespace": NS}}],
    }))
    return path


@dataclass
class Operator:
    """The operator as the chart runs it (``zhufu-operator``: ``kopf run --standalone -m
    zhufu.operator.handlers`` scoped by ``ZHUFU_NAMESPACE``, here ``default``) as a subprocess."""

    workdir: Path
    url: str
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        kubeconfig = write_kubeconfig(self.workdir / "kubeconfig", self.url)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "ZHUFU_DEPENDENCY_POLL_S": "0.3",
               "ZHUFU_DEPENDENCY_TIMEOUT_S": "4", "ZHUFU_MLFLOW_URI": "http://127.0.0.1:9",
               "ZHUFU_S3_ENDPOINT": "http://s3:9000", "ZHUFU_S3_SECRET": "zhufu-s3",
               "ZHUFU_NAMESPACE": NS, "ZHUFU_ALLOWED_PRIORITY_CLASSES": '["training-high"]',
               **self.env}
        # The console script's body (not .venv/bin/zhufu-operator, which exists only after a
        # reinstall of the package).
        cmd = [sys.executable, "-c", "from zhufu.operator.main import main; main()",
               "--verbose"]
        handle = self.log.open("wb")
        # cwd outside the repo: the repo's operator/ folder would shadow the stdlib module.
        self.proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.workdir, start_new_session=True)

    async def stop(self, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) and wait without blocking the loop the emulator serves on."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + 15
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def tail(self, n: int = 60) -> str:
        logs = sorted(self.workdir.glob("operator-*.log"))
        return "\n".join("\n".join(p.read_text(errors="replace").splitlines()[-n:])
                         for p in logs)


async def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0,
                   op: Operator | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if op is not None and op.proc is not None and op.proc.poll() is not None:
            raise AssertionError(f"operator exited ({op.proc.returncode}) while waiting for "
                                 f"{what}\n{op.tail()}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n"
                         + (op.tail() if op else ""))


def status(emu: KubeEmulator, plural: str, name: str) -> dict[str, Any]:
    obj = emu.get(plural, NS, name) or {}
    return obj.get("status") or {}


def phase_is(emu: KubeEmulator, plural: str, name: str, phase: str, reason: str | None = None
             ) -> Callable[[], bool]:
    def check() -> bool:
        st = status(emu, plural, name)
        return st.get("phase") == phase and (reason is None or st.get("reason") == reason)
    return check


# ------------------------------------------------------------------ playing the Job controller
def start_pods(emu: KubeEmulator, job_name: str) -> list[dict[str, Any]]:
    """Create the Job's pods the way the Job controller would (labels, owner, index)."""
    job = emu.get("jobs", NS, job_name)
    assert job is not None, f"no Job {job_name}"
    template = job["spec"]["template"]
    pods = []
    for index in range(int(job["spec"].get("completions", 1))):
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"{job_name}-{index}-x{len(emu.objects('pods'))}", "namespace": NS,
                "labels": {**template["metadata"]["labels"], "job-name": job_name},
                "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                                     "uid": job["metadata"]["uid"], "controller": True,
                                     "blockOwnerDeletion": True}],
            },
            "spec": template["spec"],
        }
        pods.append(emu.create("pods", pod))
    emu.patch("jobs", NS, job_name, {"status": {"startTime": "2026-01-01T00:00:00Z",
                                                 "active": len(pods)}}, status=True)
    return pods


def pod_status(emu: KubeEmulator, pod: str, phase: str, **container: Any) -> None:
    """Write a pod status: ``waiting=…``, ``terminated=…`` or ``running=…`` container state."""
    state = {k: v for k, v in container.items() if k in ("waiting", "running", "terminated")}
    cs = {"name": "trainer", "ready": phase == "Running", "restartCount": 0, "image": "x",
          "imageID": "", "state": state or {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}
    emu.patch("pods", NS, pod, {"status": {"phase": phase, "containerStatuses": [cs]}},
              status=True)


def job_condition(emu: KubeEmulator, job: str, ctype: str, reason: str, message: str = ""
                  ) -> None:
    cond = {"type": ctype, "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T01:00:00Z"}
    body: dict[str, Any] = {"conditions": [cond], "active": 0}
    if ctype == "Complete":
        body.update(succeeded=1, completionTime="2026-01-01T01:00:00Z")
    else:
        body["failed"] = 1
    emu.patch("jobs", NS, job, {"status": body}, status=True)


def finish(emu: KubeEmulator, job_name: str, result_json: str) -> None:
    """Succeed the Job: its pods terminate with ``result_json`` as termination message."""
    for pod in emu.objects("pods", NS):
        if pod["metadata"]["labels"].get("zhufu.dev/job") == job_name:
            pod_status(emu, pod["metadata"]["name"], "Succeeded", terminated={
                "exitCode": 0, "reason": "Completed", "message": result_json})
    job_condition(emu, job_name, "SuccessCriteriaMet", "CompletionsReached")
    job_condition(emu, job_name, "Complete", "CompletionsReached")


def events_for(emu: KubeEmulator, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events posted about object ``name``."""
    return [(e.get("type", ""), e.get("reason", ""), e.get("message", ""))
            for e in emu.objects("events", NS)
            if (e.get("involvedObject") or {}).get("name") == name]
