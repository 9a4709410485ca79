"""The embedded models' tokenizer: Qwen2.5's, cut to the tokens Zhufu's own data uses.

With Qwen's 151,665 rows the embedding table is most of a tiny model and the output layer
most of each training step, yet the project's greetings use a few thousand of them. The
cut tokenizer keeps:

- the 256 single-byte tokens, so any text still encodes (unseen characters fall back to
  byte pieces; there is no unknown token);
- every token the full tokenizer produces on the project's data: the chat template's role
  lines, the GRPO prompt prefix, the starter set and the compositional generator's output
  (:mod:`zhufu.pipeline.data.compose`, its seeds and :data:`VOCAB_EXAMPLES` generated
  examples);
- every token of the :data:`COMMON_CHARS` most frequent Chinese characters (by the word
  frequencies of jieba's dictionary, a dependency of the analyser; 1,500 cover 93 % of its
  character mass), full-width punctuation (GB2312 rows 1 and 3) and printable ASCII, so
  other Chinese queries tokenize into known pieces;
- the closure under merges: both halves of every kept token's merge, so byte-level BPE can
  still build each kept token.

Ids are renumbered in the original rank order and the merges keep their order, so on the
project's data the cut tokenizer splits text exactly as the full one does (only the ids
differ); the 22 added tokens follow the regular ones, with the same chat template, EOS and
pad tokens. The result is an ordinary ``tokenizer.json`` that loads as a fast tokenizer
through :func:`zhufu.pipeline.models.load_tokenizer`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from zhufu.pipeline.models.paths import models_dir
from zhufu.pipeline.models.tokenizer import (
    bytes_to_unicode,
    install_dir,
    qwen_tokenizer_path,
    save_fast_tokenizer,
)

CUT_DIRNAME = "qwen2.5-tokenizer-zhufu"
#: How many of the most frequent Chinese characters the cut vocabulary keeps.
COMMON_CHARS = 1_500
_PIPELINE = Path(__file__).resolve().parents[1]
#: The files the cut vocabulary is computed from: changing one gives a new cache folder.
SOURCES = (Path(__file__).resolve(), _PIPELINE / "data" / "compose" / "__init__.py",
           _PIPELINE / "data" / "compose" / "seeds.yaml",
           *(_PIPELINE / "data" / "starter" / f
             for f in ("greetings.jsonl", "labelled.jsonl", "queries.txt")))
#: The chat template's own text around each message (role names, newlines).
CHAT_TEXTS = tuple(f"<|im_start|>{role}\n<|im_end|>\n" for role in ("system", "user",
                                                                      "assistant"))
#: How many generated examples (seed 0) the vocabulary is computed over.
VOCAB_EXAMPLES = 20_000


def frequent_characters(n: int = COMMON_CHARS) -> list[str]:
    """The ``n`` most frequent Chinese characters, counted over jieba's dictionary (each
    word's frequency credited to each of its characters; ties in dictionary order)."""
    import jieba

    counts: dict[str, int] = {}
    path = Path(jieba.__file__).with_name("dict.txt")
    with path.open(encoding="utf-8") as f:
        for line in f:
            word, freq, *_ = line.split()
            for ch in word:
                if "\u4e00" <= ch <= "\u9fff":
                    counts[ch] = counts.get(ch, 0) + int(freq)
    return sorted(counts, key=lambda ch: -counts[ch])[:n]


def common_characters() -> list[str]:
    """:func:`frequent_characters`, GB2312's punctuation rows (1 and 3) and printable ASCII."""
    chars = [chr(c) for c in range(0x20, 0x7F)]
    for hi in (0xA1, 0xA3):
        for lo in range(0xA1, 0xFF):
            try:
                chars.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars + frequent_characters()


def project_texts() -> list[str]:
    """The texts the cut vocabulary must cover exactly (see module docstring)."""
    from zhufu.pipeline.data import (
        PROMPT_PREFIX,
        starter_greetings,
        starter_labelled,
        starter_queries,
    )
    from zhufu.pipeline.data.compose import compose, load_seeds

    texts = [*CHAT_TEXTS, PROMPT_PREFIX, *starter_queries(), *load_seeds().texts()]
    texts += [ex.response for ex in (*starter_greetings(), *starter_labelled())]
    for ex in compose(VOCAB_EXAMPLES, seed=0):
        texts += [ex.query, ex.greeting]
    return list(dict.fromkeys(texts))


def _merge_parts(merges: list) -> dict[str, tuple[str, str]]:
    parts = {}
    for merge in merges:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        parts[left + right] = (left, right)
    return parts


def cut_vocabulary(full_file: Path, texts: Iterable[str]) -> dict:
    """A ``tokenizer.json`` mapping keeping only what ``texts`` need (see module docstring).

    ``full_file`` is the full ``tokenizer.json``; the result has renumbered ids, the merges
    whose results are kept (in their original order) and the added tokens after them.
    """
    from tokenizers import Tokenizer

    full = json.loads(full_file.read_text(encoding="utf-8"))
    vocab: dict[str, int] = full["model"]["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    keep = set(bytes_to_unicode().values())
    for enc in Tokenizer.from_file(str(full_file)).encode_batch(list(texts),
                                                                 add_special_tokens=False):
        keep.update(by_id[i] for i in enc.ids if i in by_id)
    parts = _merge_parts(full["model"]["merges"])
    stack = list(keep)
    while stack:
        for half in parts.get(stack.pop(), ()):
            if half not in keep:
                keep.add(half)
                stack.append(half)
    new_vocab = {t: i for i, t in enumerate(sorted(keep, key=vocab.__getitem__))}
    merges = [m for m in full["model"]["merges"]
              if "".join(m.split(" ", 1) if isinstance(m, str) else m) in new_vocab]
    added = sorted(full["added_tokens"], key=lambda a: a["id"])
    return {**full, "model": {**full["model"], "vocab": new_vocab, "merges": merges},
            "added_tokens": [{**a, "id": len(new_vocab) + i} for i, a in enumerate(added)]}


def build_cut_tokenizer(out_dir: Path, texts: Iterable[str] | None = None,
                        full_dir: Path | None = None) -> Path:
    """Write the cut tokenizer (``tokenizer.json``, config, chat template) to ``out_dir``."""
    from tokenizers import Tokenizer

    full_dir = full_dir or qwen_tokenizer_path()
    texts = list(project_texts() if texts is None else texts) + common_characters()
    cut = cut_vocabulary(full_dir / "tokenizer.json", texts)
    save_fast_tokenizer(Tokenizer.from_str(json.dumps(cut)), out_dir,
                        source=f"{full_dir.name} cut to {len(cut['model']['vocab'])} tokens")
    return out_dir


@cache
def source_digest(*extra: Path) -> str:
    """A short digest of :data:`SOURCES` (and ``extra`` files) and of jieba's version: part
    of cache folder names, so a change to the seeds, the starter set, the generator or the
    frequency list never reuses a stale build."""
    import jieba

    h = hashlib.sha256(f"jieba {jieba.__version__}\0".encode())
    for path in (*SOURCES, *extra):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:10]


def cut_tokenizer_path() -> Path:
    """The cached cut tokenizer dir, built on first use from the full one."""
    return install_dir(build_cut_tokenizer, models_dir() / f"{CUT_DIRNAME}-{source_digest()}")
