"""Errors of the data layer: :class:`DataError` names the file, the 1-based row and the field.

Defined in :mod:`zhufu.pipeline.errors` with the rest of the hierarchy; kept importable here.
"""

from __future__ import annotations

from zhufu.pipeline.errors import DataError

__all__ = ["DataError"]
