"""Play the scheduler and the kubelet of one node: run the emulator's pods as local processes.

No container runtime exists here, so :class:`Kubelet` takes every pod stored in the emulator,
sets it up with :class:`podspec.PodSetup` (folders, env, API access, loopback network) and
writes the pod status a real kubelet writes:

- **scheduling**: a pod asking for more than the node has (GPUs: this node has none) stays
  ``Pending`` with ``PodScheduled=False``/``Unschedulable`` and the scheduler's message;
  requests are compared per pod, not summed over running pods (a simplification);
- a container that cannot start yet (missing Secret or key) waits with
  ``CreateContainerConfigError`` and is retried;
- **running**: ``Running`` with the container ``running``; ``Ready`` once its readiness
  ``httpGet`` probe answers 2xx (at once without a probe); output goes to a log file that
  ``kubectl logs`` serves;
- **exit**: ``terminated`` with the exit code (128+signal when killed), reason
  ``Completed``/``Error`` and the termination message: the file at
  ``terminationMessagePath``, else with ``FallbackToLogsOnError`` the log's last 80 lines /
  2048 bytes. ``restartPolicy: Never`` ends the pod ``Succeeded``/``Failed``; ``Always``
  (and ``OnFailure`` on an error) restarts the container in place after a doubling
  back-off (``CrashLoopBackOff``), counting ``restartCount``;
- **deletion**: a pod marked for deletion gets SIGTERM, then SIGKILL after its grace period;
  a running pod that vanished from the store at once (the emulator removes a pod without
  finalizers on DELETE, where a real API server keeps it until the kubelet stopped it: a
  Deployment's pod on ``kubectl scale --replicas=0``) is stopped the same way.

A container is the set of processes carrying ``ZHUFU_E2E_POD=<cluster>/<pod uid>`` in their
environment (inherited by every child, like a cgroup): torchrun starts its workers in new
sessions, so a process group would miss them. Stopping a container signals its main process
group, then SIGKILLs every process so marked; :meth:`Kubelet.stop` and
:func:`kill_marked` (for a supervisor after a crash) do the same for the whole cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube_admission import pod_requests, quantity
from kube_emulator import ApiError, KubeEmulator
from podspec import PodNotReady, PodSetup, Prepared

#: What this node offers; a pod asking for more of any of these is Unschedulable.
NODE_ALLOCATABLE = {"requests.cpu": quantity("64"), "requests.memory": quantity("512Gi"),
                    "requests.pods": quantity("110")}
TERMINAL = ("Succeeded", "Failed")
MARK = "ZHUFU_E2E_POD"


def marked(prefix: str) -> list[int]:
    """Pids whose environment has ``ZHUFU_E2E_POD`` starting with ``prefix``."""
    needle = f"{MARK}={prefix}".encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if any(var.startswith(needle) for var in env):
            out.append(int(entry))
    return out


def kill_marked(prefix: str) -> int:
    """SIGKILL every process marked with ``prefix``; how many there were."""
    pids = marked(prefix)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Running:
    """One pod's container: its current process and how to run it again."""

    namespace: str
    name: str
    prepared: Prepared
    log: Path
    restart: str  # restartPolicy
    mark: str  # ZHUFU_E2E_POD value of its processes
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    ready: bool = False
    killed: bool = False
    grace: int = 30  # terminationGracePeriodSeconds
    started: float = field(default_factory=time.monotonic)


