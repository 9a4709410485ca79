"""Which of the supported data formats a file is in, from its name and its first bytes."""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Final

from zhufu.pipeline.data.errors import DataError
from zhufu.pipeline.data.parse import decode, first_json_element
from zhufu.pipeline.data.storage import read_bytes

ALPACA: Final = "alpaca"
SHAREGPT_PAIRS: Final = "sharegpt-pairs"
VERL_PARQUET: Final = "verl-parquet"
QUERIES_TXT: Final = "queries-txt"
LABELLED_JSONL: Final = "labelled-jsonl"
#: Every format name :func:`detect_format` can return.
FORMATS: Final = (ALPACA, SHAREGPT_PAIRS, VERL_PARQUET, QUERIES_TXT, LABELLED_JSONL)

_JSON_SUFFIXES = {".json"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson"}
_TXT_SUFFIXES = {".txt"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def detect_format(uri: str | os.PathLike[str]) -> str:
    """The format of the file at ``uri`` (a local path or s3:// URI): one of :data:`FORMATS`."""
    return detect_format_bytes(read_bytes(uri), str(uri))


def detect_format_bytes(data: bytes, name: str) -> str:
    """The format of ``data``, read from the file called ``name``.

    Parquet is recognised by its magic bytes. ``.txt`` is a query file and ``.jsonl`` labelled
    JSONL. A ``.json`` file (or one with another suffix) starting with ``[`` is Alpaca or
    ShareGPT pairs depending on the keys of its first object; one starting with ``{`` is
    JSONL; any other unknown-suffix file is read as a query file.
    """
    suffix = PurePosixPath(name).suffix.lower()
    if data[:4] == b"PAR1":
        return VERL_PARQUET
    if suffix in _PARQUET_SUFFIXES:
        raise DataError(name, None, None, "not a parquet file (no PAR1 magic bytes)")
    if suffix in _TXT_SUFFIXES:
        return QUERIES_TXT
    if suffix in _JSONL_SUFFIXES:
        return LABELLED_JSONL
    text = decode(data[:1_000_000])
    head = text.lstrip()
    if not head:
        raise DataError(name, None, None, "empty file")
    if head[0] == "{":
        return LABELLED_JSONL
    if head[0] != "[":
        if suffix in _JSON_SUFFIXES:
            raise DataError(name, None, None, "not JSON (expected '[' or '{' at the start)")
        return QUERIES_TXT
    return _json_array_kind(decode(data), name)


def _json_array_kind(text: str, name: str) -> str:
    first = first_json_element(text, name)
    if first is None:
        raise DataError(name, None, None, "empty JSON array: no rows")
    if "conversations" in first or "chosen" in first:
        return SHAREGPT_PAIRS
    if "instruction" in first or "output" in first:
        return ALPACA
    raise DataError(name, 1, None, f"cannot tell the format from keys {sorted(first)}: expected "
                                   "Alpaca (instruction, input, output) or ShareGPT pairs "
                                   "(conversations, chosen, rejected)")
