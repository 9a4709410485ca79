"""Offline answers for the curation agents, from the deterministic principle analyser.

Registers the task kinds ``advocate``, ``critic``, ``curation_judge`` and ``reflect`` with
:func:`zhufu.pipeline.llm.offline.register_task`. Each handler returns exactly the JSON its
prompt in :mod:`zhufu.pipeline.curation.agents` asks an LLM for, so the stage runs the same
parsing and bookkeeping with or without a model.

What each offline agent does (a simplification of an LLM reading the prompt):

* advocate / critic — :func:`~zhufu.pipeline.analysis.analyse` the greeting; every feature
  that raised (lowered) a dimension by at least 0.1 becomes a strength (weakness) under one
  of the nine aspects, strongest first, one per aspect. A weakness is ``major`` when it is
  one of the analyser's vetoes or costs at least 1.5 points. In later rounds each side
  rebuts the other's points on aspects where it holds the opposite finding; rebuttals are
  recorded but do not change the points (so extra rounds cost calls and change no verdict).
* curation_judge — score ``5 + 2.5 × (overall − threshold)`` clipped to 0–10 (so the
  analyser's own threshold maps to 5). With exemplars it calibrates against them: a greeting
  rated below the exemplars' median loses up to 1.5 points, and one under half their median
  length loses 1 more. A ``major`` weakness raised in the debate, or an analyser veto, makes
  the verdict ``bad``; otherwise ``good`` iff the score is at least 5.
* reflect — audits the verdict: ``good`` with a major weakness on record, or a score on the
  wrong side of 5 for the verdict, is changed, with the inconsistency as the reason; and a
  ``bad`` that rests on length ("shorter than the exemplars") for a query that asks for a
  short greeting (``简短``, ``八个字``) gets the length penalty back.
"""

from __future__ import annotations

import statistics
from functools import lru_cache
from typing import Any

from zhufu.pipeline.llm.base import LLMError
from zhufu.pipeline.llm.offline import register_task

#: analyser feature → debate aspect (see agents.ASPECTS).
FEATURE_ASPECT: dict[str, str] = {
    "lexical_diversity": "wording", "idioms": "wording", "punct_issues": "wording",
    "latin_ratio": "wording", "markdown": "wording", "meta": "wording", "emoji": "wording",
    "repetition": "fluency", "truncated": "fluency", "no_terminal_punct": "fluency",
    "empty": "fluency",
    "emotion": "emotion", "address_opener": "emotion", "first_person": "emotion",
    "exclaims": "emotion", "too_formal": "emotion",
    "simile": "creativity", "imagery": "creativity", "parallelism": "creativity",
    "cliche_ratio": "creativity", "cliches": "creativity", "template_frames": "creativity",
    "specific": "specificity", "occasion_named": "specificity", "recipient_named": "specificity",
    "length_fit": "specificity", "wish_facets": "specificity", "meta_echo": "specificity",
    "too_short": "specificity", "too_long": "specificity", "clauses": "specificity",
    "length_log": "specificity", "several_greetings": "specificity", "preamble": "specificity",
    "honorific_slip": "appropriateness", "honorific_used": "appropriateness",
    "recipient_mismatch": "appropriateness", "wrong_occasion": "appropriateness",
    "emoji_spam": "appropriateness",
    "promo": "intent", "injection": "intent", "query_injection": "intent",
    "taboo": "taboo",
}
#: aspect of a phrase rule ("规则：…") by the dimension it scores.
DIMENSION_ASPECT = {"language_quality": "wording", "creativity": "creativity",
                    "emotional_resonance": "emotion",
                    "cultural_appropriateness": "appropriateness",
                    "content_richness": "specificity"}
MIN_EFFECT = 0.1
MAJOR_COST = 1.5
MAX_POINTS = 5
LENGTH_NOTE = "篇幅不到参考范例的一半"


def _text_fields(task: dict[str, Any], *names: str) -> list[str]:
    values = [task.get(n) for n in names]
    for name, value in zip(names, values, strict=True):
        if not isinstance(value, str):
            raise LLMError(f"offline {task.get('kind')} task needs a string '{name}'")
    return values  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def _analysis(query: str, response: str) -> Any:
    from zhufu.pipeline.analysis import analyse

    return analyse(query, response)


