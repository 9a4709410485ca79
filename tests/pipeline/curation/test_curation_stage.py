"""The curation stage end to end on a small labelled set: traces, ablations, malformed
answers, failed calls and in-process resume.

The offline backend (the principle analyser) answers every agent; ``ScriptedBackend`` below
is a test double of an LLM that answers from a script per agent, used where the test needs
answers no real model can be made to give on demand (malformed JSON, failures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zhufu.pipeline.config import CurateConfig
from zhufu.pipeline.curation.stage import run_curation
from zhufu.pipeline.data.loaders import load_pairs
from zhufu.pipeline.llm import ChatBackend, ChatRequest, ChatResponse, LLMError

AGENT_OF_KIND = {"advocate": "advocate", "critic": "critic", "curation_judge": "judge",
                 "reflect": "reflect"}


class ScriptedBackend(ChatBackend):
    """Answers by agent: ``script[agent](task) -> str`` (raise LLMError to fail the call)."""

    name = "scripted"

    def __init__(self, script: dict[str, Any]) -> None:
        super().__init__(concurrency=4)
        self.script = script
        self.requests: list[ChatRequest] = []
        self.priorities: list[tuple[str, int | None, int]] = []  # (kind, round, priority)

    async def chat(self, request: ChatRequest, *, priority: int = 0) -> ChatResponse:
        self.priorities.append((request.task["kind"], request.task.get("round"), priority))
        return await super().chat(request, priority=priority)

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        agent = AGENT_OF_KIND[request.task["kind"]]
        return ChatResponse(text=self.script[agent](request.task), prompt_tokens=10,
                            completion_tokens=5)


def good_judge(task: dict) -> str:
    score = 8 if len(task["response"]) > 40 else 3
    return json.dumps({"verdict": "good" if score >= 5 else "bad", "score": score,
                       "reason": "按篇幅"})


def config(curation_set: Any, out: Path, **over: Any) -> CurateConfig:
    data = {"responses": str(curation_set.labelled), "exemplars": str(curation_set.exemplars),
            "dev_labels": str(curation_set.labelled), "output_dir": str(out), **over}
    return CurateConfig.model_validate(data)


def test_full_run_offline_traces_every_agent(curation_set: Any, tmp_path: Path) -> None:
    out = run_curation(config(curation_set, tmp_path / "full"), progress=False)
    m = out.metrics
    assert m["candidates"] == 12 and m["queries"] == 6 and m["judged"] == 12
    assert m["calls"] == 12 * 4 and m["malformed_total"] == 0 and m["candidates_failed"] == 0
    assert m["pairs"] + m["ties"] == 6 and m["pairs"] == len(out.pairs) >= 3
    assert m["agreement_matched"] == 12 and 0 <= m["verdict_accuracy"] <= 1
    assert "pair_accuracy" in m and m["tokens_prompt"] > 0
    # short: asyncio.run formats the outcome's repr as it ends (a repr of every trace was
    # a measurable share of a run's CPU)
    assert repr(out).startswith("CurationOutcome(12 traces, ") and len(repr(out)) < 600
    traces = [json.loads(line) for line in
              (tmp_path / "full" / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(traces) == 12
    for t in traces:
        assert t["retrieval"]["kind"] == "bm25" and t["retrieval"]["hits"]
        assert t["query"] not in {h["query"] for h in t["retrieval"]["hits"]}
        assert [d["round"] for d in t["debate"]] == [1]
        assert t["debate"][0]["advocate"]["ok"] and t["debate"][0]["critic"]["ok"]
        assert t["judge"]["ok"] and t["reflect"]["ok"]
        assert t["final"]["verdict"] in ("good", "bad") and t["final"]["by"] in ("judge",
                                                                                  "reflect")
    pairs = load_pairs(tmp_path / "full" / "pairs.json")
    assert [(p.query, p.chosen, p.rejected) for p in pairs] == [
        (p.query, p.chosen, p.rejected) for p in out.pairs]
    best = {t["response"]: t["final"] for t in traces}
    for p in pairs:  # chosen ranks strictly above rejected
        c, r = best[p.chosen], best[p.rejected]
        assert ((c["verdict"] == "good"), c["score"]) > ((r["verdict"] == "good"), r["score"])
    report = json.loads((tmp_path / "full" / "report.json").read_text(encoding="utf-8"))
    assert report["metrics"]["pairs"] == m["pairs"]


@pytest.mark.parametrize(("over", "calls", "check"), [
    ({"retrieval": {"kind": "none"}}, 4,
     lambda t: t["retrieval"]["hits"] == [] and t["debate"] and t["reflect"]),
    ({"debate": {"enabled": False}}, 2,
     lambda t: t["debate"] is None and t["judge"]["ok"] and t["reflect"]),
    ({"reflect": False}, 3, lambda t: t["reflect"] is None and t["final"]["by"] == "judge"),
    ({"judge": False}, 3, lambda t: t["judge"] is None and t["final"]["by"] in ("debate",
                                                                               "reflect")),
    ({"debate": {"rounds": 2}}, 6, lambda t: [d["round"] for d in t["debate"]] == [1, 2]),
])
def test_ablation_switches(curation_set: Any, tmp_path: Path, over: dict, calls: int,
                           check: Any) -> None:
    backend = ScriptedBackend({
        "advocate": lambda t: json.dumps({"strengths": [{"aspect": "emotion", "evidence": "e"}]}),
        "critic": lambda t: json.dumps({"weaknesses": []}),
        "judge": good_judge,
        "reflect": lambda t: json.dumps({**{k: t["verdict"][k] for k in ("verdict", "score")},
                                         "changed": False, "reason": "一致"}),
    })
    out = run_curation(config(curation_set, tmp_path, **over), backend, progress=False)
    assert out.metrics["calls"] == 12 * calls == len(backend.requests)
    assert all(check(t) for t in out.traces)
    # a call's priority for a slot is the steps its candidate has still to go, itself included
    debate = over.get("debate", {})
    rounds = debate.get("rounds", 1) if debate.get("enabled", True) else 0
    after_debate = int(over.get("judge", True)) + int(over.get("reflect", True))
    after_judge = {"curation_judge": 1 + int(over.get("reflect", True)), "reflect": 1}

    def steps_left(kind: str, round_no: int | None) -> int:
        return rounds - round_no + 1 + after_debate if round_no else after_judge[kind]

    assert len(backend.priorities) == 12 * calls
    assert all(priority == steps_left(kind, round_no)
               for kind, round_no, priority in backend.priorities)
    kinds = {r.task["kind"] for r in backend.requests}
    if over.get("retrieval"):
        assert all(r.task["exemplars"] == [] for r in backend.requests)
    if over.get("debate", {}).get("enabled") is False:
        assert kinds == {"curation_judge", "reflect"}
        assert all(r.task["strengths"] is None for r in backend.requests
                   if r.task["kind"] == "curation_judge")
    if over.get("debate", {}).get("rounds") == 2:
        second = [r for r in backend.requests if r.task["kind"] == "advocate"
                  and r.task["round"] == 2]
        assert len(second) == 12 and all(r.task["opponent"] == [] for r in second)
        critics2 = [r for r in backend.requests if r.task["kind"] == "critic"
                    and r.task["round"] == 2]
        assert all(r.task["opponent"] == [{"aspect": "emotion", "evidence": "e"}]
                   for r in critics2)


def test_malformed_answers_are_counted(curation_set: Any, tmp_path: Path) -> None:
    """Per candidate index (by response length parity) the agents misbehave differently."""

    def odd(task: dict) -> bool:
        return len(task["response"]) % 2 == 1

    backend = ScriptedBackend({
        "advocate": lambda t: "" if odd(t) else json.dumps({"strengths": []}),
        "critic": lambda t: "无法判断" if odd(t) else json.dumps({"weaknesses": []}),
        "judge": lambda t: json.dumps({"verdict": "good"}) if odd(t) else good_judge(t),
        "reflect": lambda t: json.dumps({"verdict": "bad", "score": 1, "changed": True,
                                         "reason": ""}),
    })
    out = run_curation(config(curation_set, tmp_path), backend, progress=False)
    n_odd = sum(len(t["response"]) % 2 for t in out.traces)
    assert 0 < n_odd < 12
    m = out.metrics
    assert m["malformed_advocate_empty_text"] == n_odd
    assert m["malformed_critic_invalid_json"] == n_odd
    assert m["malformed_judge_missing_field"] == n_odd
    assert m["malformed_total"] == 3 * n_odd
    assert m["candidates_unjudged"] == n_odd and m["judged"] == 12 - n_odd
    assert m["reflect_ignored_change_without_reason"] == 12 - n_odd
    for t in out.traces:
        if len(t["response"]) % 2:
            assert t["final"] is None and t["judge"]["error"] == "missing_field"
            assert t["debate"][0]["advocate"] == {"ok": False, "output": {},
                                                  "error": "empty_text", "raw": ""}
        else:
            assert t["final"]["by"] == "judge"  # a change without a reason is not applied
    unjudged = {t["response"] for t in out.traces if t["final"] is None}
    assert not any(p.chosen in unjudged or p.rejected in unjudged for p in out.pairs)


def test_failed_calls_are_counted_and_retried_next_run(curation_set: Any, tmp_path: Path
                                                       ) -> None:
    broken = {"on": True}

    def judge(task: dict) -> str:
        if broken["on"] and "祝" in task["response"][:2]:
            raise LLMError("server kept answering 503", "HTTP503")
        return good_judge(task)

    script = {"advocate": lambda t: json.dumps({"strengths": []}),
              "critic": lambda t: json.dumps({"weaknesses": []}), "judge": judge,
              "reflect": lambda t: json.dumps({**{k: t["verdict"][k] for k in
                                                  ("verdict", "score")},
                                               "changed": False, "reason": "ok"})}
    first = ScriptedBackend(script)
    out = run_curation(config(curation_set, tmp_path), first, progress=False)
    n_fail = out.metrics["candidates_failed"]
    assert n_fail == sum("祝" in t["response"][:2] for t in out.traces) > 0
    assert out.metrics["failed_judge_HTTP503"] == n_fail
    assert out.metrics["llm_failures"] == n_fail
    broken["on"] = False
    second = ScriptedBackend(script)
    again = run_curation(config(curation_set, tmp_path), second, progress=False)
    assert again.metrics["candidates_failed"] == 0
    # only the failed judges and the reflects after them are asked again
    assert again.metrics["calls"] == 2 * n_fail == len(second.requests)


def test_rerun_replays_the_journal(curation_set: Any, tmp_path: Path) -> None:
    cfg = config(curation_set, tmp_path / "o", **{"debate": {"rounds": 2}})
    first = run_curation(cfg, progress=False)
    again = run_curation(cfg, progress=False)
    assert again.metrics["calls"] == 0 and again.metrics["llm_calls"] == 0
    assert again.metrics["calls_replayed"] == first.metrics["calls"] == 12 * 6
    assert again.pairs == first.pairs
    assert [t["final"] for t in again.traces] == [t["final"] for t in first.traces]
    # an ablation sharing the journal reuses the answers it has in common
    no_reflect = run_curation(config(curation_set, tmp_path / "o", reflect=False,
                                     debate={"rounds": 2}), progress=False)
    assert no_reflect.metrics["calls"] == 0


@pytest.mark.integration
def test_stage_logs_one_mlflow_run_and_uploads_to_s3(curation_set: Any, s3_server: Any,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    """``curate`` with an s3:// output (real moto_server) and the local MLflow store: one run
    with config, counts, agreement and cost; pairs and trace as artifacts; outputs and the
    journal uploaded; a second run fetches the journal from S3 and calls nothing."""
    from mlflow import MlflowClient

    from zhufu.pipeline import stage_runner, tracking
    from zhufu.pipeline.results import RESULT_FILE_ENV, StageResult

    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("ZHUFU_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(RESULT_FILE_ENV, str(tmp_path / "result.json"))
    s3_server.client().create_bucket(Bucket="curation")
    cfg = config(curation_set, tmp_path, output_dir="s3://curation/runs/a",
                 experiment="curation-test")
    result = stage_runner.run("curate", cfg, progress=False)
    assert result.outputs["pairs"] == "s3://curation/runs/a/pairs.json"
    assert StageResult.from_json((tmp_path / "result.json").read_text()) == result
    keys = {o["Key"] for o in s3_server.client().list_objects_v2(
        Bucket="curation", Prefix="runs/a/")["Contents"]}
    assert keys == {f"runs/a/{n}" for n in ("pairs.json", "trace.jsonl", "report.json",
                                            "journal.jsonl")}
    tracking.configure()
    run = MlflowClient().get_run(result.mlflow_run_id)
    assert run.data.params["retrieval.kind"] == "bm25" and run.data.params["reflect"] == "true"
    metrics = run.data.metrics
    assert metrics["candidates"] == 12 and metrics["pairs"] == result.metrics["pairs"]
    assert "verdict_accuracy" in metrics and metrics["tokens_prompt"] > 0
    assert metrics["seconds"] > 0 and metrics["calls"] == 48
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "curation")}
    assert {"curation/pairs.json", "curation/trace.jsonl"} <= artifacts

    # a fresh pod (empty local work dir) resumes from the journal uploaded to S3
    import shutil

    from zhufu.pipeline.curation.stage import work_dirs

    shutil.rmtree(work_dirs(cfg)[1])
    again = stage_runner.run("curate", cfg, progress=False)
    run2 = MlflowClient().get_run(again.mlflow_run_id)
    assert run2.data.metrics["calls"] == 0 and run2.data.metrics["calls_replayed"] == 48
