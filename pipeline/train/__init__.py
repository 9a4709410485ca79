"""Training stages (SFT, reward model, GRPO): each run function ``X(cfg) -> StageOutput``
trains on every rank and hands the trainer to the stage wrapper (:mod:`..stage_runner`).

Importing this package is light; each stage module imports torch/TRL when it runs.
"""
