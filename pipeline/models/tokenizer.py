"""The Qwen2.5 tokenizer, built offline from the ``qwen.tiktoken`` ranks file.

The ``qwen-agent`` wheel (installed with ``--no-deps``; never imported here) and the
``dashscope`` wheel both carry ``qwen.tiktoken``: 151,643 lines of ``base64(token) rank``.
From it we build a Hugging Face ``tokenizer.json``:

- the byte-level BPE vocabulary (GPT-2 byte → unicode mapping of each token's bytes);
- the merges, recovered from the ranks: running BPE on a token's bytes with only the ranks
  below its own leaves exactly two parts, and those two parts are its merge;
- Qwen2's pre-tokenizer split regex, NFC normalisation, a byte-level decoder;
- Qwen2.5's 22 added tokens (ids 151643–151664) and a ChatML chat template.

The result is cached under ``<data_dir>/models/qwen2.5-tokenizer`` and built once.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from zhufu.pipeline.errors import ModelSpecError
from zhufu.pipeline.models.paths import models_dir

TOKENIZER_DIRNAME = "qwen2.5-tokenizer"
NUM_RANKS = 151_643

#: Qwen2's pre-tokenizer: contractions, letters, single digits, punctuation runs, whitespace.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Qwen2.5's added tokens in id order from 151643; the flag says whether it is "special"
#: (skipped by ``decode(skip_special_tokens=True)``), as in the released tokenizer.
ADDED_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"

#: ChatML: each turn is ``<|im_start|>ROLE\nCONTENT<|im_end|>\n``; no default system turn.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

#: Where each wheel keeps the ranks file (searched in this order).
SOURCES: list[tuple[str, str]] = [
    ("qwen-agent", "qwen_agent/utils/qwen.tiktoken"),
    ("dashscope", "dashscope/tokenizers/qwen.tiktoken"),
]


class TokenizerSourceError(ModelSpecError):
    """No ``qwen.tiktoken`` could be found or it is malformed."""


def find_tiktoken_file() -> Path:
    """Locate ``qwen.tiktoken`` inside the installed qwen-agent or dashscope distribution."""
    tried = []
    for dist_name, rel in SOURCES:
        try:
            dist = distribution(dist_name)
        except PackageNotFoundError:
            tried.append(f"{dist_name}: not installed")
            continue
        candidates = [Path(str(dist.locate_file(rel)))]
        candidates += [Path(str(dist.locate_file(f))) for f in (dist.files or [])
                       if f.name == "qwen.tiktoken"]
        for path in candidates:
            if path.is_file():
                return path
        tried.append(f"{dist_name}: installed but has no qwen.tiktoken")
    raise TokenizerSourceError(
        "cannot build the Qwen2.5 tokenizer offline: no qwen.tiktoken found ("
        + "; ".join(tried)
        + "). Install one carrier wheel: `.venv/bin/pip install --no-deps qwen-agent==0.0.34`"
        " (or dashscope==2.0.2)."
    )


def read_ranks(path: Path) -> dict[bytes, int]:
    """Parse ``base64 rank`` lines; error names the file and 1-based line on bad input."""
    ranks: dict[bytes, int] = {}
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                token_b64, rank = line.split()
                ranks[base64.b64decode(token_b64, validate=True)] = int(rank)
            except ValueError as e:
                raise TokenizerSourceError(f"{path}: line {lineno}: expected "
                                           f"'<base64> <rank>': {e}") from e
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokenizerSourceError(f"{path}: ranks are not 0..{len(ranks) - 1} without gaps")
    return ranks


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable unicode character map used by byte-level BPE."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _split_once(ranks: dict[bytes, int], token: bytes, max_rank: int) -> tuple[bytes, bytes]:
    """BPE ``token`` using only ranks below ``max_rank``; the two parts left are its merge."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_i, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best_i, best_rank = i, r
        if best_i < 0:
            break
        parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    if len(parts) != 2:
        raise TokenizerSourceError(f"token {token!r} (rank {max_rank}) is not the merge of "
                                   "two lower-ranked tokens")
    return parts[0], parts[1]


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE vocabulary and merges (in rank order) equivalent to the tiktoken ranks."""
    table = bytes_to_unicode()

    def enc(b: bytes) -> str:
        return "".join(table[x] for x in b)

    vocab = {enc(tok): rank for tok, rank in ranks.items()}
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) > 1:
            left, right = _split_once(ranks, tok, rank)
            merges.append((enc(left), enc(right)))
    return vocab, merges


def build_tokenizer(out_dir: Path, tiktoken_file: Path | None = None) -> Path:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and the chat template to ``out_dir``."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    source = tiktoken_file or find_tiktoken_file()
    ranks = read_ranks(source)
    if len(ranks) != NUM_RANKS:
        raise TokenizerSourceError(f"{source}: {len(ranks)} ranks, expected {NUM_RANKS} "
                                   "(is this Qwen's qwen.tiktoken?)")
    vocab, merges = vocab_and_merges(ranks)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=False,
                               fuse_unk=False, ignore_merges=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    for content, special in ADDED_TOKENS:
        added = AddedToken(content, special=special, normalized=False, single_word=False,
                           lstrip=False, rstrip=False)
        (tok.add_special_tokens if special else tok.add_tokens)([added])
    expected_len = NUM_RANKS + len(ADDED_TOKENS)
    if tok.get_vocab_size(with_added_tokens=True) != expected_len:
        raise TokenizerSourceError(f"built vocabulary has {tok.get_vocab_size()} entries, "
                                   f"expected {expected_len}")
    return save_fast_tokenizer(tok, out_dir, source=source.name)


def save_fast_tokenizer(tok, out_dir: Path, source: str) -> Path:  # noqa: ANN001 - Tokenizer
    """Save a ``tokenizers.Tokenizer`` with Qwen2.5's EOS / pad tokens and chat template as a
    Hugging Face fast tokenizer in ``out_dir``; ``source`` is recorded in its config."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, bos_token=None,
        unk_token=None, model_max_length=32768, clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    config_file = out_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.update({"tokenizer_class": "Qwen2Tokenizer", "add_bos_token": False,
                   "errors": "replace", "zhufu_source": source})
    config_file.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    return out_dir


def install_dir(build, target: Path) -> Path:  # noqa: ANN001 - build is Callable[[Path], Any]
    """Run ``build(tmp)`` in a sibling temp dir and move it to ``target`` atomically.

    Two processes building at once both succeed; the first rename wins, the other's copy is
    discarded. Returns ``target``.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def qwen_tokenizer_path() -> Path:
    """The cached Qwen2.5 tokenizer dir, built on first use (see module docstring)."""
    return install_dir(build_tokenizer, models_dir() / TOKENIZER_DIRNAME)
