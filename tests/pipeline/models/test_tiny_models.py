"""The tiny Qwen2 policy and reward model: built offline, deterministic, loadable, runnable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from zhufu.pipeline.models import (
    ModelSpecError,
    load_causal_lm,
    load_reward_model,
    output_path,
    resolve_model,
    tiny_policy_path,
    tiny_reward_model_path,
)
from zhufu.pipeline.models.tokenizer import qwen_tokenizer_path
from zhufu.pipeline.models.vocab import cut_tokenizer_path


def test_tiny_policy_shape_and_generation(zhufu_home: Path) -> None:
    import torch

    path = tiny_policy_path()
    assert path.parent == zhufu_home / "models" and path.name.startswith("tiny-qwen2-")
    assert resolve_model("tiny") == path
    model, tok = load_causal_lm("tiny", device="cpu")
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
            cfg.num_key_value_heads, cfg.head_dim) == (128, 2, 2, 1, 64)
    vocab = len(tok)
    assert cfg.vocab_size == vocab and 3_000 < vocab < 5_000 and cfg.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert 700_000 < sum(p.numel() for p in model.parameters()) < 1_500_000
    assert tok.padding_side == "left"
    batch = tok(["你好", "祝你生日快乐，天天开心"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch.input_ids.shape[1], vocab)
    assert torch.isfinite(logits).all()
    out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out.shape == (2, batch.input_ids.shape[1] + 5)
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert tok.convert_ids_to_tokens(tok.pad_token_id) == "<|endoftext|>"
    assert set(model.generation_config.eos_token_id) == {tok.eos_token_id, tok.pad_token_id}


def test_tiny_reward_model_scores(zhufu_home: Path) -> None:
    import torch

    assert resolve_model("tiny-rm") == tiny_reward_model_path()
    model, tok = load_reward_model("tiny-rm", device="cpu")
    assert model.config.num_labels == 1 and model.config.pad_token_id == tok.pad_token_id
    batch = tok(["新年快乐", "祝您中秋团圆，阖家幸福美满"], return_tensors="pt", padding=True)
    with torch.no_grad():
        scores = model(**batch).logits
    assert scores.shape == (2, 1) and torch.isfinite(scores).all()
    # padding must not change a sequence's score (the head reads the last real token)
    with torch.no_grad():
        alone = model(**tok(["新年快乐"], return_tensors="pt")).logits
    assert torch.allclose(alone[0], scores[0], atol=1e-5)


def test_tiny_build_is_deterministic(zhufu_home: Path, tmp_path: Path) -> None:
    """A second build (another data dir) has byte-identical weights."""
    first = tiny_policy_path() / "model.safetensors"
    other = tmp_path / "other-home"
    (other / "models").mkdir(parents=True)
    for tokenizer in (qwen_tokenizer_path(), cut_tokenizer_path()):
        (other / "models" / tokenizer.name).symlink_to(tokenizer)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZHUFU_HOME", str(other))
        second = tiny_policy_path() / "model.safetensors"
    assert second.parent.parent == other / "models"

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    assert digest(first) == digest(second)


def test_tiny_build_on_a_non_zero_rank_writes_the_weights(zhufu_home: Path, tmp_path: Path
                                                          ) -> None:
    """Under torch.distributed, transformers' save_pretrained writes only on global rank 0;
    the tiny models are a per-node cache, so rank 1 of a second node must build them too
    (the two-node GRPORun of ``make e2e`` failed on a config.json-less tiny-qwen2)."""
    from transformers.distributed import mixin

    other = tmp_path / "rank1-home"
    (other / "models").mkdir(parents=True)
    (other / "models" / "qwen2.5-tokenizer").symlink_to(zhufu_home / "models" /
                                                        "qwen2.5-tokenizer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mixin, "_is_torch_distributed_initialized", lambda: True)
        mp.setattr(mixin, "_get_torch_distributed_rank", lambda: 1)
        mp.setenv("ZHUFU_HOME", str(other))
        path = tiny_policy_path()
    assert {"config.json", "generation_config.json", "model.safetensors"} <= {
        f.name for f in path.iterdir()}
    model, _ = load_causal_lm(str(path), device="cpu")
    assert model.config.model_type == "qwen2"
    # what TRL's GRPOTrainer reads to build the reference model from the path
    assert model.config.architectures == ["Qwen2ForCausalLM"]


def test_local_dir_spec_and_errors(zhufu_home: Path, tmp_path: Path) -> None:
    assert resolve_model(str(tiny_policy_path())) == tiny_policy_path()
    with pytest.raises(ModelSpecError, match="not 'tiny', 'tiny-rm'"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(ModelSpecError, match="is a file"):
        resolve_model(str(tmp_path / "f.bin"))
    with pytest.raises(ModelSpecError, match="num_labels=1"):
        load_reward_model("tiny")  # a causal LM has no 1-score head config


def test_output_path(zhufu_home: Path, tmp_path: Path) -> None:
    assert output_path(".zhufu/outputs", "sft", "r1") == str(zhufu_home / "outputs" / "sft/r1")
    assert output_path(str(tmp_path), "x") == str(tmp_path / "x")
    assert output_path("s3://b/p/", "sft", "r1") == "s3://b/p/sft/r1"
