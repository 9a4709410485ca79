"""MLflow traces of the agents' and the judge's LLM calls, read back through MLflow's API.

The LLM is the real OpenAI-compatible stand-in (``agent_server.py``, its own process on
127.0.0.1); the curation runs through the stage wrapper into the local MLflow store.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.curation.test_curation_resume import agent_server  # noqa: F401 - fixture
from zhufu.pipeline.config import CurateConfig, LLMConfig
from zhufu.pipeline.curation.runner import Candidate
from zhufu.pipeline.llm import tracing

pytestmark = pytest.mark.integration

AGENTS = ["advocate", "critic", "judge", "reflect"]
ANSWER_KEY = {"advocate": "strengths", "critic": "weaknesses", "judge": "verdict",
              "reflect": "changed"}


def _traces(experiment_id: str) -> list[Any]:
    import mlflow

    return mlflow.search_traces(locations=[experiment_id], return_type="list",
                                max_results=1000)


def _root(trace: Any) -> Any:
    return next(s for s in trace.data.spans if s.parent_id is None)


def test_sampled_candidates_are_traced_with_every_agent(
        curation_set: Any, tmp_path: Path, agent_server: Any,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from zhufu.pipeline import stage_runner, tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    url, _ = agent_server
    rate = 0.5
    experiment = f"traces-{uuid.uuid4().hex[:8]}"
    cfg = CurateConfig.model_validate({
        "experiment": experiment, "responses": str(curation_set.labelled),
        "exemplars": str(curation_set.exemplars), "output_dir": str(tmp_path / "out"),
        "llm": {"backend": "openai", "model": "agents", "base_url": f"{url}/v1",
                "concurrency": 4, "max_retries": 1, "trace_rate": rate}})
    result = stage_runner.run("curate", cfg)
    tracking.configure()
    exp_id = mlflow.get_experiment_by_name(experiment).experiment_id
    traces = _traces(exp_id)

    rows = curation_set.labelled.read_text(encoding="utf-8").splitlines()
    cands = [Candidate(r["query"], r["response"]) for r in map(json.loads, rows)]
    expected = {c.cid for c in cands if tracing.sampled(c.cid, rate)}
    assert 0 < len(expected) < len(cands)  # the rate really samples
    roots = {_root(t).attributes["zhufu.cid"]: t for t in traces}
    assert set(roots) == expected and len(traces) == len(expected)
    for trace in traces:
        assert trace.info.request_metadata["mlflow.sourceRun"] == result.mlflow_run_id
        assert trace.info.execution_duration > 0
        spans = trace.data.spans
        root = _root(trace)
        assert root.name == "candidate" and root.parent_id is None
        assert root.inputs["query"] and root.outputs["final"]["verdict"] in ("good", "bad")
        children = {s.name: s for s in spans if s.parent_id == root.span_id}
        assert sorted(children) == sorted(["retrieval", *AGENTS])
        assert children["retrieval"].outputs  # the exemplars the agents saw
        for agent in AGENTS:
            span = children[agent]
            usage = span.attributes["mlflow.chat.tokenUsage"]
            assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
            assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
            assert span.end_time_ns > span.start_time_ns
            assert span.inputs["messages"][0]["role"] == "system"
            assert ANSWER_KEY[agent] in span.outputs  # the answer (MLflow reads JSON back)
        # The trace-level total is MLflow's own roll-up of the spans, made when the root span
        # ends; with the agents' spans ending on other tasks it missed one span now and then
        # (3,523 of 4,535 input tokens in one train run), so Zhufu's promise is checked per
        # span above, not MLflow's aggregate.


def test_rate_zero_logs_no_trace(curation_set: Any, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from zhufu.pipeline import stage_runner, tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment = f"untraced-{uuid.uuid4().hex[:8]}"
    cfg = CurateConfig.model_validate({
        "experiment": experiment, "responses": str(curation_set.labelled),
        "exemplars": str(curation_set.exemplars), "output_dir": str(tmp_path / "out")})
    assert cfg.llm.trace_rate == 0
    stage_runner.run("curate", cfg)
    tracking.configure()
    assert _traces(mlflow.get_experiment_by_name(experiment).experiment_id) == []


def test_llm_judge_traces_each_sampled_greeting(agent_server: Any,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    import mlflow

    from zhufu.pipeline import tracking
    from zhufu.pipeline.judge.judge import Judge, JudgeState
    from zhufu.pipeline.llm import make_backend

    monkeypatch.setenv("ZHUFU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    url, _ = agent_server
    backend = make_backend(LLMConfig(backend="openai", model="agents", base_url=f"{url}/v1",
                                     trace_rate=1.0))
    judge = Judge(backend, JudgeState(backend="openai", name="llm-judge"))
    pairs = [("给老师写一句教师节祝福", "老师节日快乐，感谢您的教诲！"),
             ("新年祝福", "新年快乐，万事如意")]
    experiment = f"judge-{uuid.uuid4().hex[:8]}"
    tracking.configure()
    mlflow.set_experiment(experiment)
    results = asyncio.run(judge.score_many(pairs))
    tracing.flush()
    assert len(results) == 2
    traces = _traces(mlflow.get_experiment_by_name(experiment).experiment_id)
    assert sorted(_root(t).inputs["response"] for t in traces) == sorted(
        r for _, r in pairs)
    for trace in traces:
        root = _root(trace)
        (call,) = [s for s in trace.data.spans if s is not root]
        assert root.name == "judge" and call.parent_id == root.span_id
        assert call.span_type == "LLM" and call.attributes["mlflow.chat.tokenUsage"][
            "output_tokens"] > 0
        assert root.outputs == call.outputs
