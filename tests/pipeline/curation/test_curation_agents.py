"""Agent prompts and the lenient-but-strict parsing of their JSON contracts (no model)."""

from __future__ import annotations

import json

import pytest

from zhufu.pipeline.curation import agents
from zhufu.pipeline.curation.runner import debate_tally

EX = [{"query": "生日祝福语", "text": "生日快乐，愿你岁岁平安！"}]


@pytest.mark.parametrize(("agent", "answer", "expected"), [
    ("advocate", {"strengths": [{"aspect": "emotion", "evidence": "真挚"}]},
     {"strengths": [{"aspect": "emotion", "evidence": "真挚"}], "rebuttal": ""}),
    ("critic", {"weaknesses": [{"aspect": "taboo", "evidence": "钟", "severity": "MAJOR"}],
                "rebuttal": "不同意"},
     {"weaknesses": [{"aspect": "taboo", "evidence": "钟", "severity": "major"}],
      "rebuttal": "不同意"}),
    ("judge", {"verdict": "Good", "score": "7.25", "reason": "得体"},
     {"verdict": "good", "score": 7.2, "reason": "得体"}),
    ("reflect", {"verdict": "bad", "score": 3, "changed": True, "reason": "有忌讳"},
     {"verdict": "bad", "score": 3.0, "changed": True, "reason": "有忌讳"}),
])
def test_valid_answers_parse(agent: str, answer: dict, expected: dict) -> None:
    text = "好的：\n```json\n" + json.dumps(answer, ensure_ascii=False) + "\n```"
    out = agents.parse_agent_output(agent, text)
    assert out.ok, out
    assert out.data == expected


@pytest.mark.parametrize(("agent", "text", "error"), [
    ("judge", "", "empty_text"),
    ("judge", "   \n", "empty_text"),
    ("advocate", None, "empty_text"),
    ("judge", "I think it is good.", "invalid_json"),
    ("critic", '{"weaknesses": [', "invalid_json"),
    ("judge", '{"verdict": "good", "reason": "x"}', "missing_field"),
    ("judge", '{"verdict": "good", "score": 6, "reason": ""}', "missing_field"),
    ("advocate", '{"points": []}', "missing_field"),
    ("critic", '{"weaknesses": [{"aspect": "taboo", "evidence": "x"}]}', "bad_value"),
    ("critic", '{"weaknesses": [{"aspect": "vibes", "evidence": "x", "severity": "minor"}]}',
     "bad_value"),
    ("advocate", '{"strengths": [{"aspect": "emotion", "evidence": ""}]}', "missing_field"),
    ("judge", '{"verdict": "maybe", "score": 5, "reason": "x"}', "bad_value"),
    ("judge", '{"verdict": "good", "score": 11, "reason": "x"}', "bad_value"),
    ("judge", '{"verdict": "good", "score": true, "reason": "x"}', "bad_value"),
    ("reflect", '{"verdict": "good", "score": 6, "changed": "no", "reason": "x"}', "bad_value"),
    ("reflect", '{"verdict": "good", "score": 6, "reason": "x"}', "missing_field"),
])
def test_malformed_answers_are_classified_not_raised(agent: str, text: str | None,
                                                     error: str) -> None:
    out = agents.parse_agent_output(agent, text)
    assert not out.ok
    assert out.error == error
    assert out.raw == (text or "")


def test_one_point_per_aspect_keeps_the_first() -> None:
    text = json.dumps({"strengths": [{"aspect": "emotion", "evidence": "a"},
                                     {"aspect": "emotion", "evidence": "b"}]})
    assert agents.parse_agent_output("advocate", text).data["strengths"] == [
        {"aspect": "emotion", "evidence": "a"}]


def test_requests_carry_messages_and_task() -> None:
    req = agents.advocate_request("生日祝福语", "生日快乐", EX, [], 1)
    assert req.task["kind"] == "advocate" and req.json_output
    assert "生日快乐，愿你岁岁平安" in req.messages[1]["content"]
    assert "反方上一轮" not in req.messages[1]["content"]
    weak = [{"aspect": "creativity", "evidence": "套话", "severity": "minor"}]
    req2 = agents.advocate_request("生日祝福语", "生日快乐", EX, weak, 2)
    assert "反方上一轮" in req2.messages[1]["content"] and "套话" in req2.messages[1]["content"]
    assert req2.task["opponent"] == weak and req2.task["round"] == 2
    # an LLM sees the round too: round 2 with nothing to answer is still a new request
    assert agents.advocate_request("q", "r", EX, [], 2).messages != \
        agents.advocate_request("q", "r", EX, [], 1).messages
    assert agents.critic_request("q", "r", [], [], 1).task["kind"] == "critic"
    judge = agents.judge_request("q", "r", [], None, None)
    assert judge.task["kind"] == "curation_judge" and judge.task["strengths"] is None
    assert "正方列出的优点" not in judge.messages[1]["content"]
    assert "无参考范例" in judge.messages[1]["content"]
    reflect = agents.reflect_request("q", "r", [], [], [], {"verdict": "good", "score": 6,
                                                            "reason": "x", "by": "judge"})
    assert reflect.task["kind"] == "reflect"
    assert '"verdict": "good"' in reflect.messages[1]["content"]
    for prompt in (agents.ADVOCATE_SYSTEM, agents.CRITIC_SYSTEM):
        assert all(aspect in prompt for aspect in agents.ASPECTS)


def test_debate_tally() -> None:
    s = [{"aspect": "emotion"}] * 3
    assert debate_tally(s, [{"severity": "minor"}]) == {
        "verdict": "good", "score": 7.5,
        "reason": "debate tally: 3 strengths, 1 minor and 0 major weaknesses"}
    assert debate_tally(s, [{"severity": "major"}])["verdict"] == "bad"
    assert debate_tally([], [])["score"] == 5.0
    assert debate_tally([], [{"severity": "minor"}])["verdict"] == "bad"
