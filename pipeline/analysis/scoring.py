"""Turn features into the judge's answer: five 1–5 dimension scores with reasons, strengths,
weaknesses, an overall score and a good/bad verdict with its reason.

Each dimension's reason lists the features that moved its score most, in words (see
:data:`FEATURE_TEXT`), with the phrases that fired them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from zhufu.pipeline.analysis.degeneracy import READABLE_AT
from zhufu.pipeline.analysis.features import Features
from zhufu.pipeline.analysis.weights import DIMENSIONS, JudgeWeights

#: feature → (words when it helps, words when it hurts).
FEATURE_TEXT: dict[str, tuple[str, str]] = {
    "lexical_diversity": ("用词丰富", "用词单调"),
    "repetition": ("", "内容重复"),
    "word_repeat": ("", "同一个词反复使用"),
    "punct_issues": ("", "标点使用不当"),
    "truncated": ("", "句子不完整，疑似被截断"),
    "latin_ratio": ("", "夹杂外文或乱码"),
    "markdown": ("", "带有格式标记"),
    "no_terminal_punct": ("", "结尾缺少标点"),
    "empty": ("", "没有中文内容"),
    "emoji": ("", "使用表情符号"),
    "emoji_spam": ("", "表情符号堆砌"),
    "preamble": ("", "带有开场白而非直接给出祝福"),
    "several_greetings": ("", "给出多条祝福或列表，而非一条"),
    "meta": ("", "夹带说明性文字"),
    "simile": ("比喻生动", ""),
    "imagery": ("意象丰富", ""),
    "parallelism": ("排比句式有节奏", ""),
    "idioms": ("成语运用得当", ""),
    "cliche_ratio": ("", "套话较多，缺少新意"),
    "cliches": ("", "使用常见套话"),
    "template_frames": ("", "模板化的开头或框架"),
    "emotion": ("情感真挚", ""),
    "address_opener": ("开头直接称呼对方，亲切", ""),
    "first_person": ("有写作者自己的视角", ""),
    "recipient_named": ("点明了祝福对象", ""),
    "exclaims": ("语气热情", ""),
    "too_formal": ("", "对亲近的人用“您”显得生分"),
    "wrong_occasion": ("", "场合不符"),
    "taboo": ("", "含有该场合的忌讳词"),
    "honorific_slip": ("", "对长辈/师长/上级应使用“您”"),
    "honorific_used": ("敬称得体", ""),
    "recipient_mismatch": ("", "祝福对象不符"),
    "promo": ("", "含有推销或广告内容"),
    "injection": ("", "含有针对评审的指令"),
    "occasion_named": ("紧扣场合", ""),
    "meta_echo": ("", "复述了请求中的说明性词语"),
    "wish_facets": ("祝愿涵盖多个方面", ""),
    "specific": ("结合了请求中的具体信息", ""),
    "clauses": ("层次丰富", ""),
    "length_fit": ("长度符合要求", "长度不符合要求"),
    "length_log": ("篇幅充实", ""),
    **{f"len_rel_{i}": ("篇幅与请求相称", "篇幅与请求不相称") for i in range(9)},
    "too_short": ("", "过于简短"),
    "short_as_asked": ("简短而不落俗套，正合请求", ""),
    "too_long": ("", "过于冗长"),
    "query_injection": ("", "请求中含有针对评审的指令"),
    "sentences": ("句子层次分明", ""),
    "balanced_clauses": ("对仗工整", ""),
    "negativity": ("", "含有消极、嘲讽或说教的字眼"),
    "formal_mismatch": ("", "公文腔调，与亲近关系或幽默要求不符"),
    "casual_mismatch": ("", "口吻随意，对长辈/上级/客户失敬"),
    "abstract_ratio": ("", "空泛的抽象祝愿多，缺少具体内容"),
    "query_copy": ("", "照抄了请求原文"),
    "generic_opening": ("", "以“祝你/愿你”平铺直叙开头"),
    "format_marks": ("", "夹带标题、话题标签或列表等排版"),
    "comma_chain": ("", "一逗到底的长句"),
    "scene_then_wish": ("先写情景再送祝愿，层次自然", ""),
    "filler": ("", "充满、更加之类的填充词多"),
    "four_char_clauses": ("", "四字短语堆砌"),
    "imagery_chars": ("画面感强", ""),
    "emoji_end": ("", "以表情符号收尾"),
    "you_density": ("", "通篇“你”字，像群发模板"),
    "everyday": ("有生活细节", ""),
    "opens_with_wish": ("", "开口就是“祝/愿”，少了铺垫"),
    "wish_after_stop": ("先叙后祝，层次分明", ""),
    "semicolons": ("句式有变化", ""),
    "and_lists": ("", "“A和B”式的抽象词并列"),
    "degenerate": ("", "不是一条祝福"),
    "deg_no_chinese": ("", "没有像样的中文内容"),
    "deg_punct_soup": ("", "标点堆砌，字不成句"),
    "deg_doubled_punct": ("", "标点重叠"),
    "deg_char_run": ("", "同一个字连续重复"),
    "deg_query_echo": ("", "照搬请求本身"),
    "deg_cut_off": ("", "话没说完就断了"),
    "deg_dangling": ("", "句子停在半截"),
    "deg_self_repeat": ("", "同一内容反复重复"),
    "deg_stutter": ("", "同一短语在一句里接连重复"),
    "deg_scrambled": ("", "字词错乱，不成句子"),
    "deg_refusal": ("", "拒绝作答或在谈论任务本身"),
}

DIMENSION_NAMES = {
    "language_quality": "语言质量",
    "creativity": "创意",
    "emotional_resonance": "情感共鸣",
    "cultural_appropriateness": "文化适宜性",
    "content_richness": "内容丰富度",
}


@dataclass
class DimensionScore:
    score: float
    reason: str
    contributions: dict[str, float] = field(default_factory=dict)


@dataclass
class Analysis:
    """The analyser's full answer for one greeting."""

    dimensions: dict[str, DimensionScore]
    overall: float
    verdict: str  # "good" | "bad"
    reason: str
    strengths: list[str]
    weaknesses: list[str]
    vetoes: list[str]
    features: dict[str, float]
    evidence: dict[str, list[str]]

    @property
    def label(self) -> int:
        return int(self.verdict == "good")

    def to_output(self) -> dict[str, Any]:
        """The judge's JSON output contract (what an LLM judge is asked to return)."""
        return {
            "scores": {d: {"score": round(s.score, 2), "reason": s.reason}
                       for d, s in self.dimensions.items()},
            "overall": round(self.overall, 4),
            "verdict": self.verdict,
            "reason": self.reason,
            "strengths": self.strengths,
            "weaknesses": self.weaknesses,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gated(score: float, readability: float) -> float:
    """A 1–5 dimension score after the readability factor: ``1 + (score − 1) × r``.

    >>> gated(4.6, 1.0), gated(4.6, 0.0), round(gated(4.6, 0.5), 2)
    (4.6, 1.0, 2.8)
    """
    return 1.0 + (score - 1.0) * readability


def _describe(name: str, value: float, evidence: dict[str, list[str]]) -> str:
    pos, neg = FEATURE_TEXT.get(name, (name, name))
    words = pos if value > 0 else neg
    if not words:
        return ""
    ev = evidence.get(name)
    if ev and not name.startswith("length"):
        return f"{words}（{'、'.join(ev[:3])}）"
    return words


def score_features(feats: Features, weights: JudgeWeights) -> Analysis:
    """Apply ``weights`` to ``feats``; return the per-dimension scores and the verdict."""
    values, evidence = dict(feats.values), dict(feats.evidence)
    r = values.get("readability", 1.0)
    if r < 1.0:
        worst = max((k for k in values if k.startswith("deg_")), key=lambda k: values[k])
        evidence["degenerate"] = [FEATURE_TEXT[worst][1]]
    rule_hits: dict[str, list[tuple[str, float, bool]]] = {}
    for rule in weights.rules:
        if rule.matches(feats.response):
            rule_hits.setdefault(rule.dimension, []).append(
                (f"规则：{rule.note or rule.pattern}", rule.weight, rule.veto))
    dims: dict[str, DimensionScore] = {}
    strengths: list[str] = []
    weaknesses: list[str] = []
    for dim in DIMENSIONS:
        contrib = {f: w * values.get(f, 0.0) for f, w in weights.weights.get(dim, {}).items()}
        contrib = {f: c for f, c in contrib.items() if abs(c) > 1e-9}
        for note, w, _ in rule_hits.get(dim, []):
            contrib[note] = contrib.get(note, 0.0) + w
        raw = weights.base.get(dim, 3.0) + sum(contrib.values())
        score = gated(min(weights.cap_of(values, dim), max(1.0, raw)), r)
        ranked = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))
        parts = []
        if r < 0.9:
            parts.append(_describe("degenerate", -1, evidence))
            weaknesses.append(parts[-1])
        for name, c in ranked[:3]:
            text = name if name.startswith("规则") else _describe(name, c, evidence)
            if not text or abs(c) < 0.1:
                continue
            parts.append(text)
            (strengths if c > 0 else weaknesses).append(text)
        reason = f"{DIMENSION_NAMES[dim]}{score:.1f}分：" + ("；".join(parts) or "表现平平")
        dims[dim] = DimensionScore(score=score, reason=reason,
                                   contributions={k: round(v, 4) for k, v in contrib.items()})
    total_w = sum(weights.dimension_weights.get(d, 0.0) for d in DIMENSIONS)
    overall = sum(dims[d].score * weights.dimension_weights.get(d, 0.0) for d in DIMENSIONS)
    overall = min(overall / total_w, weights.overall_cap(values))
    vetoes = [f for f, limit in weights.veto.items() if values.get(f, 0.0) >= limit]
    if r < READABLE_AT:  # not a greeting: no weight or rule can overturn this
        vetoes.insert(0, "degenerate")
    vetoes += [note for hits in rule_hits.values() for note, _, veto in hits if veto]
    if vetoes:
        verdict = "bad"
        reason = "不合格：" + "；".join(
            v if v.startswith("规则") else _describe(v, -1, evidence) for v in vetoes)
    elif overall >= weights.threshold:
        verdict = "good"
        reason = f"合格（总分{overall:.2f}）：" + ("；".join(dict.fromkeys(strengths[:3]))
                                                  or "整体得体")
    else:
        verdict = "bad"
        reason = f"不合格（总分{overall:.2f}，低于{weights.threshold:.2f}）：" + (
            "；".join(dict.fromkeys(weaknesses[:3])) or "整体平淡，缺少亮点")
    return Analysis(dimensions=dims, overall=overall, verdict=verdict, reason=reason,
                    strengths=list(dict.fromkeys(strengths)),
                    weaknesses=list(dict.fromkeys(weaknesses)), vetoes=vetoes,
                    features=values, evidence=evidence)
