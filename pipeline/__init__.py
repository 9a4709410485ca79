"""The ML jobs: data, LLM backends, agents, judge, reward model, GRPO, evaluation.

Nothing here imports Kubernetes, and importing this package never imports torch: modules that
need it import it where they use it, so configs and the CLI stay light.
"""
