"""The data layer: loaders and writers for the paper's formats, storage, and the starter set.

Every loader takes a local path or an ``s3://`` URI (None = the shipped starter set) and
raises :class:`DataError` naming the file, the 1-based row and the field on bad input.
"""

from zhufu.pipeline.data.errors import DataError
from zhufu.pipeline.data.formats import FORMATS, detect_format
from zhufu.pipeline.data.loaders import (
    load_labelled,
    load_pairs,
    load_prompts,
    load_queries,
    load_sft,
    read_jsonl,
)
from zhufu.pipeline.data.rows import (
    PROMPT_PREFIX,
    PROMPT_TEMPLATE,
    LabelledExample,
    PreferencePair,
    Prompt,
    SFTExample,
)
from zhufu.pipeline.data.starter import (
    starter_greetings,
    starter_labelled,
    starter_pairs,
    starter_queries,
    starter_sft,
    starter_split,
)
from zhufu.pipeline.data.storage import ObjectNotFound, StorageError, is_s3
from zhufu.pipeline.data.writers import (
    write_jsonl,
    write_labelled,
    write_pairs,
    write_prompts,
    write_queries,
    write_sft,
)

__all__ = [
    "FORMATS", "PROMPT_PREFIX", "PROMPT_TEMPLATE", "DataError", "LabelledExample",
    "ObjectNotFound", "PreferencePair", "Prompt", "SFTExample", "StorageError", "detect_format",
    "is_s3", "load_labelled", "load_pairs", "load_prompts", "load_queries", "load_sft",
    "read_jsonl", "starter_greetings", "starter_labelled", "starter_pairs", "starter_queries",
    "starter_sft", "starter_split", "write_jsonl", "write_labelled", "write_pairs",
    "write_prompts", "write_queries", "write_sft",
]
