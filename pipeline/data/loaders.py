"""Strict loaders for the paper's data formats, from a local path or an ``s3://`` URI.

Each loader reads the whole file, checks every row and returns typed rows in file order.
Nothing is skipped: the first malformed row raises :class:`DataError` naming the file, the
1-based row and the field. ``load_x(None)`` returns the shipped starter set instead.

Formats (see :mod:`zhufu.pipeline.data.formats`):

- Alpaca SFT JSON: ``[{"instruction", "input", "output"}, ...]`` (``input`` may be empty).
- ShareGPT preference JSON: ``[{"conversations": [{"from": "human", "value": query}],
  "chosen": {"from": "gpt", "value": ...}, "rejected": {...}}, ...]`` (one human turn;
  ``chosen == rejected`` is allowed — the paper's file has 12 such pairs — and counted by
  ``zhufu data validate``).
- verl parquet: column ``prompt`` = list of ``{role, content}``; other columns are ignored.
- Query text: one query per line, UTF-8; blank lines are errors (one final newline is fine).
- Labelled JSONL: ``{"query", "response", "label"}`` per line, label 0/1 or false/true.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from zhufu.pipeline.data import formats as F
from zhufu.pipeline.data.errors import DataError
from zhufu.pipeline.data.parse import (
    check_label,
    check_text,
    decode,
    iter_json_array,
    iter_jsonl,
    iter_lines,
    read_parquet,
    text_field,
)
from zhufu.pipeline.data.rows import (
    LabelledExample,
    PreferencePair,
    Prompt,
    SFTExample,
    query_from_prompt_text,
)
from zhufu.pipeline.data.storage import read_bytes

Uri = str | os.PathLike[str]
_ROLES = ("system", "user", "assistant")


def _read(uri: Uri, expected: Sequence[str]) -> tuple[str, bytes, str]:
    """(name, bytes, format) of ``uri``; DataError unless the format is one of ``expected``."""
    name = str(uri)
    data = read_bytes(name)
    fmt = F.detect_format_bytes(data, name)
    if fmt not in expected:
        raise DataError(name, None, None, f"expected {' or '.join(expected)}, found {fmt}")
    return name, data, fmt


def _nonempty(rows: list[Any], name: str) -> list[Any]:
    if not rows:
        raise DataError(name, None, None, "no rows")
    return rows


# --- Alpaca ---------------------------------------------------------------------------------

def parse_sft(data: bytes, name: str) -> list[SFTExample]:
    """Alpaca rows from JSON bytes (see module docstring)."""
    rows = []
    for row, obj in iter_json_array(decode(data), name):
        rows.append(SFTExample(
            instruction=text_field(obj, "instruction", name, row),
            input=text_field(obj, "input", name, row, allow_empty=True)
            if "input" in obj else "",
            output=text_field(obj, "output", name, row),
        ))
    return _nonempty(rows, name)


def load_sft(uri: Uri | None = None) -> list[SFTExample]:
    """Alpaca SFT examples from ``uri``; None = the starter set's good greetings."""
    if uri is None:
        from zhufu.pipeline.data.starter import starter_sft

        return starter_sft()
    name, data, _ = _read(uri, [F.ALPACA])
    return parse_sft(data, name)


# --- ShareGPT preference pairs --------------------------------------------------------------

def _message(obj: Any, name: str, row: int, field: str, role: str) -> str:
    if not isinstance(obj, dict):
        raise DataError(name, row, field, f"expected an object {{from, value}}, "
                                          f"got {type(obj).__name__}")
    who = obj.get("from")
    if who != role:
        raise DataError(name, row, f"{field}.from", f"expected '{role}', got {who!r}")
    return text_field(obj, "value", name, row, name=f"{field}.value")


def parse_pairs(data: bytes, name: str) -> list[PreferencePair]:
    """Preference pairs from ShareGPT JSON bytes (see module docstring)."""
    pairs = []
    for row, obj in iter_json_array(decode(data), name):
        conv = obj.get("conversations")
        if "conversations" not in obj:
            raise DataError(name, row, "conversations", f"missing (keys present: {sorted(obj)})")
        if not isinstance(conv, list) or len(conv) != 1:
            what = f"{len(conv)} messages" if isinstance(conv, list) else type(conv).__name__
            raise DataError(name, row, "conversations",
                            f"expected a list with one human message, got {what}")
        query = _message(conv[0], name, row, "conversations[0]", "human")
        for key in ("chosen", "rejected"):
            if key not in obj:
                raise DataError(name, row, key, f"missing (keys present: {sorted(obj)})")
        chosen = _message(obj["chosen"], name, row, "chosen", "gpt")
        rejected = _message(obj["rejected"], name, row, "rejected", "gpt")
        pairs.append(PreferencePair(query=query, chosen=chosen, rejected=rejected))
    return _nonempty(pairs, name)


def load_pairs(uri: Uri | None = None) -> list[PreferencePair]:
    """Preference pairs from ShareGPT JSON; None = pairs built from the starter labels."""
    if uri is None:
        from zhufu.pipeline.data.starter import starter_pairs

        return starter_pairs()
    name, data, _ = _read(uri, [F.SHAREGPT_PAIRS])
    return parse_pairs(data, name)


# --- verl parquet ---------------------------------------------------------------------------

