"""Play the kubelet: run a Job's container command as a local process, report like a pod.

No container runtime exists here, so :func:`run_job` takes the Job the operator created (from
the emulator), materialises its volumes as local folders (the ConfigMap's files, emptyDirs,
mounted Secret items), maps every container path in the command and env onto them, resolves
``secretKeyRef``/``fieldRef`` env vars, runs the command (``zhufu`` = this venv's console
script) and then writes what a kubelet and the Job controller would: a pod whose container
terminated with the exit code and the termination message (the result file, or the log tail
on error: ``FallbackToLogsOnError``), and the Job's Complete/Failed condition.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kube_emulator import KubeEmulator
from opharness import NS, job_condition, pod_status, start_pods

BIN = Path(sys.executable).parent


@dataclass
class PodRun:
    exit_code: int
    message: str
    seconds: float
    log: str


def _mount_map(emu: KubeEmulator, pod_spec: dict[str, Any], container: dict[str, Any],
               root: Path, secrets: dict[str, dict[str, str]]) -> dict[str, Path]:
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mapping: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        vol = volumes[mount["name"]]
        local = root / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        if "configMap" in vol:
            cm = emu.get("configmaps", NS, vol["configMap"]["name"])
            assert cm is not None, f"ConfigMap {vol['configMap']['name']} missing"
            for key, text in cm.get("data", {}).items():
                (local / key).write_text(text, encoding="utf-8")
        elif "secret" in vol:
            data = secrets[vol["secret"]["secretName"]]
            for item in vol["secret"].get("items", []):
                (local / item["path"]).write_text(data[item["key"]], encoding="utf-8")
        mapping[mount["mountPath"]] = local
    return mapping


def _localise(value: str, mapping: dict[str, Path], extra: dict[str, Path]) -> str:
    for path, local in sorted({**mapping, **extra}.items(), key=lambda kv: -len(kv[0])):
        if value == path or value.startswith(path + "/"):
            return str(local) + value[len(path):]
    return value


def run_job(emu: KubeEmulator, job_name: str, root: Path,
            secrets: dict[str, dict[str, str]] | None = None,
            extra_env: dict[str, str] | None = None, timeout: float = 600) -> PodRun:
    """Run the Job's (single) pod locally and write pod/Job status into the emulator."""
    secrets = secrets or {}
    job = emu.get("jobs", NS, job_name)
    assert job is not None, f"no Job {job_name}"
    pod = start_pods(emu, job_name)[0]
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    root.mkdir(parents=True, exist_ok=True)
    mapping = _mount_map(emu, spec, container, root, secrets)
    termination = root / "termination-log"
    extra = {container["terminationMessagePath"]: termination}
    env: dict[str, str] = {"PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = _localise(var["value"], mapping, extra)
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
        elif "fieldRef" in var.get("valueFrom", {}):
            env[var["name"]] = pod["metadata"]["annotations"].get(
                "batch.kubernetes.io/job-completion-index", "0")
    env.update(extra_env or {})
    command = [_localise(a, mapping, extra) for a in container["command"]]
    if command[0] == "zhufu":
        command[0] = str(BIN / "zhufu")
    cwd = Path(_localise(container.get("workingDir", "/"), mapping, extra))
    pod_status(emu, pod["metadata"]["name"], "Running")
    started = time.monotonic()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.monotonic() - started
    log = proc.stdout + proc.stderr
    message = termination.read_text(encoding="utf-8") if termination.exists() else ""
    if not message and proc.returncode != 0:
        message = log[-4096:]  # FallbackToLogsOnError
    pod_status(emu, pod["metadata"]["name"], "Succeeded" if proc.returncode == 0 else "Failed",
               terminated={"exitCode": proc.returncode, "message": message,
                           "reason": "Completed" if proc.returncode == 0 else "Error"})
    if proc.returncode == 0:
        job_condition(emu, job_name, "Complete", "CompletionsReached")
    else:
        job_condition(emu, job_name, "Failed", "BackoffLimitExceeded",
                      "Job has reached the specified backoff limit")
    return PodRun(proc.returncode, message, seconds, log)
