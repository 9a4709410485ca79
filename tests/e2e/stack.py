"""Everything the cluster path needs, started on 127.0.0.1 and stopped by process group.

:class:`Stack` (a context manager) starts, in order:

1. ``moto_server`` (S3) and a real ``mlflow server`` whose artifacts live in the bucket
   ``zhufu`` (the servers of ``tests/conftest.py``);
2. the OpenAI-compatible stand-in LLM (``tests/reliability/chaos_llm.py`` with no faults:
   deterministic answers in each curation agent's contract);
3. the one-node cluster (``tests/e2e/cluster.py``: API emulator, Job and Deployment
   controllers, kubelet) as its own process;

then installs Zhufu the way a user would, only through the real ``kubectl``: the chart
rendered by the real ``helm template`` (CRDs included; MLflow, S3 endpoint and the S3
Secret pointed at the servers above) piped into ``kubectl apply -f -``, plus the S3
credentials Secret. The chart's operator Deployment becomes a pod that the kubelet runs as
``kopf run …`` — the chart's own command, args and env. On exit every server is stopped
and every pod's processes killed, also when something failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # appended: the repo's operator/ must not shadow the stdlib

from kubelet import kill_marked  # noqa: E402

from tests.conftest import (  # noqa: E402
    BIN,
    MLflowServer,
    S3Server,
    free_port,
    running_mlflow_server,
    running_s3_server,
    start_server,
    stop_server,
    wait_http,
)

NAMESPACE = "default"
BUCKET = "zhufu"
S3_SECRET = "zhufu-s3"
OPERATOR = "deploy/zhufu-operator"
CHAOS_LLM = REPO / "tests" / "reliability" / "chaos_llm.py"


class StepFailed(RuntimeError):
    """A command of the flow failed; the message holds its output."""


class Stack(contextlib.ExitStack):
    """The servers, the cluster and the installed chart; ``kubectl``/``helm`` helpers."""

    def __init__(self, workdir: Path, recheck_s: float = 5.0, log: Any = None) -> None:
        super().__init__()
        self.workdir = workdir
        self.recheck_s = recheck_s
        self.out = log or sys.stderr
        self.s3: S3Server
        self.mlflow: MLflowServer
        self.llm_url = ""
        self.cluster: subprocess.Popen[bytes] | None = None
        self.kubeconfig = workdir / "cluster" / "kubeconfig"

    def say(self, text: str) -> None:
        print(f"[e2e {time.strftime('%H:%M:%S')}] {text}", file=self.out, flush=True)

    # ------------------------------------------------------------------ start / stop
    def __enter__(self) -> Stack:
        super().__enter__()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        for sub in ("s3", "mlflow", "llm", "cluster", "kube-cache"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self.s3 = self.enter_context(running_s3_server(self.workdir / "s3"))
        self.mlflow = self.enter_context(running_mlflow_server(
            self.s3, self.workdir / "mlflow", bucket=BUCKET, timeout=300))
        self.say(f"S3 {self.s3.endpoint}, MLflow {self.mlflow.uri}")
        port = free_port()
        llm = start_server([sys.executable, "-P", str(CHAOS_LLM), "--port", str(port),
                            "--log", str(self.workdir / "llm" / "requests.jsonl"),
                            "--fault-rate", "0"], self.workdir / "llm" / "server.log")
        self.callback(stop_server, llm)
        wait_http(f"http://127.0.0.1:{port}/health", 30, llm)
        self.llm_url = f"http://127.0.0.1:{port}/v1"
        self.cluster = start_server(
            [sys.executable, "-P", str(HERE / "cluster.py"), "--workdir",
             str(self.workdir / "cluster")], self.workdir / "cluster.log")
        self.callback(self._stop_cluster)
        deadline = time.monotonic() + 60
        while not self.kubeconfig.exists():
            if self.cluster.poll() is not None or time.monotonic() > deadline:
                raise StepFailed("the cluster did not start:\n" + self.tail("cluster.log"))
            time.sleep(0.2)
        self.say(f"cluster up; LLM stand-in {self.llm_url}")
        self.install()

    def _stop_cluster(self) -> None:
        if self.cluster is not None:
            stop_server(self.cluster)
        cluster_id = self.workdir / "cluster" / "cluster.id"
        if cluster_id.exists():  # in case the cluster died before killing its pods
            left = kill_marked(cluster_id.read_text().strip() + "/")
            if left:
                self.say(f"killed {left} pod processes the cluster left behind")

    # ------------------------------------------------------------------ commands
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "KUBECACHEDIR": str(self.workdir / "kube-cache"),
                "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
                "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
                "HELM_DATA_HOME": str(self.workdir / "helm" / "data")}

    def run(self, *argv: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl``/``helm`` (from the venv) against the cluster; raise on failure."""
        cmd = [str(BIN / argv[0]), *argv[1:]]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              env=self.env(), timeout=timeout, cwd=self.workdir)
        if check and proc.returncode != 0:
            raise StepFailed(f"$ {' '.join(argv)}\nexit {proc.returncode}\n{proc.stdout}"
                             f"{proc.stderr}")
        return proc

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kw)

    def get(self, *args: str) -> dict[str, Any]:
        """``kubectl get … -o json`` parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / name
        if not path.exists():
            return f"({name}: no such file)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------------ install
    def chart_values(self) -> list[str]:
        """``--set`` flags pointing the chart at this stack's MLflow and S3."""
        return ["--set", "rbac.singleNamespace=true",
                "--set", f"mlflow.trackingUri={self.mlflow.uri}",
                "--set", f"s3.endpoint={self.s3.endpoint}",
                "--set", f"s3.existingSecret={S3_SECRET}",
                "--set", "operator.dependencyPollSeconds=2",
                # one team: no per-namespace S3 prefix or MLflow names (the flow's paths and
                # names are the single-team ones; tenancy: tests/reliability/test_tenancy_*)
                "--set-string", "tenancy.s3PrefixTemplate=",
                "--set", "tenancy.mlflowNamePrefix=false",
                "--set", "operator.extraEnv[0].name=ZHUFU_RECHECK_INTERVAL_S",
                "--set-string", f"operator.extraEnv[0].value={self.recheck_s:g}"]

    def install(self) -> None:
        """The S3 Secret, then the chart (CRDs, RBAC, ServiceAccounts, operator)."""
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": S3_SECRET, "namespace": NAMESPACE},
                  "stringData": {"AWS_ACCESS_KEY_ID": "testing",
                                 "AWS_SECRET_ACCESS_KEY": "testing"}}
        self.kubectl("apply", "-f", "-", stdin=json.dumps(secret))
        rendered = self.run("helm", "template", "zhufu", str(REPO / "charts" / "zhufu"),
                            "--namespace", NAMESPACE, "--include-crds",
                            *self.chart_values()).stdout
        (self.workdir / "chart.yaml").write_text(rendered)
        self.kubectl("apply", "-f", "-", stdin=rendered)
        self.kubectl("rollout", "status", OPERATOR, "--timeout=120s", timeout=150)
        self.say("chart applied; operator ready")

    def diagnostics(self) -> str:
        """What a user would look at after a failure: statuses, events, pods, logs."""
        parts = []
        for args in (["get", "judgetrainings,curationjobs,grporuns", "-o", "yaml"],
                     ["get", "jobs,pods"], ["get", "events"],
                     ["logs", OPERATOR, "--tail=60"]):
            proc = self.kubectl(*args, check=False)
            parts.append(f"$ kubectl {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        pods = self.workdir / "cluster" / "pods"
        for log in sorted(pods.glob("*/*/container.log")):
            lines = log.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"--- {log.parent.name} (last lines)\n" + "\n".join(lines))
        return "\n\n".join(parts)
