"""Strict low-level parsing shared by the loaders: text, JSON arrays, lines, JSONL, parquet.

Every problem becomes a :class:`DataError` naming the file, the 1-based row and the field.
Bytes are decoded as UTF-8 with ``surrogateescape`` so that an invalid byte is reported at
the row and field that hold it instead of failing the whole file with an offset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from zhufu.pipeline.data.errors import DataError

#: Largest accepted text field (UTF-8 bytes). Greetings and queries are far shorter.
MAX_FIELD_BYTES = 100_000
#: Largest accepted line of a query file or a JSONL file (UTF-8 bytes).
MAX_LINE_BYTES = 1_000_000

_BOM = "\ufeff"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Unicode control characters (category Cc) other than tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_WS = re.compile(r"\s*")


def decode(data: bytes) -> str:
    """UTF-8 text with a leading BOM dropped; invalid bytes become lone surrogates."""
    text = data.decode("utf-8", "surrogateescape")
    return text[1:] if text.startswith(_BOM) else text


def _bad_byte(text: str) -> str | None:
    m = _SURROGATE.search(text)
    if m is None:
        return None
    code = ord(m.group())
    if 0xDC80 <= code <= 0xDCFF:  # what surrogateescape makes of an undecodable byte
        return f"invalid UTF-8 (byte 0x{code - 0xDC00:02x})"
    return f"invalid text (lone surrogate U+{code:04X})"


def _may_hold_lone_surrogates(text: str) -> bool:
    """Whether a JSON document's rows can hold a lone surrogate: only from an undecodable
    byte (see :func:`decode`) or a ``\\u`` escape, so a text with neither needs no row check."""
    return "\\u" in text or _SURROGATE.search(text) is not None


def check_utf8(obj: Any, file: str, row: int) -> None:
    """Raise DataError if any string in ``obj`` came from invalid UTF-8 bytes.

    The error names the top-level key whose key or value holds the bad byte.
    """
    items = obj.items() if isinstance(obj, dict) else [(None, obj)]
    for key, value in items:
        bad = _bad_byte(json.dumps([key, value], ensure_ascii=False))
        if bad:
            raise DataError(file, row, None if key is None else str(key), bad)


def text_field(record: dict[str, Any], key: str, file: str, row: int, *,
               allow_empty: bool = False, name: str | None = None) -> str:
    """``record[key]`` as a checked string: present, a string, non-blank, valid, not huge."""
    name = name or key
    if key not in record:
        raise DataError(file, row, name, f"missing (keys present: {sorted(record)})")
    return check_text(record[key], file, row, name, allow_empty=allow_empty)


def check_text(value: Any, file: str, row: int | None, field: str, *,
               allow_empty: bool = False) -> str:
    """``value`` if it is a valid, non-blank (unless allowed), bounded string; else DataError.

    Control characters other than ``\\n`` and ``\\t`` (NUL, BEL, ESC, CR, DEL, C1 …) are
    refused: no greeting or query holds one, and they corrupt terminals, logs and prompts.
    """
    if not isinstance(value, str):
        raise DataError(file, row, field, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(file, row, field, "empty")
    bad = _bad_byte(value)
    if bad:
        raise DataError(file, row, field, bad)
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_FIELD_BYTES:
        raise DataError(file, row, field, f"too long ({size} bytes > {MAX_FIELD_BYTES})")
    control = _CONTROL.search(value)
    if control:
        raise DataError(file, row, field, f"control character U+{ord(control.group()):04X} at "
                                          f"character {control.start() + 1} (only \\n and "
                                          f"\\t are allowed)")
    return value


def check_label(value: Any, file: str, row: int, field: str = "label") -> int:
    """A binary label: 0/1 or false/true (anything else is a DataError)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    raise DataError(file, row, field, f"expected 0/1 or true/false, got {value!r}")


def iter_json_array(text: str, file: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row, object) for each element of a top-level JSON array of objects.

    Elements are decoded one by one, so a syntax error (a truncated file, a missing comma)
    names the row it is in as well as the line and column.
    """
    decoder = json.JSONDecoder()
    suspect = _may_hold_lone_surrogates(text)
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if pos >= len(text):
        raise DataError(file, None, None, "empty file")
    if text[pos] != "[":
        raise DataError(file, None, None, "expected a JSON array of objects ('[' ...)")
    pos += 1
    row = 0
    while True:
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if row == 0 and pos < len(text) and text[pos] == "]":
            pos += 1
            break
        row += 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(file, row, None, f"invalid JSON at line {exc.lineno} column "
                                             f"{exc.colno}: {exc.msg}") from exc
        except RecursionError:
            raise DataError(file, row, None, "JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise DataError(file, row, None, f"expected a JSON object, got {_kind(obj)}")
        if suspect:
            check_utf8(obj, file, row)
        yield row, obj
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= len(text):
            raise DataError(file, row, None, "JSON array not closed (file truncated?)")
        if text[pos] == "]":
            pos += 1
            break
        if text[pos] != ",":
            line = text.count("\n", 0, pos) + 1
            raise DataError(file, row, None, f"expected ',' or ']' after the row at line {line}")
        pos += 1
    if text[pos:].strip():
        line = text.count("\n", 0, pos) + 1
        raise DataError(file, None, None, f"extra data after the JSON array at line {line}")


def first_json_element(text: str, file: str) -> dict[str, Any] | None:
    """The first object of a JSON array (None for an empty array); errors as iter_json_array."""
    first = next(iter_json_array(text, file), None)
    return None if first is None else first[1]


def iter_lines(text: str, file: str, field: str) -> Iterator[tuple[int, str]]:
    """(row, line) for each line, with line endings removed; blank lines are errors.

    A single final newline ends the last line (it does not make an empty row).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for row, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        size = len(line.encode("utf-8", "surrogateescape"))
        if size > MAX_LINE_BYTES:
            raise DataError(file, row, field, f"line too long ({size} bytes > {MAX_LINE_BYTES})")
        if not line.strip():
            raise DataError(file, row, field, "blank line (every line must hold one record)")
        yield row, line


def iter_jsonl(text: str, file: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row, object) for each line of a JSONL file; each line must be one JSON object."""
    suspect = _may_hold_lone_surrogates(text)
    for row, line in iter_lines(text, file, field="(line)"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(file, row, None, f"invalid JSON at column {exc.colno}: {exc.msg}"
                            ) from exc
        except RecursionError:
            raise DataError(file, row, None, "JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise DataError(file, row, None, f"expected a JSON object, got {_kind(obj)}")
        if suspect:
            check_utf8(obj, file, row)
        yield row, obj


def read_parquet(data: bytes, file: str) -> Any:
    """A pyarrow Table from parquet bytes (DataError if it is not readable parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if data[:4] != b"PAR1":
        raise DataError(file, None, None, "not a parquet file (no PAR1 magic bytes)")
    try:
        # ParquetFile, not read_table: read_table imports pyarrow.dataset and pandas (~0.4 s).
        # An Arrow buffer, not io.BytesIO: a Python file object lets Arrow threads call back
        # into Python, which aborted the interpreter at exit ("terminate called…") under load.
        return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(file, None, None, f"unreadable parquet: {exc}") from exc


def _kind(obj: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number"}.get(type(obj), "null" if obj is None else type(obj).__name__)
