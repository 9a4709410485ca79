"""The embedded default models: a tiny Qwen2 policy and a tiny Qwen2 reward model.

Both are built from configs (no download) with a fixed seed, use the real Qwen2.5 tokenizer
(vocabulary 151,665) and are saved with it under ``<data_dir>/models/``. They are useless as
writers (random weights) but exercise every code path — SFT, reward training, GRPO,
generation — in seconds on a CPU. Head dim 64 keeps them loadable by vLLM's CPU kernels.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from zhufu.pipeline.models.paths import models_dir
from zhufu.pipeline.models.tokenizer import (
    ADDED_TOKENS,
    EOS_TOKEN,
    NUM_RANKS,
    PAD_TOKEN,
    install_dir,
    qwen_tokenizer_path,
)

TINY_POLICY_DIRNAME = "tiny-qwen2"
TINY_RM_DIRNAME = "tiny-qwen2-rm"
SEED = 1234
VOCAB_SIZE = NUM_RANKS + len(ADDED_TOKENS)
_IDS = {tok: NUM_RANKS + i for i, (tok, _) in enumerate(ADDED_TOKENS)}
EOS_ID = _IDS[EOS_TOKEN]
PAD_ID = _IDS[PAD_TOKEN]

#: Hidden 64, 2 layers, 4 query heads / 2 KV heads of dim 64, tied embeddings (~9.8M params).
TINY_CONFIG: dict[str, Any] = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 2048,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "bos_token_id": PAD_ID,
    "eos_token_id": EOS_ID,
    "pad_token_id": PAD_ID,
}


def _copy_tokenizer(out_dir: Path) -> None:
    for f in qwen_tokenizer_path().iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)


def _build(out_dir: Path, head: str) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config

    qwen_tokenizer_path()  # build (or reuse) the tokenizer before seeding
    config = Qwen2Config(**TINY_CONFIG, **({"num_labels": 1} if head == "rm" else {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        if head == "rm":
            from transformers import Qwen2ForSequenceClassification

            model = Qwen2ForSequenceClassification(config)
        else:
            from transformers import Qwen2ForCausalLM

            model = Qwen2ForCausalLM(config)
    if head != "rm":
        model.generation_config = GenerationConfig(
            eos_token_id=[EOS_ID, PAD_ID], pad_token_id=PAD_ID, do_sample=True,
            temperature=1.0, top_p=1.0, max_new_tokens=64)
    # Not model.save_pretrained: once torch.distributed is up it writes only on global rank 0,
    # and this is a per-node cache (a second node's pods build their own copy).
    from safetensors.torch import save_file

    config.architectures = [type(model).__name__]  # what save_pretrained records
    config.dtype = "float32"
    config.save_pretrained(out_dir)
    if head != "rm":
        model.generation_config.save_pretrained(out_dir)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state.pop("lm_head.weight", None)  # tied to the embeddings, as save_pretrained does
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    _copy_tokenizer(out_dir)


def tiny_policy_path() -> Path:
    """The tiny ``Qwen2ForCausalLM`` dir (built once, deterministic), tokenizer included."""
    return install_dir(lambda d: _build(d, "lm"), models_dir() / TINY_POLICY_DIRNAME)


def tiny_reward_model_path() -> Path:
    """The tiny ``Qwen2ForSequenceClassification`` (one score) dir, tokenizer included."""
    return install_dir(lambda d: _build(d, "rm"), models_dir() / TINY_RM_DIRNAME)
