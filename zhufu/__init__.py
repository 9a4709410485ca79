"""Zhufu (祝福): RLAIF for Chinese greetings, from multi-agent curation to GRPO, on Kubernetes.

The import root. ``zhufu.pipeline`` holds the ML jobs (never imports Kubernetes);
``zhufu.operator`` holds the Kopf operator (never imports torch).
"""

__version__ = "0.1.0"
