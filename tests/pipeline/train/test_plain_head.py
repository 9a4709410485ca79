"""The CPU LM head (plain_head.py) computes what TRL's fused, tiled head computes."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_plain_head_matches_trl_fused_head(zhufu_home: Path, temperature: float) -> None:
    """Same log-probabilities, entropies, top-1 flags, mask and loss, and the same gradient,
    on a padded batch with prompt labels masked; calls without ``fused_lm_head`` (generation)
    still reach the model's own forward."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from zhufu.pipeline.models import tiny_policy_path
    from zhufu.pipeline.train.plain_head import add_plain_lm_head

    torch.manual_seed(0)
    ids = torch.randint(0, 3000, (3, 12))
    attention = torch.ones_like(ids)
    attention[0, :4] = 0  # left padding
    labels = ids.masked_fill(attention == 0, -100)
    labels[:, :5] = -100  # the prompt
    outs, grads = [], []
    for plain in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_policy_path(), dtype=torch.float32)
        add_fused_lm_head(model, temperature=temperature,
                          outputs=("log_probs", "entropy", "is_top1"))
        if plain:
            add_plain_lm_head(model, temperature)
        out = model(input_ids=ids, attention_mask=attention, labels=labels, fused_lm_head=True)
        (out.loss + out.entropy.sum() * 0.01).backward()
        outs.append(out)
        grads.append(model.model.embed_tokens.weight.grad.clone())
        logits = model(input_ids=ids, attention_mask=attention).logits  # the model's own
        assert logits.shape == (3, 12, model.config.vocab_size)
    fused, plain = outs
    assert torch.equal(plain.label_mask, fused.label_mask) and plain.label_mask.sum() == 21
    for name in ("log_probs", "entropy"):
        assert torch.allclose(getattr(plain, name), getattr(fused, name), atol=1e-5), name
    assert torch.equal(plain.is_top1, fused.is_top1)
    assert plain.loss.item() == pytest.approx(fused.loss.item(), rel=1e-5)
    assert torch.allclose(grads[1], grads[0], atol=1e-6)
    assert (plain.log_probs[~plain.label_mask] == 0).all()


def test_sft_trainer_loss_and_metrics_with_the_plain_head(zhufu_home: Path,
                                                           tmp_path: Path) -> None:
    """TRL's SFTTrainer.compute_loss on a padding-free batch gives the same loss and the same
    entropy / token accuracy / token count with the plain head as with its own."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from zhufu.pipeline.models import load_tokenizer, tiny_policy_path
    from zhufu.pipeline.train.plain_head import add_plain_lm_head
    from zhufu.pipeline.train.sft import build_dataset

    tok = load_tokenizer("tiny", padding_side="right")
    ds = build_dataset(None, tok, max_length=64).select(range(6))
    results = []
    for plain in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_policy_path(), dtype=torch.float32)
        args = TRLSFTConfig(output_dir=str(tmp_path / str(plain)), padding_free=True,
                            max_length=None, per_device_train_batch_size=6, use_cpu=True,
                            bf16=False, report_to="none", save_strategy="no")
        trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
        if plain:
            add_plain_lm_head(trainer.model)
        batch = trainer._prepare_inputs(trainer.data_collator([ds[i] for i in range(6)]))
        assert "position_ids" in batch and batch["input_ids"].shape[0] == 1  # packed
        model.train()
        loss = trainer.compute_loss(model, batch).detach()
        results.append((float(loss), {k: v[-1] for k, v in trainer._metrics["train"].items()}))
    (fused, m_fused), (plain, m_plain) = results
    assert plain == pytest.approx(fused, rel=1e-5) and 7 < plain < 9  # random init, 3.9k vocab
    assert m_plain["num_tokens"] == m_fused["num_tokens"]
    assert m_plain["entropy"] == pytest.approx(m_fused["entropy"], rel=1e-5)
    assert m_plain["mean_token_accuracy"] == pytest.approx(m_fused["mean_token_accuracy"])
