"""Resume: ``zhufu curate`` killed with SIGKILL mid-run, restarted, loses nothing and repeats
no answered LLM call.

A real OpenAI-compatible server (``agent_server.py``, its own process on 127.0.0.1) logs
every request body as it arrives and every answer as it is sent. The test lets the first
``zhufu curate`` process get some answers, then makes the server hold every new request (so
calls are in flight, unanswered, at the kill), waits for the answered ones to be journaled,
and SIGKILLs the process. The restarted process must finish with the same pairs and trace
verdicts as an uninterrupted run; the server must never see again a request it had answered
(only the held, never-answered ones may come again).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from zhufu.pipeline.config import CurateConfig
from zhufu.pipeline.curation.stage import run_curation

BIN = Path(sys.executable).parent
SERVER = Path(__file__).with_name("agent_server.py")

pytestmark = pytest.mark.integration


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, data: dict | None = None) -> dict:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _wait(pred: Any, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _canon(body: dict) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


@pytest.fixture
def agent_server(tmp_path: Path) -> Any:
    port = _port()
    log = tmp_path / "server.jsonl"
    out = (tmp_path / "server.out").open("wb")
    proc = subprocess.Popen([sys.executable, "-P", str(SERVER), "--port", str(port), "--log",
                             str(log), "--latency", "0.02"], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            _http(f"{url}/stats")
            return True
        except OSError:
            return False

    try:
        _wait(up, 30, "the agent server", proc)
        yield url, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        out.close()


def test_killed_run_resumes_without_repeating_answered_calls(
        curation_set: Any, tmp_path: Path, agent_server: Any) -> None:
    url, log = agent_server
    cfg = {"responses": str(curation_set.labelled), "exemplars": str(curation_set.exemplars),
           "dev_labels": str(curation_set.labelled), "output_dir": str(tmp_path / "resumed"),
           "debate": {"rounds": 2},
           "llm": {"backend": "openai", "model": "agents", "base_url": f"{url}/v1",
                   "concurrency": 4, "max_retries": 1, "timeout_s": 60}}
    cfg_path = tmp_path / "curate.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "ZHUFU_HOME": str(tmp_path / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [str(BIN / "zhufu"), "curate", "--config", str(cfg_path), "--no-progress"]
    total_calls = 12 * 6  # 12 candidates × (2 debate rounds × 2 + judge + reflect)

    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        _wait(lambda: _http(f"{url}/stats")["answered"] >= 25, 120, "25 answers", first)
        _http(f"{url}/control", {"hold": True})
        _wait(lambda: (lambda s: s["held"] >= 1 and s["requests"] == s["answered"] + s["held"])(
            _http(f"{url}/stats")), 30, "calls held in flight", first)
        time.sleep(0.5)  # the client journals the answers it got
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    _http(f"{url}/control", {"hold": False})
    phase1 = _log(log)
    answered = {e["n"] for e in phase1 if e["event"] == "answered"}
    bodies1 = {e["n"]: _canon(e["body"]) for e in phase1 if e["event"] == "request"}
    answered_bodies = {bodies1[n] for n in answered}
    held_bodies = {b for n, b in bodies1.items() if n not in answered}
    assert 25 <= len(answered_bodies) < total_calls and held_bodies
    journal = (tmp_path / "resumed" / "journal.jsonl").read_text(encoding="utf-8")
    kinds = [json.loads(line).get("kind") for line in journal.splitlines() if line.strip()]
    assert kinds.count("call") == len(answered_bodies)
    assert not (tmp_path / "resumed" / "pairs.json").exists()

    second = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    result = json.loads(second.stdout.decode().strip().splitlines()[-1])
    assert result["stage"] == "curate" and result["mlflow_run_id"]
    assert result["outputs"]["pairs"].endswith("pairs.json")
    phase2 = _log(log)[len(phase1):]
    bodies2 = [_canon(e["body"]) for e in phase2 if e["event"] == "request"]
    assert not answered_bodies & set(bodies2), "an answered request was sent again"
    assert len(bodies2) == len(set(bodies2))
    assert set(bodies2) & set(bodies1.values()) <= held_bodies

    # the uninterrupted reference run, same server, fresh journal
    mark = len(_log(log))
    ref_cfg = CurateConfig.model_validate({**cfg, "output_dir": str(tmp_path / "reference")})
    ref = run_curation(ref_cfg, progress=False)
    bodies_ref = [_canon(e["body"]) for e in _log(log)[mark:] if e["event"] == "request"]
    assert len(bodies_ref) == total_calls == len(set(bodies_ref))
    assert answered_bodies | set(bodies2) == set(bodies_ref)

    resumed_pairs = (tmp_path / "resumed" / "pairs.json").read_text(encoding="utf-8")
    assert resumed_pairs == (tmp_path / "reference" / "pairs.json").read_text(encoding="utf-8")
    assert ref.pairs  # the comparison is not between two empty files
    resumed = [json.loads(line) for line in (tmp_path / "resumed" / "trace.jsonl")
               .read_text(encoding="utf-8").splitlines()]
    assert [t["final"] for t in resumed] == [t["final"] for t in ref.traces]
    assert [t["debate"] for t in resumed] == [t["debate"] for t in ref.traces]
