"""A one-node "cluster" on 127.0.0.1: the API emulator, the Job controller and a kubelet.

:class:`Cluster` serves the emulator (:mod:`kube_emulator`, with ServiceAccount and
ResourceQuota admission on) over HTTP and runs, on every change to the store, the Job
controller (:mod:`jobcontroller`), the Deployment controller (:mod:`deployments`), the
kubelet (:mod:`kubelet`) and the ServiceAccount controller's one duty here (a ``default``
ServiceAccount in every namespace). Nothing is
preinstalled beyond the ``default`` namespace: CRDs, Secrets and ServiceAccounts come in
through the API, e.g. ``kubectl apply -f charts/zhufu/crds/``.

Run it as its own process (what ``make e2e`` does)::

    python -P tests/e2e/cluster.py --workdir DIR

It writes ``DIR/kubeconfig`` (pointing at the emulator) once it serves, and on SIGTERM kills
every pod's process group before it exits. Tests can also use it in-process:
``async with Cluster(workdir) as cluster: …``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _dir in (HERE, HERE.parent / "operator"):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))

import kmock  # noqa: E402
import yaml  # noqa: E402
from deployments import DeploymentController  # noqa: E402
from jobcontroller import JobController  # noqa: E402
from kube_emulator import ApiError, KubeEmulator  # noqa: E402
from kubelet import Kubelet  # noqa: E402

NAMESPACE = "default"


def kubeconfig(url: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    """A kubeconfig for the emulator (the token is not checked)."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "emulator", "user": {"token": "emulator"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator",
                                                      "namespace": namespace}}],
    }


class Cluster:
    """The emulator on a free port of 127.0.0.1 plus its controllers; an async context."""

    def __init__(self, workdir: Path, retry_s: float = 1.0, create_retry_s: float = 5.0,
                 pod_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.emu = KubeEmulator(admission=True)
        self.jobs = JobController(self.emu, retry_s=retry_s, create_retry_s=create_retry_s)
        self.deployments = DeploymentController(self.emu)
        self.kubelet = Kubelet(self.emu, workdir, extra_env=pod_env)
        self._server: kmock.Server | None = None
        self._loop: asyncio.Task[None] | None = None
        self.url = ""
        self.errors: list[str] = []
        self._closing = False

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "kubeconfig"

    async def __aenter__(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.emu.__aenter__()
        self._server = kmock.Server(self.emu)
        await self._server.__aenter__()
        self.url = str(self._server.url).rstrip("/")
        self.kubelet.setup.api_url = self.url
        self.emu.create("namespaces", {"metadata": {"name": NAMESPACE}})
        self.kubeconfig_path.write_text(yaml.safe_dump(kubeconfig(self.url)))
        self._loop = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True  # the loop ends at its next turn even if the cancel is lost
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await self.kubelet.stop()
        self.emu.close_watches()
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
        await self.emu.__aexit__(None, None, None)

    async def _run(self) -> None:
        while not self._closing:
            try:
                self._service_accounts()
                self.jobs.sync()
                self.deployments.sync()
                await self.kubelet.sync()
            except Exception as e:  # noqa: BLE001 - keep serving; the error is reported
                self.errors.append(repr(e))
                print(f"cluster loop error: {e!r}", file=sys.stderr, flush=True)
            await self.emu.changed(timeout=0.5)

    def _service_accounts(self) -> None:
        for ns in self.emu.objects("namespaces"):
            name = ns["metadata"]["name"]
            if self.emu.get("serviceaccounts", name, "default") is None:
                with contextlib.suppress(ApiError):
                    self.emu.create("serviceaccounts", {"metadata": {
                        "name": "default", "namespace": name}})


async def _main(workdir: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Cluster(workdir) as cluster:
        print(f"serving {cluster.url}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.workdir))


if __name__ == "__main__":
    main()
