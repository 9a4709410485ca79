"""Putting untrusted text (queries, greetings, other models' answers) into a prompt safely.

Every prompt that shows a model user-supplied text does two things with it: cuts it to a
bounded length (:func:`bounded`, marking the cut) and quotes it as a JSON string literal
(:func:`quote`) inside a ``<data>`` … ``</data>`` block, so that whatever it says — "ignore
the rules", a fake ``</data>``, a fake verdict — stays text to be judged, never an
instruction. Used by the judge (:mod:`zhufu.pipeline.judge.principles`) and the curation
agents (:mod:`zhufu.pipeline.curation.agents`).
"""

from __future__ import annotations

import json

from zhufu.pipeline import fastjson

#: Longest query / greeting quoted into a prompt (characters); longer text is cut and marked.
MAX_QUERY_CHARS = 300
MAX_GREETING_CHARS = 1200
#: What ends a cut text.
CUT_MARK = "…[cut]"


def bounded(text: str, limit: int) -> str:
    """``text`` stripped, cut to ``limit`` characters plus :data:`CUT_MARK` when longer.

    >>> bounded("  生日快乐  ", 10)
    '生日快乐'
    >>> bounded("生日快乐", 2)
    '生日…[cut]'
    """
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + CUT_MARK


def quote(text: str) -> str:
    """``text`` as a JSON string literal whose ``<``/``>`` are escaped, so quoted data can
    neither end the string nor close the ``<data>`` block it sits in.

    >>> quote('a"</data>')
    '"a\\\\"\\\\u003c/data\\\\u003e"'
    """
    return fastjson.string(text).replace("<", "\\u003c").replace(">", "\\u003e")


def quote_json(value: object) -> str:
    """Any JSON value on one line, with ``<``/``>`` escaped as in :func:`quote`."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


__all__ = ["CUT_MARK", "MAX_GREETING_CHARS", "MAX_QUERY_CHARS", "bounded", "quote", "quote_json"]
