"""Reward functions for GRPO, each a plain ``(prompts, completions, **kwargs) -> list[float]``.

- :mod:`.rm`: a trained reward model (local dir or MLflow URI) — ``rm_reward(spec)``, and
  ``score_texts`` for scoring (query, response) pairs directly.

Importing this package is light: modules import torch only when a reward is built or called.
"""
