"""Does a greeting name the wrong occasion? A plain rule for reports and samples.

A tiny policy often gets the form right and the occasion wrong: a birthday query answered
with ``元旦快乐``. :func:`wrong_occasion` reads the query's occasions with the analyser's
query parser (keywords of ``analysis/lexicons/occasions.yaml``) and calls a greeting wrong
when it names an occasion (an occasion's ``names``: 生日, 新婚, 中秋, 元旦, 毕业…) that is
neither one of the query's nor one they list as compatible (birthday ~ longevity, wedding ~
anniversary ~ Qixi, graduation ~ exams…); see
:func:`zhufu.pipeline.analysis.features.occasion_names`. A greeting that names no occasion
at all is not wrong by this rule, and a query with no recognised occasion has no wrong one.
No model, no weights: the same keywords for every policy.

>>> wrong_occasion("闺蜜生日祝福语 幽默一点", "闺蜜，元旦快乐！愿你天天开心。")
True
>>> wrong_occasion("闺蜜生日祝福语 幽默一点", "闺蜜，生日快乐！愿你天天开心。")
False
>>> wrong_occasion_share(["同事新婚祝福语", "给妈妈的祝福语"], ["新婚快乐！", "中秋快乐！"])
(0.0, 1)
"""

from __future__ import annotations

from collections.abc import Sequence

from zhufu.pipeline.analysis.features import occasion_names
from zhufu.pipeline.analysis.query import QueryIntent, parse_query


def _wrong(intent: QueryIntent, text: str) -> bool:
    return bool(intent.occasions) and bool(occasion_names(intent, text)[1])


def wrong_occasion(query: str, text: str) -> bool:
    """True when the query names an occasion and ``text`` names a foreign one."""
    return _wrong(parse_query(query), text)


def wrong_occasion_share(queries: Sequence[str], texts: Sequence[str]) -> tuple[float, int]:
    """(share of the greetings naming a wrong occasion, number of greetings counted): only
    greetings whose query names an occasion count; (0.0, 0) when none does. Each query is
    parsed once."""
    counted = [(intent, t) for q, t in zip(queries, texts, strict=True)
               if (intent := parse_query(q)).occasions]
    if not counted:
        return 0.0, 0
    return sum(_wrong(intent, t) for intent, t in counted) / len(counted), len(counted)
