"""A saved model folder as an MLflow model, logged without loading the model.

What a stage saved decides the flavor:

- a Hugging Face folder (``config.json``): MLflow's **transformers** flavor from the local
  checkpoint: the files are copied as they are (weights under ``model/``, tokenizer under
  ``components/tokenizer/``), with a ``python_function`` flavor, so
  ``mlflow.transformers.load_model(uri)`` gives a pipeline, ``mlflow.pyfunc.load_model(uri)``
  predicts and ``mlflow models serve -m uri --env-manager local`` serves it. The task comes
  from the architecture: ``*ForCausalLM`` → ``text-generation`` (the policy),
  ``*ForSequenceClassification`` → ``text-classification`` (the reward model; its pyfunc
  returns the raw reward, no sigmoid);
- a judge state (``judge.json``): a **pyfunc** model, :class:`zhufu.pipeline.judge.pyfunc.
  JudgeModel`, with the folder as its ``judge`` artifact.

The requirements are written from the installed versions (MLflow would otherwise load the
model in a subprocess to infer them).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zhufu import __version__
from zhufu.pipeline.errors import TrackingError

JUDGE_STATE_FILE = "judge.json"
_TASKS = (("ForCausalLM", "text-generation"), ("ForSequenceClassification",
                                               "text-classification"))
#: Pipeline call settings saved with a reward model: the score is the raw logit.
REWARD_MODEL_CONFIG = {"function_to_apply": "none"}


def _pinned(*packages: str) -> list[str]:
    """``name==version`` of each installed package (local labels like ``+cpu`` dropped)."""
    out = []
    for name in packages:
        try:
            out.append(f"{name}=={importlib.metadata.version(name).split('+')[0]}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def transformers_task(folder: Path) -> str:
    """The pipeline task of the Hugging Face model saved in ``folder`` (from its
    ``architectures``); a :class:`TrackingError` for an architecture Zhufu does not register."""
    import json

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    for arch in config.get("architectures") or []:
        for suffix, task in _TASKS:
            if arch.endswith(suffix):
                return task
    raise TrackingError(f"{folder}: architectures {config.get('architectures')} is neither a "
                        "causal LM nor a sequence classifier: no MLflow task for it")


@contextmanager
def _pipeline_classes() -> Iterator[None]:
    """Let MLflow 3.17 log a local checkpoint under transformers 5.

    MLflow reads ``check_task(task)[1]["impl"].__name__``; transformers 5 gives the pipeline
    class as a dotted string there. For the duration of the call ``check_task`` returns the
    class itself (imported from that string); nothing else changes.
    """
    import transformers.pipelines as pipelines

    original = pipelines.check_task

    def check_task(task: str) -> Any:
        name, meta, option = original(task)
        impl = meta.get("impl")
        if isinstance(impl, str):
            module, _, cls = impl.rpartition(".")
            meta = {**meta, "impl": getattr(importlib.import_module(module), cls)}
        return name, meta, option

    pipelines.check_task = check_task
    try:
        yield
    finally:
        pipelines.check_task = original


def generation_signature() -> Any:
    """The policy's signature: text in, text out, and the generation settings a caller may
    pass as ``params`` (``predict(..., params={"max_new_tokens": 32})``, or in a served
    request's ``params``)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    params = ParamSchema([ParamSpec("max_new_tokens", "long", 64),
                          ParamSpec("do_sample", "boolean", True),
                          ParamSpec("temperature", "double", 1.0),
                          ParamSpec("top_p", "double", 1.0)])
    return ModelSignature(inputs=Schema([ColSpec("string")]),
                          outputs=Schema([ColSpec("string")]), params=params)


def log_transformers(folder: Path, name: str, card: str) -> Any:
    """Log the Hugging Face folder as a transformers-flavor model of the active run; ``card``
    (markdown) is its model card, licence ``other`` (the trained model's licence is its base
    model's, which Zhufu does not know)."""
    import mlflow.transformers
    from huggingface_hub import ModelCard

    task = transformers_task(folder)
    config = REWARD_MODEL_CONFIG if task == "text-classification" else None
    sig = generation_signature() if task == "text-generation" else None
    with _pipeline_classes():
        return mlflow.transformers.log_model(
            str(folder), name=name, task=task,
            model_card=ModelCard(f"---\nlicense: other\n---\n{card}"),
            model_config=config, signature=sig,
            pip_requirements=_pinned("mlflow", "transformers", "torch", "accelerate"))


def log_judge(folder: Path, name: str) -> Any:
    """Log the judge state folder as a :class:`~zhufu.pipeline.judge.pyfunc.JudgeModel`."""
    import mlflow.pyfunc

    from zhufu.pipeline.judge.pyfunc import ARTIFACT_KEY, JudgeModel, signature

    return mlflow.pyfunc.log_model(
        name=name, python_model=JudgeModel(), artifacts={ARTIFACT_KEY: str(folder)},
        signature=signature(),
        pip_requirements=[f"zhufu=={__version__}", *_pinned("mlflow", "pandas")])


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """No artifact progress bars while logging (MLflow draws one on stderr for each copy;
    in a pod's log or next to a stage's printed result they are noise)."""
    import os

    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def log_model_folder(folder: str | Path, name: str, card: str) -> Any:
    """Log a saved model folder with its flavor (module docstring); returns MLflow's
    ``ModelInfo``. ``card`` becomes a transformers model's README."""
    folder = Path(folder)
    with _no_progress_bars():
        if (folder / JUDGE_STATE_FILE).is_file():
            return log_judge(folder, name)
        if (folder / "config.json").is_file():
            return log_transformers(folder, name, card)
    raise TrackingError(f"{folder}: neither a Hugging Face model dir (config.json) nor a "
                        f"judge state ({JUDGE_STATE_FILE}): nothing MLflow can load")


def judge_state_dir(downloaded: Path) -> Path:
    """The folder holding ``judge.json`` in a downloaded judge model (pyfunc layout:
    ``artifacts/judge/``; a plain folder as older versions registered it)."""
    if (downloaded / JUDGE_STATE_FILE).is_file():
        return downloaded
    for candidate in sorted(downloaded.glob(f"artifacts/*/{JUDGE_STATE_FILE}")):
        return candidate.parent
    return downloaded
