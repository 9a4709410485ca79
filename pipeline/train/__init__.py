"""Training stages (SFT, reward model, GRPO): each is ``run_X(cfg) -> StageResult``.

Importing this package is light; each stage module imports torch/TRL when it runs.
"""
