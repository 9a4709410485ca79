"""LLM endpoint faults: ``zhufu curate`` against a server that fails ~30 % of its calls.

The server (``chaos_llm.py``, a real aiohttp process) answers 429, 500, hangs past the
client's timeout, sends truncated JSON bodies or a useless (non-JSON) message, at random but
seeded per (request, attempt). ``zhufu curate`` runs as a real subprocess with
``llm.backend: openai`` pointed at it and the local MLflow store. Checked:

- the run completes (exit 0) in bounded time, the server saw at most ``1 + max_retries``
  attempts per distinct request (no endless loop);
- the MLflow run's metrics count what happened: server requests = ``llm_calls`` +
  ``llm_retries``; calls that failed for good = ``llm_failures`` and their candidates in
  ``candidates_failed``; useless answers in ``malformed_total``;
- a second run asks the server for no request it had answered successfully before (only the
  ones that failed for good come again) and replays every answer from the journal.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from reltools import ChaosLLM, labelled_from_pairs, zhufu

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~55 s: two CLI runs

MAX_RETRIES = 1
TIMEOUT_S = 1.0


def _metrics(home: Path, run_id: str) -> dict[str, float]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    return run.data.metrics


def _curate(cfg: Path, home: Path) -> tuple[dict[str, Any], dict[str, float], float]:
    ran = zhufu(["curate", "--config", str(cfg), "--no-progress"], home, timeout=240)
    assert ran.rc == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    return result, _metrics(home, result["mlflow_run_id"]), ran.seconds


def test_curate_survives_a_faulty_endpoint_and_reuses_every_answer(
        chaos_llm: Any, shared_data: Path, tmp_path: Path) -> None:
    server: ChaosLLM = chaos_llm(rate=0.3, seed=7, hang_s=3 * TIMEOUT_S)
    labelled = labelled_from_pairs(shared_data, tmp_path / "labelled.jsonl", n_queries=8)
    cfg = tmp_path / "curate.yaml"
    cfg.write_text(yaml.safe_dump({
        "responses": str(labelled), "output_dir": str(tmp_path / "out"),
        "experiment": "reliability-llm",
        "llm": {"backend": "openai", "model": "chaos", "base_url": server.url,
                "timeout_s": TIMEOUT_S, "max_retries": MAX_RETRIES, "concurrency": 8},
    }), encoding="utf-8")
    home = tmp_path / "home"

    first, m1, secs1 = _curate(cfg, home)
    log1 = server.records()
    kinds = Counter(r["outcome"] for r in log1)
    assert set(kinds) == {"ok", "429", "500", "hang", "bad_body", "bad_content"}, kinds
    faulty = sum(v for k, v in kinds.items() if k != "ok") / len(log1)
    assert 0.2 <= faulty <= 0.45, kinds
    # bounded: never more than 1 + max_retries attempts for one request
    assert max(Counter(r["key"] for r in log1).values()) <= 1 + MAX_RETRIES
    assert secs1 < 120
    # the MLflow metrics account for every attempt the server saw
    assert m1["llm_calls"] + m1["llm_retries"] == len(log1)
    assert m1["candidates"] == 16 and m1["llm_failures"] >= 1
    assert m1["candidates_failed"] >= 1 and m1["llm_failures"] >= m1["candidates_failed"]
    assert m1["malformed_total"] >= 1
    assert m1["judged"] + m1["candidates_failed"] + m1.get("candidates_unjudged", 0) == 16
    assert first["metrics"]["candidates_failed"] == m1["candidates_failed"]

    answered = {r["key"] for r in log1 if r["outcome"] in ("ok", "bad_content")}
    second, m2, secs2 = _curate(cfg, home)
    log2 = server.records()[len(log1):]
    again = {r["key"] for r in log2}
    assert not (again & answered), "a successfully answered request was sent again"
    assert m2["calls_replayed"] == len(answered)
    assert m2["llm_calls"] + m2["llm_retries"] == len(log2)
    assert m2["candidates_failed"] <= m1["candidates_failed"]
    assert m2["judged"] >= m1["judged"]
    _record(tmp_path, kinds, m1, m2, secs1, secs2, len(log1), len(log2))


def _record(tmp: Path, kinds: Counter, m1: dict, m2: dict, s1: float, s2: float,
            n1: int, n2: int) -> None:
    """Print the figures docs/reliability.md quotes (visible with ``-s``)."""
    keep = ("candidates", "judged", "candidates_failed", "malformed_total", "llm_calls",
            "llm_retries", "llm_failures", "calls", "calls_replayed", "pairs")
    print(json.dumps({"server_outcomes_run1": dict(kinds), "requests_run1": n1,
                      "requests_run2": n2, "seconds_run1": round(s1, 1),
                      "seconds_run2": round(s2, 1),
                      "run1": {k: m1.get(k) for k in keep},
                      "run2": {k: m2.get(k) for k in keep}}, ensure_ascii=False))
