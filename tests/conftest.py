"""Shared fixtures: the paper's data (read from ../shared, never copied in) and real servers.

Servers start on 127.0.0.1 in their own process group and are stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data" / "greetings").resolve()
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The paper's released files; tests that need them skip (saying why) where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"paper data not found at {SHARED_DATA}")
    return SHARED_DATA


def paper_greetings(shared: Path) -> set[str]:
    """Every greeting of the paper's SFT data and preference pairs (for the no-copy tests)."""
    import json

    paper = {row["output"] for row in json.loads((shared / "sft_data.json").read_text(
        encoding="utf-8"))}
    for row in json.loads((shared / "reward_data_train.json").read_text(encoding="utf-8")):
        paper.update((row["chosen"]["value"], row["rejected"]["value"]))
    return paper


def shared_runs(ours: Iterable[str], paper: Iterable[str], n: int = 16) -> set[str]:
    """The ``n``-character runs that occur both in one of ``ours`` and in one of ``paper``."""
    def runs(texts: Iterable[str]) -> set[str]:
        return {t[i:i + n] for t in texts for i in range(len(t) - n + 1)}

    return runs(ours) & runs(paper)


@pytest.fixture(scope="session")
def zhufu_home_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory per test session: tiny models and MLflow store built once.

    The Qwen2.5 tokenizer (deterministic, ~5 s CPU to build) and its cut version are built
    once into the repo's ``.zhufu/`` and copied in, so later sessions skip the build.
    """
    from zhufu.pipeline.models.tokenizer import TOKENIZER_DIRNAME, build_tokenizer, install_dir
    from zhufu.pipeline.models.vocab import CUT_DIRNAME, build_cut_tokenizer, source_digest

    home = tmp_path_factory.mktemp("zhufu-home")
    cached = install_dir(build_tokenizer, REPO / ".zhufu" / "models" / TOKENIZER_DIRNAME)
    shutil.copytree(cached, home / "models" / TOKENIZER_DIRNAME)
    cut = f"{CUT_DIRNAME}-{source_digest()}"
    cut_cached = install_dir(lambda d: build_cut_tokenizer(d, full_dir=cached),
                             REPO / ".zhufu" / "models" / cut)
    shutil.copytree(cut_cached, home / "models" / cut)
    return home


@pytest.fixture
def zhufu_home(zhufu_home_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ZHUFU_HOME`` = the session's data dir, ``MLFLOW_TRACKING_URI`` unset (local store).

    Shared by every test that asks for it: register models under names unique to the test
    or compare versions relatively.
    """
    monkeypatch.setenv("ZHUFU_HOME", str(zhufu_home_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return zhufu_home_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def start_server(cmd: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group) with output to ``log``."""
    handle = log.open("wb")
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True)


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the whole process group by PID (mlflow server forks uvicorn and workers)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


@dataclass
class S3Server:
    endpoint: str
    env: dict[str, str]

    def client(self):  # noqa: ANN201 - boto3 client type is dynamic
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@contextlib.contextmanager
def running_s3_server(workdir: Path) -> Iterator[S3Server]:
    """``moto_server`` on a free port of 127.0.0.1, stopped (by process group) on exit."""
    port = free_port()
    proc = start_server([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                        workdir / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{endpoint}/moto-api/", 30, proc)
        env = {"AWS_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
        yield S3Server(endpoint, env)
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 API (moto_server) on 127.0.0.1; the env dict points boto3 clients at it."""
    with running_s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on ``s3_server``, with this test's environment pointing boto3 at it."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    name = f"zhufu-test-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@dataclass
class MLflowServer:
    uri: str
    bucket: str
    s3: S3Server


@contextlib.contextmanager
def running_mlflow_server(s3: S3Server, workdir: Path, bucket: str = "zhufu-mlflow",
                          timeout: float = 240) -> Iterator[MLflowServer]:
    """``mlflow server`` with a sqlite store, artifacts proxied to ``bucket`` on ``s3``.

    Only the server holds AWS settings; clients talk to it over HTTP. Stopped by process
    group on exit (it forks uvicorn and a job runner). ``timeout``: 68 s were seen for
    /health to answer at load average 16 on the shared 2 cores.
    """
    s3.client().create_bucket(Bucket=bucket)
    port = free_port()
    # No MLflow job runner: Zhufu uses none of its jobs, and its huey consumers (7 processes
    # importing mlflow) slowed the server's start to minutes on the shared 2 cores.
    env = {**os.environ, **s3.env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri",
           f"sqlite:///{workdir}/mlflow.db", "--artifacts-destination",
           f"s3://{bucket}/artifacts", "--serve-artifacts", "--host", "127.0.0.1", "--port",
           str(port), "--workers", "1"]
    proc = start_server(cmd, workdir / "mlflow.log", env=env, cwd=workdir)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", timeout, proc)
        yield MLflowServer(uri, bucket, s3)
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def mlflow_server(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[MLflowServer]:
    """``mlflow server`` on 127.0.0.1 whose artifacts land in a bucket on moto_server."""
    if shutil.which("mlflow", path=str(BIN)) is None:
        pytest.skip("mlflow not installed")
    with running_mlflow_server(s3_server, tmp_path_factory.mktemp("mlflow")) as server:
        yield server
