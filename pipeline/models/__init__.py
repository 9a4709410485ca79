"""Offline models: the Qwen2.5 tokenizer, the tiny policy and reward model, model specs.

Nothing here imports torch at import time; the loaders import it when called.
"""

from zhufu.pipeline.models.paths import data_dir, models_dir, output_path
from zhufu.pipeline.models.resolve import (
    ModelSpecError,
    load_causal_lm,
    load_reward_model,
    load_tokenizer,
    resolve_model,
)
from zhufu.pipeline.models.tiny import tiny_policy_path, tiny_reward_model_path
from zhufu.pipeline.models.tokenizer import TokenizerSourceError, qwen_tokenizer_path

__all__ = [
    "ModelSpecError",
    "TokenizerSourceError",
    "data_dir",
    "load_causal_lm",
    "load_reward_model",
    "load_tokenizer",
    "models_dir",
    "output_path",
    "qwen_tokenizer_path",
    "resolve_model",
    "tiny_policy_path",
    "tiny_reward_model_path",
]
