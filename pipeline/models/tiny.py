"""The embedded default models: a tiny Qwen2 policy and a tiny Qwen2 reward model.

Both are built from configs (no download) with a fixed seed and saved with the cut Qwen2.5
tokenizer (:mod:`zhufu.pipeline.models.vocab`: Qwen's byte-level BPE kept to the tokens the
project's data uses, ~3.9k rows instead of 151,665) under ``<data_dir>/models/``. Random
weights until ``zhufu sft`` trains the policy; every code path (SFT, reward training, GRPO,
generation) runs on them in seconds on a CPU. Head dim 64 keeps them loadable by vLLM's CPU
kernels.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from zhufu.pipeline.models.paths import models_dir
from zhufu.pipeline.models.tokenizer import install_dir
from zhufu.pipeline.models.vocab import cut_tokenizer_path, source_digest

TINY_POLICY_DIRNAME = "tiny-qwen2"
TINY_RM_DIRNAME = "tiny-qwen2-rm"
SEED = 1234

#: Hidden 128, 2 layers, 2 query heads / 1 KV head of dim 64, tied embeddings; with the
#: cut vocabulary (~3.9k rows) ~0.9M parameters, half of them the embedding table.
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "max_position_embeddings": 2048,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


def tiny_config(tokenizer: Any) -> dict[str, Any]:
    """:data:`TINY_SHAPE` plus the vocabulary size and special ids of ``tokenizer``."""
    return {**TINY_SHAPE, "vocab_size": len(tokenizer), "bos_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}


def _copy_tokenizer(out_dir: Path) -> None:
    for f in cut_tokenizer_path().iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)


def _build(out_dir: Path, head: str) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config

    from zhufu.pipeline.models.resolve import load_tokenizer

    tok = load_tokenizer(str(cut_tokenizer_path()))  # built (or reused) before seeding
    config = Qwen2Config(**tiny_config(tok), **({"num_labels": 1} if head == "rm" else {}))
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
            eos_token_id=[tok.eos_token_id, tok.pad_token_id], pad_token_id=tok.pad_token_id,
            do_sample=True,
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


def _dirname(base: str) -> str:
    """``base-<digest>``: the digest covers this file (the shape) and the vocabulary sources."""
    return f"{base}-{source_digest(Path(__file__).resolve())}"


def tiny_policy_path() -> Path:
    """The tiny ``Qwen2ForCausalLM`` dir (built once, deterministic), tokenizer included."""
    return install_dir(lambda d: _build(d, "lm"), models_dir() / _dirname(TINY_POLICY_DIRNAME))


def tiny_reward_model_path() -> Path:
    """The tiny ``Qwen2ForSequenceClassification`` (one score) dir, tokenizer included."""
    return install_dir(lambda d: _build(d, "rm"), models_dir() / _dirname(TINY_RM_DIRNAME))
