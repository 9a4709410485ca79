"""TRL's per-token log-probabilities from the model's full logits, for small vocabularies on CPU.

TRL's SFT and GRPO trainers patch the policy (and GRPO's reference model) with a fused, tiled
LM head (``trl.trainer.utils.add_fused_lm_head``): called with ``fused_lm_head=True`` the
model returns per-token log-probabilities, entropies and top-1 flags without materialising
``[tokens, vocab]`` logits — the right trade for a 150k vocabulary on a GPU. Without Triton
the kernel folds each tile with torch ops and recomputes them in the backward; on the embedded
policy (3.9k-token vocabulary) that took ~0.47 s of a 0.69 s SFT step (profiled,
docs/policy.md), where the full logits of a step are a few MB.

:func:`add_plain_lm_head` re-patches such a model so that ``fused_lm_head=True`` computes the
same fields from the full logits (log-softmax of the temperature-scaled logits): the trainers'
own losses and metrics run unchanged on top. The training stages apply it on CPU only.
"""

from __future__ import annotations

import functools
import types
from typing import Any


def add_plain_lm_head(model: Any, temperature: float = 1.0) -> None:
    """Make ``model(..., labels=..., fused_lm_head=True)`` compute TRL's
    ``FusedCausalLMOutput`` (``loss``, ``log_probs``, ``entropy``, ``is_top1``,
    ``label_mask``; zero where the label is ``-100``) from the full logits (a PEFT model:
    its base model, as TRL patches it). ``model`` must
    already carry TRL's fused head (its forward passes ``fused_lm_head=False`` calls to the
    model's own forward); ``temperature`` is the one the trainer gave that head."""
    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    if callable(getattr(model, "get_base_model", None)):  # PEFT: TRL patched the base model
        model = model.get_base_model()
    patched = model.forward

    @functools.wraps(type(model).forward)  # generate() validates its kwargs against it
    def forward(self: Any, *args: Any, fused_lm_head: bool = False, labels: Any = None,
                shift_labels: Any = None, num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if not fused_lm_head:
            return patched(*args, labels=labels, shift_labels=shift_labels,
                           num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        logits = patched(*args, **kwargs).logits
        if shift_labels is None:
            logits, labels = logits[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        mask = labels != -100
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        log_probs = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        log_probs = log_probs.masked_fill(~mask, 0.0)
        entropy = -(logp.exp() * logp).sum(-1).masked_fill(~mask, 0.0)
        with torch.no_grad():
            is_top1 = (logits.argmax(-1) == labels) & mask
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs,
                                   entropy=entropy, is_top1=is_top1, label_mask=mask)

    model.forward = types.MethodType(forward, model)
