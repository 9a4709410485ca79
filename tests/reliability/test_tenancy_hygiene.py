"""Secret hygiene (issue 17 item 6): credentials stay out of the log tail the operator
copies into status and Events, and out of URLs in status, Events and MLflow params.

The stage is the real ``zhufu`` command (a subprocess) holding planted credentials as a
job pod does (S3 and MLflow variables, an LLM key file under ``ZHUFU_SECRET_DIR``) and
printing them: its config has an ``s3://`` URI made of the planted values, which the config
check echoes in its error. Its output becomes the termination message of a failed pod of a
team-a CurationJob, and the real operator copies it into the status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from opharness import wait_for
from tenancy import Cluster, fail_pod

from zhufu.pipeline.tracking import flatten_params

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

KEY_ID, SECRET, MLFLOW_PW, LLM_KEY = ("AKIAPLANTEDKEYID", "PLANTEDawssecret99",
                                      "PLANTEDmlflowpw", "sk-PLANTED-llm-key")
PLANTED = (KEY_ID, SECRET, MLFLOW_PW, LLM_KEY)
ZHUFU = Path(sys.executable).parent / "zhufu"


def _stage_output(tmp: Path) -> str:
    """Run ``zhufu curate`` with the planted credentials and a config echoing them."""
    keys = tmp / "secrets" / "llm"
    keys.mkdir(parents=True)
    (keys / "api-key").write_text(LLM_KEY + "\n")
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump({"outputDir": f"s3://{KEY_ID}-{SECRET}/{MLFLOW_PW}/"
                                                    f"{LLM_KEY}"}))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "MLFLOW_TRACKING_PASSWORD": MLFLOW_PW, "ZHUFU_SECRET_DIR": str(tmp / "secrets"),
           "ZHUFU_HOME": str(tmp), "MLFLOW_TRACKING_URI": ""}
    proc = subprocess.run([str(ZHUFU), "curate", "--config", str(config)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    return proc.stdout + proc.stderr


async def test_log_tail_in_status_holds_no_secret_value(cluster: Cluster, tmp_path: Path
                                                        ) -> None:
    output = _stage_output(tmp_path)
    assert "***" in output and "outputDir" in output, output
    assert not [p for p in PLANTED if p in output], output
    job = await cluster.job("CurationJob", "leaky-tail", {})
    fail_pod(cluster, job, output)
    await wait_for(lambda: cluster.status("CurationJob", "leaky-tail").get("phase") == "Failed",
                   "the CurationJob Failed", op=cluster.op)
    message = cluster.status("CurationJob", "leaky-tail")["message"]
    assert "last output:" in message and "***" in message, message
    events = [e["message"] for e in cluster.emu.objects("events", "team-a")
              if e["involvedObject"]["name"] == "leaky-tail"]
    assert not [p for p in PLANTED if p in message + "".join(events)], (message, events)


async def test_url_credentials_never_reach_status_or_events(cluster: Cluster) -> None:
    """A tail printed by something that is not the ``zhufu`` command (a crashed server
    process) still loses URL credentials: the operator strips them itself."""
    job = await cluster.job("CurationJob", "leaky-url", {})
    fail_pod(cluster, job, "ConnectionError: POST https://bob:hunter22@llm.example/v1 refused")
    await wait_for(lambda: cluster.status("CurationJob", "leaky-url").get("phase") == "Failed",
                   "the CurationJob Failed", op=cluster.op)
    message = cluster.status("CurationJob", "leaky-url")["message"]
    assert "https://***@llm.example/v1" in message and "hunter22" not in message, message
    await wait_for(lambda: cluster.event("leaky-url", "team-a", "https://***@llm.example"),
                   "the Warning Event", op=cluster.op)
    assert not [e for e in cluster.emu.objects("events", "team-a") if "hunter22" in e["message"]]


async def test_mlflow_params_hold_no_url_credentials() -> None:
    params = flatten_params({"llm": {"baseUrl": "http://bob:hunter22@llm:8000/v1"},
                             "policy": "models:/team-a.zhufu-policy@sft"})
    assert params == {"llm.baseUrl": "http://***@llm:8000/v1",
                      "policy": "models:/team-a.zhufu-policy@sft"}