def _findings(query: str, response: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(strengths, weaknesses) as debate points, strongest first, one per aspect."""
    from zhufu.pipeline.analysis.scoring import FEATURE_TEXT

    a = _analysis(query, response)
    effects: list[tuple[float, str, str]] = []  # (contribution, feature, dimension)
    for dim, ds in a.dimensions.items():
        for feature, c in ds.contributions.items():
            effects.append((c, feature, dim))
    effects.sort(key=lambda e: -abs(e[0]))
    strengths: dict[str, dict[str, Any]] = {}
    weaknesses: dict[str, dict[str, Any]] = {}
    for c, feature, dim in effects:
        if abs(c) < MIN_EFFECT:
            continue
        aspect = (DIMENSION_ASPECT[dim] if feature.startswith("规则")
                  else FEATURE_ASPECT.get(feature, DIMENSION_ASPECT[dim]))
        words = feature if feature.startswith("规则") else FEATURE_TEXT.get(
            feature, (feature, feature))[0 if c > 0 else 1]
        if not words:
            continue
        cited = a.evidence.get(feature) or []
        evidence = f"{words}（{'、'.join(cited[:3])}）" if cited else words
        if c > 0 and aspect not in strengths:
            strengths[aspect] = {"aspect": aspect, "evidence": evidence}
        elif c < 0 and aspect not in weaknesses:
            major = feature in a.vetoes or c <= -MAJOR_COST
            weaknesses[aspect] = {"aspect": aspect, "evidence": evidence,
                                  "severity": "major" if major else "minor"}
    for veto in a.vetoes:  # a veto that moved no score still is a major weakness
        aspect = FEATURE_ASPECT.get(veto, "appropriateness")
        if aspect not in weaknesses:
            text = FEATURE_TEXT.get(veto, ("", veto))[1] or veto
            weaknesses[aspect] = {"aspect": aspect, "evidence": text, "severity": "major"}
        else:
            weaknesses[aspect]["severity"] = "major"
    return list(strengths.values())[:MAX_POINTS], list(weaknesses.values())[:MAX_POINTS]


def _rebuttal(own: list[dict[str, Any]], opponent: list[dict[str, Any]]) -> str:
    mine = {p["aspect"] for p in own}
    contested = [p["aspect"] for p in opponent or [] if p.get("aspect") in mine]
    return ("；".join(f"{a}方面另有相反的证据" for a in contested)) if contested else ""


@register_task("advocate")
def advocate_task(task: dict[str, Any]) -> dict[str, Any]:
    query, response = _text_fields(task, "query", "response")
    strengths, _ = _findings(query, response)
    return {"strengths": strengths, "rebuttal": _rebuttal(strengths, task.get("opponent"))}


@register_task("critic")
def critic_task(task: dict[str, Any]) -> dict[str, Any]:
    query, response = _text_fields(task, "query", "response")
    _, weaknesses = _findings(query, response)
    return {"weaknesses": weaknesses, "rebuttal": _rebuttal(weaknesses, task.get("opponent"))}


def _median_len(texts: list[str]) -> float:
    from zhufu.pipeline.analysis.text import han_count

    return statistics.median(han_count(t) for t in texts)


@register_task("curation_judge")
def curation_judge_task(task: dict[str, Any]) -> dict[str, Any]:
    from zhufu.pipeline.analysis import default_weights
    from zhufu.pipeline.analysis.text import han_count

    query, response = _text_fields(task, "query", "response")
    a = _analysis(query, response)
    threshold = default_weights().threshold
    score = 5.0 + 2.5 * (a.overall - threshold)
    notes = [a.reason]
    exemplars = [e for e in task.get("exemplars") or [] if isinstance(e, dict)
                 and isinstance(e.get("text"), str) and e["text"].strip()]
    if exemplars:
        ref = statistics.median(_analysis(e.get("query") or query, e["text"]).overall
                                for e in exemplars)
        if a.overall < ref:
            penalty = min(1.5, 1.5 * (ref - a.overall))
            score -= penalty
            notes.append(f"不及参考范例（范例中位{ref:.2f}分，扣{penalty:.1f}）")
        ref_len = _median_len([e["text"] for e in exemplars])
        if ref_len and han_count(response) < 0.5 * ref_len:
            score -= 1.0
            notes.append(f"{LENGTH_NOTE}（{han_count(response)}字 vs {ref_len:.0f}字）")
    score = round(min(10.0, max(0.0, score)), 1)
    majors = [w for w in task.get("weaknesses") or [] if w.get("severity") == "major"]
    if a.vetoes or majors:
        verdict = "bad"
        if majors:
            notes.append("辩论中指出严重问题：" + "；".join(w["evidence"] for w in majors[:2]))
        score = min(score, 4.9)
    else:
        verdict = "good" if score >= 5 else "bad"
    return {"verdict": verdict, "score": score, "reason": "；".join(notes)}


@register_task("reflect")
def reflect_task(task: dict[str, Any]) -> dict[str, Any]:
    query, _ = _text_fields(task, "query", "response")
    verdict = task.get("verdict")
    if not isinstance(verdict, dict) or verdict.get("verdict") not in ("good", "bad"):
        raise LLMError("offline reflect task needs the 'verdict' to audit")
    v, score = verdict["verdict"], float(verdict.get("score", 5))
    majors = [w for w in task.get("weaknesses") or [] if w.get("severity") == "major"]
    if v == "good" and majors:
        return {"verdict": "bad", "score": min(score, 4.0), "changed": True,
                "reason": "判为good但辩论记录了严重问题：" + majors[0]["evidence"]}
    if v == "good" and score < 5:
        return {"verdict": "bad", "score": score, "changed": True,
                "reason": f"判为good但分数{score}低于5，结论与分数矛盾，按分数改为bad"}
    if v == "bad" and score >= 5 and not majors:
        return {"verdict": "good", "score": score, "changed": True,
                "reason": f"判为bad但分数{score}不低于5且无严重问题，按分数改为good"}
    if v == "bad" and not majors and LENGTH_NOTE in str(verdict.get("reason", "")):
        from zhufu.pipeline.analysis import parse_query

        if parse_query(query).length in ("short", "exact"):
            fixed = round(min(10.0, score + 1.0), 1)
            if fixed >= 5:
                return {"verdict": "good", "score": fixed, "changed": True,
                        "reason": "需求要求简短，不应因篇幅短于范例而判为bad，撤回篇幅扣分"}
    return {"verdict": v, "score": score, "changed": False, "reason": "结论与证据一致"}
