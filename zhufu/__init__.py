"""Zhufu (祝福): RLAIF for Chinese greetings, from multi-agent curation to GRPO, on Kubernetes.

The import root. ``zhufu.pipeline`` holds the ML jobs (never imports Kubernetes);
``zhufu.operator`` holds the Kopf operator (never imports torch).

Importing Zhufu switches off the usage telemetry of the libraries it drives (MLflow, Hugging
Face, Gradio-style ``DO_NOT_TRACK``): a training job talks to the servers it is configured
for and to nothing else. Set the variables yourself to override.
"""

import os

__version__ = "0.1.0"

for _name, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)