class Kubelet:
    """Runs the emulator's pods; call :meth:`sync` whenever the store changes."""

    def __init__(self, emu: KubeEmulator, workdir: Path, api_url: str = "",
                 retry_s: float = 2.0, extra_env: dict[str, str] | None = None) -> None:
        self.emu = emu
        self.workdir = workdir
        self.cluster_id = uuid.uuid4().hex[:12]
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "cluster.id").write_text(self.cluster_id)
        self.setup = PodSetup(emu, api_url)
        self.retry_s = retry_s
        self.extra_env = extra_env or {}
        self.running: dict[tuple[str, str], Running] = {}
        self.done: set[tuple[str, str]] = set()
        self._next_try: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the loop body
    async def sync(self) -> None:
        """Start pods that should run, kill pods marked for deletion or gone."""
        pods = self.emu.objects("pods")
        present = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
        for key, run in list(self.running.items()):
            if key not in present and not run.killed:
                self._kill(run, {"metadata": {}, "spec": {
                    "terminationGracePeriodSeconds": run.grace}})
        for pod in pods:
            meta = pod["metadata"]
            key = (meta["namespace"], meta["name"])
            phase = (pod.get("status") or {}).get("phase")
            if meta.get("deletionTimestamp"):
                if key in self.running:
                    if not self.running[key].killed:
                        self._kill(self.running[key], pod)
                elif phase not in TERMINAL:
                    self._terminated(pod, 137, "Error", "deleted before it started")
                    self.done.add(key)
                continue
            if key in self.running or key in self.done:
                continue
            if phase in TERMINAL:
                self.done.add(key)
                continue
            if time.monotonic() >= self._next_try.get(key, 0):
                await self._start(pod)

    async def stop(self) -> None:
        """Kill every process of every pod (SIGKILL) and wait for them."""
        for run in list(self.running.values()):
            run.killed = True
        kill_marked(self.cluster_id + "/")
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ status writes
    def _status(self, ns: str, name: str, body: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):  # deleted meanwhile
            self.emu.patch("pods", ns, name, {"status": body}, status=True)

    def _container(self, pod: dict[str, Any], state: dict[str, Any], ready: bool = False,
                   restarts: int = 0, last: dict[str, Any] | None = None) -> dict[str, Any]:
        c = pod["spec"]["containers"][0]
        out = {"name": c["name"], "image": c.get("image", ""), "imageID": "",
               "containerID": "", "ready": ready, "started": "running" in state,
               "restartCount": restarts, "state": state}
        if last:
            out["lastState"] = last
        return out

    @staticmethod
    def _conditions(scheduled: bool, ready: bool) -> list[dict[str, Any]]:
        out = [{"type": "PodScheduled", "status": "True" if scheduled else "False",
                "lastTransitionTime": now()}]
        if scheduled:
            out += [{"type": t, "status": "True" if ready or t == "Initialized" else "False",
                     "lastTransitionTime": now()}
                    for t in ("Initialized", "ContainersReady", "Ready")]
        return out

    def _terminated(self, pod: dict[str, Any], exit_code: int, reason: str,
                    message: str) -> None:
        meta = pod["metadata"]
        term = {"exitCode": exit_code, "reason": reason, "message": message,
                "startedAt": now(), "finishedAt": now()}
        self._status(meta["namespace"], meta["name"], {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": self._conditions(True, False),
            "containerStatuses": [self._container(pod, {"terminated": term})]})

    # ------------------------------------------------------------------ starting a pod
    def _unschedulable(self, pod: dict[str, Any]) -> str | None:
        wanted = pod_requests(pod)
        short = sorted(k.removeprefix("requests.") for k, v in wanted.items()
                       if v > NODE_ALLOCATABLE.get(k, quantity(0)))
        if not short:
            return None
        return ("0/1 nodes are available: " + ", ".join(f"1 Insufficient {r}" for r in short)
                + ". preemption: 0/1 nodes are available: 1 No preemption victims found for "
                "incoming pod.")

    async def _start(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        key = (ns, name)
        why = self._unschedulable(pod)
        if why:
            cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": why}
            old = [{k: c.get(k) for k in cond} for c in (pod.get("status") or {}).get(
                "conditions") or []]
            if old != [cond]:
                self._status(ns, name, {"phase": "Pending",
                                        "conditions": [{**cond, "lastTransitionTime": now()}]})
            self._next_try[key] = time.monotonic() + self.retry_s * 5
            return
        root = self.workdir / "pods" / ns / name
        try:
            prepared = self.setup.prepare(pod, root)
        except PodNotReady as e:
            self._status(ns, name, {
                "phase": "Pending", "hostIP": "127.0.0.1",
                "conditions": self._conditions(True, False),
                "containerStatuses": [self._container(
                    pod, {"waiting": {"reason": e.reason, "message": e.message}})]})
            self._next_try[key] = time.monotonic() + self.retry_s
            return
        prepared.env.update(self.extra_env)
        mark = f"{self.cluster_id}/{meta['uid']}"
        prepared.env[MARK] = mark
        run = Running(ns, name, prepared, root / "container.log",
                      pod["spec"].get("restartPolicy", "Always"), mark,
                      grace=int(pod["spec"].get("terminationGracePeriodSeconds", 30)))
        self.emu.pod_logs[key] = run.log
        self.running[key] = run
        self._spawn(self._lifecycle(run, pod))

    async def _launch(self, run: Running) -> bool:
        p = run.prepared
        p.termination.unlink(missing_ok=True)
        with run.log.open("ab") as handle:
            try:
                run.proc = await asyncio.create_subprocess_exec(
                    *p.command, env=p.env, cwd=p.cwd, stdout=handle,
                    stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True)
            except OSError as e:
                handle.write(f"failed to start {p.command[0]!r}: {e}\n".encode())
                return False
        return True

    async def _lifecycle(self, run: Running, pod: dict[str, Any]) -> None:
        """Run the container, restarting it as ``restartPolicy`` says, until the pod ends."""
        key = (run.namespace, run.name)
        last: dict[str, Any] | None = None
        backoff = 1.0
        while True:
            if await self._launch(run):
                assert run.proc is not None
                code = await self._running(run, pod, last)
                exit_code = 128 - code if code < 0 else code
                message = _termination_message(run, exit_code)
                reason = "Completed" if exit_code == 0 else "Error"
            else:  # like a container runtime's "executable file not found"
                exit_code, reason = 128, "StartError"
                message = f"failed to start {run.prepared.command[0]!r}: not found"
            restart = not run.killed and (run.restart == "Always" or (
                run.restart == "OnFailure" and exit_code != 0))
            if not restart:
                self._terminated(pod, exit_code, reason, message)
                break
            run.restarts += 1
            last = {"terminated": {"exitCode": exit_code, "message": message,
                                   "reason": reason, "finishedAt": now()}}
            self._status(run.namespace, run.name, {
                "phase": "Running", "conditions": self._conditions(True, False),
                "containerStatuses": [self._container(pod, {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {backoff:.0f}s restarting failed container"}},
                    False, run.restarts, last)]})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            if run.killed:
                self._terminated(pod, exit_code, reason, message)
                break
        self.running.pop(key, None)
        self.done.add(key)

    async def _running(self, run: Running, pod: dict[str, Any], last: dict[str, Any] | None
                       ) -> int:
        """Report the started container ``Running`` (probing readiness); its exit status."""
        assert run.proc is not None
        run.ready = run.prepared.probe is None
        self._status(run.namespace, run.name, {
            "phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}], "startTime": now(),
            "conditions": self._conditions(True, run.ready),
            "containerStatuses": [self._container(
                pod, {"running": {"startedAt": now()}}, run.ready, run.restarts, last)]})
        probe = asyncio.create_task(self._probe(run, pod, last)) \
            if run.prepared.probe else None
        code = await run.proc.wait()
        if probe is not None:
            probe.cancel()
        kill_marked(run.mark)  # the container's other processes go with it
        return code

    async def _probe(self, run: Running, pod: dict[str, Any], last: dict[str, Any] | None
                     ) -> None:
        """The readiness probe: ``Ready`` follows whether GET port/path answers 2xx."""
        assert run.prepared.probe is not None
        port, path, period = run.prepared.probe
        url = f"http://127.0.0.1:{port}{path}"
        while True:
            await asyncio.sleep(period)
            try:
                ok = await asyncio.to_thread(_http_ok, url)
            except OSError:
                ok = False
            if ok != run.ready:
                run.ready = ok
                self._status(run.namespace, run.name, {
                    "conditions": self._conditions(True, ok),
                    "containerStatuses": [self._container(
                        pod, {"running": {"startedAt": now()}}, ok, run.restarts, last)]})

    # ------------------------------------------------------------------ stopping a pod
    def _kill(self, run: Running, pod: dict[str, Any]) -> None:
        run.killed = True
        if run.proc is None or run.proc.returncode is not None:
            return
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.proc.pid, signal.SIGKILL if int(grace) == 0 else signal.SIGTERM)
        proc = run.proc

        async def escalate() -> None:
            await asyncio.sleep(float(grace))
            if proc.returncode is None:
                kill_marked(run.mark)
        if int(grace) > 0:
            self._spawn(escalate())
        else:
            kill_marked(run.mark)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return 200 <= resp.status < 300


def _termination_message(run: Running, exit_code: int) -> str:
    """The termination file, else (FallbackToLogsOnError, on error) the log's tail."""
    path = run.prepared.termination
    if path.exists():
        text = path.read_text(encoding="utf-8", errors="replace")[:4096]
        if text:
            return text
    if exit_code != 0 and run.prepared.policy == "FallbackToLogsOnError" and run.log.exists():
        lines = run.log.read_bytes().splitlines(keepends=True)[-80:]
        return b"".join(lines)[-2048:].decode("utf-8", errors="replace")
    return ""
