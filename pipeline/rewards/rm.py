"""Score (query, response) pairs with a trained reward model; a TRL reward function from it.

A reward model is any HF sequence-classification model with one output (``num_labels=1``) and
its tokenizer, loaded by :func:`zhufu.pipeline.models.load_reward_model` from a local folder,
``tiny-rm``, or an MLflow URI (``models:/zhufu-reward/latest``, ``models:/zhufu-reward@champion``,
``runs:/…``). Its score is the raw logit: higher is better, only differences are meaningful.

The input format is fixed by :func:`encode` and used both in training
(:mod:`zhufu.pipeline.train.reward_model`) and here, so a model scores text exactly as it was
trained on it.

:func:`rm_reward`, the GRPO reward, applies the degeneracy guard by default
(:mod:`zhufu.pipeline.rewards.guard`): a completion that is not a greeting (punctuation soup,
a greeting written twice, shuffled characters…) gets a score below every greeting of its
call, whatever the model thinks of it; a clean greeting keeps the model's score.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zhufu.pipeline.rewards.guard import Guarded

#: Loaded models by (spec, device), so a reward function called every GRPO step loads its
#: model once per process.
_CACHE: dict[tuple[str, str], tuple[Any, Any]] = {}
#: The guard's model floor by (spec, device), computed once per process.
_FLOORS: dict[tuple[str, str], float] = {}
_LOCK = threading.Lock()


def message_text(item: Any) -> str:
    """The text of a completion or prompt in any TRL format.

    Plain strings come back as they are; a chat (list of ``{"role", "content"}``) gives the
    content of its last message; a single message dict gives its content.

    >>> message_text("新年快乐")
    '新年快乐'
    >>> message_text([{"role": "assistant", "content": "生日快乐！"}])
    '生日快乐！'
    >>> message_text({"role": "user", "content": "生日祝福语"})
    '生日祝福语'
    """
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item.get("content", ""))
    if isinstance(item, Sequence) and item:
        return message_text(item[-1])
    if isinstance(item, Sequence):
        return ""
    raise TypeError(f"expected a string, a message dict or a list of messages, got {item!r}")


def prompt_query(prompt: Any) -> str:
    """The user's request inside a prompt: the last ``user`` message of a chat, or the string.

    >>> prompt_query([{"role": "system", "content": "s"}, {"role": "user", "content": "端午祝福"}])
    '端午祝福'
    >>> prompt_query("中秋祝福语")
    '中秋祝福语'
    """
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return message_text(users[-1] if users else prompt)
    return message_text(prompt)


def encode(tokenizer: Any, queries: Sequence[str], responses: Sequence[str], max_length: int,
           padding: bool | str = False) -> Any:
    """Tokenise (query, response) pairs the one way every Zhufu reward model sees them.

    A tokenizer with a separator token (BERT-style encoders, the character vocabularies built
    by the trainer) gets a text pair ``[CLS] query [SEP] response [SEP]``; a decoder tokenizer
    (Qwen) gets ``query\\nresponse`` followed by its end-of-sequence token, since its
    classification head reads the last non-padding token. Truncation cuts the response
    first (``only_second`` / from the right) so the query survives.
    """
    if len(queries) != len(responses):
        raise ValueError(f"encode: {len(queries)} queries vs {len(responses)} responses")
    if getattr(tokenizer, "sep_token", None) and getattr(tokenizer, "cls_token", None):
        return tokenizer(list(queries), list(responses), truncation="longest_first",
                         max_length=max_length, padding=padding)
    eos = tokenizer.eos_token or ""
    texts = [f"{q}\n{r}{eos}" for q, r in zip(queries, responses, strict=True)]
    return tokenizer(texts, truncation=True, max_length=max_length, padding=padding)


def load(model_spec: str) -> tuple[Any, Any]:
    """(model, tokenizer) for ``model_spec`` in eval mode on this rank's own device
    (``cuda:<LOCAL_RANK>``, or the CPU), chosen at the first call, loaded once per process."""
    from zhufu.pipeline.hardware import rank_device

    key = (model_spec, rank_device())
    with _LOCK:
        if key not in _CACHE:
            from zhufu.pipeline.models import load_reward_model

            model, tokenizer = load_reward_model(model_spec, device=key[1])
            model.eval()
            _CACHE[key] = (model, tokenizer)
        return _CACHE[key]


def score_with(model: Any, tokenizer: Any, queries: Sequence[str], responses: Sequence[str],
               *, batch_size: int = 32, max_length: int | None = None) -> list[float]:
    """Scores from an already loaded model (no gradient), in input order."""
    import torch

    if len(queries) != len(responses):
        raise ValueError(f"score: {len(queries)} queries vs {len(responses)} responses")
    if batch_size < 1:
        raise ValueError(f"score: batch_size must be >= 1, got {batch_size}")
    limit = max_length or _max_length(model, tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(queries), batch_size):
            batch = encode(tokenizer, queries[start:start + batch_size],
                           responses[start:start + batch_size], limit, padding=True)
            # TRL's RewardTrainer feeds input_ids + attention_mask only (no token_type_ids), so
            # scoring does the same.
            inputs = {k: torch.tensor(batch[k], device=model.device)
                      for k in ("input_ids", "attention_mask")}
            logits = model(**inputs).logits
            out.extend(float(x) for x in logits[:, 0].float().cpu().tolist())
    return out


def score_texts(model_spec: str, queries: Sequence[str], responses: Sequence[str],
                batch_size: int = 32) -> list[float]:
    """One reward per (query, response), in input order, from the model at ``model_spec``.

    ``model_spec`` is a local folder, ``tiny-rm`` or an MLflow model URI.
    """
    model, tokenizer = load(model_spec)
    return score_with(model, tokenizer, queries, responses, batch_size=batch_size)


def model_floor(model_spec: str) -> float:
    """The guard's model floor for ``model_spec``: the lowest score it gives the project's
    own good greetings, minus :data:`zhufu.pipeline.rewards.guard.MARGIN` (computed on the
    first call, then reused)."""
    from zhufu.pipeline.evaluation.judge_suite import guard_floor, rm_scorer
    from zhufu.pipeline.hardware import rank_device

    key = (model_spec, rank_device())
    if key not in _FLOORS:
        _FLOORS[key] = guard_floor(rm_scorer(model_spec))
    return _FLOORS[key]


def guarded_scores(model_spec: str, queries: Sequence[str], responses: Sequence[str],
                   batch_size: int = 32) -> Guarded:
    """The model's scores after the degeneracy guard, as a
    :class:`zhufu.pipeline.rewards.guard.Guarded` (scores and which were vetoed). The
    degeneracy signals are computed in a thread while the model scores."""
    from concurrent.futures import ThreadPoolExecutor

    from zhufu.pipeline.rewards.guard import apply_floor, vetoes

    floor = model_floor(model_spec)
    with ThreadPoolExecutor(max_workers=1) as pool:
        vetoed = pool.submit(vetoes, queries, responses)
        scores = score_texts(model_spec, queries, responses, batch_size=batch_size)
        return apply_floor(scores, vetoed.result(), floor)


def rm_reward(model_spec: str, batch_size: int = 32, guard: bool = True
              ) -> Callable[..., list[float]]:
    """A TRL reward function ``(prompts, completions, **kwargs) -> list[float]`` from a model.

    Prompts and completions may be plain strings or chats (lists of ``{"role", "content"}``):
    the query is the last user message of the prompt, the response the last message of the
    completion. The model is loaded on the first call, then reused.

    With ``guard`` (the default) the scores pass the degeneracy guard
    (:func:`guarded_scores`): each call logs, through TRL's ``log_metric``, how many of its
    completions were vetoed (``rm_vetoed``, TRL averages it over the logging step, and
    ``rm_vetoed_share``), and the function's ``vetoed`` / ``scored`` attributes count them
    over the run (in this process).

    >>> reward = rm_reward("tiny-rm")                    # doctest: +SKIP
    >>> reward(prompts=["生日祝福语"], completions=["生日快乐，万事如意！"])  # doctest: +SKIP
    [0.013]
    """

    def reward_rm(prompts: Sequence[Any], completions: Sequence[Any], **kw: Any) -> list[float]:
        queries = [prompt_query(p) for p in prompts]
        responses = [message_text(c) for c in completions]
        if not guard:
            return score_texts(model_spec, queries, responses, batch_size=batch_size)
        out = guarded_scores(model_spec, queries, responses, batch_size=batch_size)
        reward_rm.vetoed += out.n_vetoed  # type: ignore[attr-defined]
        reward_rm.scored += len(responses)  # type: ignore[attr-defined]
        log_metric = kw.get("log_metric")
        if log_metric is not None and responses:
            log_metric("rm_vetoed", float(out.n_vetoed))
            log_metric("rm_vetoed_share", out.n_vetoed / len(responses))
        return out.scores

    reward_rm.__name__ = "rm"
    reward_rm.vetoed = 0  # type: ignore[attr-defined]
    reward_rm.scored = 0  # type: ignore[attr-defined]
    reward_rm.guard = guard  # type: ignore[attr-defined]
    return reward_rm


def _max_length(model: Any, tokenizer: Any) -> int:
    """The trained max length stored in the model config, else the model's position limit."""
    stored = getattr(model.config, "zhufu_max_length", None)
    if stored:
        return int(stored)
    limit = getattr(model.config, "max_position_embeddings", None) or 512
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if tok_limit and tok_limit < 100_000:
        limit = min(limit, tok_limit)
    return int(min(limit, 512))