def parse_prompts_parquet(data: bytes, name: str) -> list[Prompt]:
    """GRPO prompts from verl parquet bytes: column ``prompt`` = list of {role, content}."""
    import pyarrow as pa

    table = read_parquet(data, name)
    if "prompt" not in table.column_names:
        raise DataError(name, None, "prompt", f"missing column (columns: {table.column_names})")
    ptype = table.schema.field("prompt").type
    if not (pa.types.is_list(ptype) or pa.types.is_large_list(ptype)) or not pa.types.is_struct(
            ptype.value_type):
        raise DataError(name, None, "prompt", f"expected a list of {{role, content}} structs, "
                                              f"got {ptype}")
    names = {ptype.value_type.field(i).name for i in range(ptype.value_type.num_fields)}
    if not {"role", "content"} <= names:
        raise DataError(name, None, "prompt", f"message structs need 'role' and 'content', "
                                              f"have {sorted(names)}")
    prompts = []
    for row, messages in enumerate(table.column("prompt").to_pylist(), start=1):
        prompts.append(_prompt_row(messages, name, row))
    return _nonempty(prompts, name)


def _prompt_row(messages: Any, name: str, row: int) -> Prompt:
    if not messages:
        raise DataError(name, row, "prompt", "empty or null (needs at least one user message)")
    clean: list[dict[str, str]] = []
    for i, msg in enumerate(messages):
        field = f"prompt[{i}]"
        if msg is None:
            raise DataError(name, row, field, "null message")
        role = msg.get("role")
        if role not in _ROLES:
            raise DataError(name, row, f"{field}.role", f"expected one of {_ROLES}, got {role!r}")
        content = check_text(msg.get("content"), name, row, f"{field}.content")
        clean.append({"role": role, "content": content})
    users = [m["content"] for m in clean if m["role"] == "user"]
    if not users:
        raise DataError(name, row, "prompt", "no user message")
    query = query_from_prompt_text(users[-1])
    if not query:
        raise DataError(name, row, "prompt", "the user message holds no query")
    return Prompt(query=query, messages=clean)


def load_prompts(uri: Uri | None = None) -> list[Prompt]:
    """GRPO prompts from verl parquet, or any query source wrapped with PROMPT_TEMPLATE.

    None = the starter queries, wrapped.
    """
    if uri is not None:
        name, data, fmt = _read(uri, F.FORMATS)
        if fmt == F.VERL_PARQUET:
            return parse_prompts_parquet(data, name)
        queries = _queries_from(data, name, fmt)
    else:
        from zhufu.pipeline.data.starter import starter_queries

        queries = starter_queries()
    return [Prompt.from_query(q) for q in queries]


# --- queries --------------------------------------------------------------------------------

def parse_queries_txt(data: bytes, name: str) -> list[str]:
    """Queries from a text file: one per line, stripped; blank lines are errors."""
    queries = []
    for row, line in iter_lines(decode(data), name, field="query"):
        queries.append(check_text(line.strip(), name, row, "query"))
    return _nonempty(queries, name)


def _queries_from(data: bytes, name: str, fmt: str) -> list[str]:
    if fmt == F.QUERIES_TXT:
        return parse_queries_txt(data, name)
    if fmt == F.VERL_PARQUET:
        return [p.query for p in parse_prompts_parquet(data, name)]
    if fmt == F.SHAREGPT_PAIRS:
        return [p.query for p in parse_pairs(data, name)]
    if fmt == F.LABELLED_JSONL:
        return [r.query for r in parse_labelled(data, name)]
    return [r.instruction for r in parse_sft(data, name)]


def load_queries(uri: Uri | None = None, unique: bool = False) -> list[str]:
    """Queries in file order: a query-per-line text, or the queries of any other format.

    From verl parquet the query is the user message without the instruction prefix; from
    Alpaca it is the ``instruction``. ``unique=True`` keeps the first of repeated queries.
    None = the starter queries.
    """
    if uri is None:
        from zhufu.pipeline.data.starter import starter_queries

        queries = starter_queries()
    else:
        name, data, fmt = _read(uri, F.FORMATS)
        queries = _queries_from(data, name, fmt)
    return list(dict.fromkeys(queries)) if unique else queries


# --- labelled JSONL and generic rows --------------------------------------------------------

def parse_labelled(data: bytes, name: str) -> list[LabelledExample]:
    """Labelled examples from JSONL bytes (see module docstring)."""
    rows = []
    for row, obj in iter_jsonl(decode(data), name):
        query = text_field(obj, "query", name, row)
        response = text_field(obj, "response", name, row)
        if "label" not in obj:
            raise DataError(name, row, "label", f"missing (keys present: {sorted(obj)})")
        rows.append(LabelledExample(query, response, check_label(obj["label"], name, row)))
    return _nonempty(rows, name)


def load_labelled(uri: Uri | None = None) -> list[LabelledExample]:
    """Labelled good/bad greetings from JSONL; None = the starter set's labelled examples."""
    if uri is None:
        from zhufu.pipeline.data.starter import starter_labelled

        return starter_labelled()
    name, data, _ = _read(uri, [F.LABELLED_JSONL])
    return parse_labelled(data, name)


def read_jsonl(uri: Uri, require: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Generic JSONL rows (dicts, file order, every field kept).

    Each field named in ``require`` must be a non-empty string, e.g.
    ``read_jsonl(path, require=("query", "response"))`` for rows to score. An empty file
    gives an empty list.
    """
    name = str(uri)
    rows = []
    for row, obj in iter_jsonl(decode(read_bytes(name)), name):
        for key in require:
            text_field(obj, key, name, row)
        rows.append(obj)
    return rows
