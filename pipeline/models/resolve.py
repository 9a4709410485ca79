"""Turn a model spec into a local Hugging Face dir, and load models and tokenizers from it.

A spec is one of:

- ``tiny`` / ``tiny-rm``: the embedded tiny policy / reward model (built on first use);
- a local directory holding a Hugging Face model (``config.json``) or tokenizer;
- an MLflow URI: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME/latest``
  or ``runs:/RUN_ID/PATH``, downloaded once into ``<data_dir>/models/mlflow/`` (a version
  is immutable, so the cache key is the store, the name and the resolved version);
- an ``s3://`` prefix holding a Hugging Face model's files, downloaded into
  ``<data_dir>/models/s3/`` (the cache key covers every object's ETag, so a prefix written
  again is downloaded again);
- a hub name (``org/name``) where a hub is reachable (never needed by Zhufu itself).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from zhufu.pipeline.errors import ModelSpecError
from zhufu.pipeline.hardware import rank_device
from zhufu.pipeline.models.paths import models_dir
from zhufu.pipeline.models.tiny import tiny_policy_path, tiny_reward_model_path
from zhufu.pipeline.models.tokenizer import install_dir

MLFLOW_PREFIXES = ("models:/", "runs:/")
_HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "model"


def _mlflow_version(uri: str) -> tuple[str, str, str]:
    """``models:/…`` → (name, version, source) with aliases and ``latest`` resolved."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    body = uri[len("models:/"):]
    client = MlflowClient()
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, ref = body.partition("/")
            if not ref:
                raise ModelSpecError(f"{uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
            if ref == "latest":
                versions = client.search_model_versions(f"name='{name}'")
                if not versions:
                    raise ModelSpecError(f"{uri}: registered model {name!r} has no versions")
                mv = max(versions, key=lambda v: int(v.version))
            elif ref.isdigit():
                mv = client.get_model_version(name, ref)
            else:
                raise ModelSpecError(f"{uri}: version must be a number, 'latest' or @alias")
    except MlflowException as e:
        raise ModelSpecError(f"{uri}: not found in the MLflow registry: {e.message}") from e
    return mv.name, str(mv.version), str(mv.source)


def as_hf_dir(downloaded: Path, out_dir: Path) -> None:
    """Copy a downloaded MLflow model into ``out_dir`` as one plain Hugging Face dir.

    Handles a bare HF dir (``config.json`` at the top) and MLflow's transformers flavor
    layout (weights under ``model/``, tokenizer under ``components/tokenizer/``).
    """
    if (downloaded / "config.json").is_file():
        shutil.copytree(downloaded, out_dir, dirs_exist_ok=True)
        return
    weights = downloaded / "model"
    if not (weights / "config.json").is_file():
        raise ModelSpecError(f"{downloaded}: downloaded artifact holds no Hugging Face model "
                             "(no config.json at its top or under model/)")
    shutil.copytree(weights, out_dir, dirs_exist_ok=True)
    tokenizer = downloaded / "components" / "tokenizer"
    if tokenizer.is_dir():
        shutil.copytree(tokenizer, out_dir, dirs_exist_ok=True)
    for extra in ("MLmodel", "requirements.txt"):
        if (downloaded / extra).is_file():
            shutil.copy2(downloaded / extra, out_dir / extra)


def _from_mlflow(uri: str) -> Path:
    import mlflow

    from zhufu.pipeline import tracking

    store = tracking.configure()
    if uri.startswith("models:/"):
        name, version, source = _mlflow_version(uri)
        artifact_uri = f"models:/{name}/{version}"
        key = f"{_safe(name)}-v{version}"
    else:
        artifact_uri, source = uri, uri
        key = _safe(uri[len("runs:/"):])
    digest = hashlib.sha1(f"{store}|{source}".encode()).hexdigest()[:10]
    target = models_dir() / "mlflow" / f"{key}-{digest}"

    def build(tmp: Path) -> None:
        raw = tmp / ".download"
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri,
                                                        dst_path=str(raw))
        except Exception as e:  # noqa: BLE001 - mlflow raises many kinds; re-raise with context
            raise ModelSpecError(f"{uri}: download from {store} failed: {e}") from e
        as_hf_dir(Path(local), tmp)
        shutil.rmtree(raw, ignore_errors=True)

    return install_dir(build, target)


def _from_s3(uri: str) -> Path:
    from zhufu.pipeline.data import storage

    bucket, prefix = storage.split_s3(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    try:
        pages = storage.s3_client().get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix)
        listing = sorted((o["Key"], o.get("ETag", "")) for page in pages
                         for o in page.get("Contents", []))
    except storage.StorageError as e:
        raise ModelSpecError(f"{uri}: {e}") from e
    except Exception as e:  # noqa: BLE001 - botocore's many errors: one message naming the URI
        raise ModelSpecError(f"{uri}: cannot list the prefix: {e}") from e
    if not any(key.endswith("/config.json") or key == f"{prefix}config.json"
               for key, _ in listing):
        raise ModelSpecError(f"{uri}: no config.json under this prefix (expected a Hugging "
                             "Face model's files)")
    digest = hashlib.sha1(json.dumps([uri, listing]).encode()).hexdigest()[:12]
    target = models_dir() / "s3" / f"{_safe(f'{bucket}/{prefix}')}-{digest}"
    return install_dir(lambda tmp: storage.download_dir(uri, tmp), target)


def resolve_model(spec: str) -> Path:
    """A local directory holding the model ``spec`` names (see module docstring)."""
    if spec == "tiny":
        return tiny_policy_path()
    if spec == "tiny-rm":
        return tiny_reward_model_path()
    if spec.startswith(MLFLOW_PREFIXES):
        return _from_mlflow(spec)
    if spec.startswith("s3://"):
        return _from_s3(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise ModelSpecError(f"{spec}: is a file; a model spec must name a directory")
    if _HUB_NAME.match(spec):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(spec))
        except Exception as e:  # noqa: BLE001 - offline, missing repo, auth: all one message
            raise ModelSpecError(f"{spec}: no such local dir, and the hub download failed: "
                                 f"{e}") from e
    raise ModelSpecError(f"{spec}: not 'tiny', 'tiny-rm', an existing directory, an s3:// "
                         "prefix, a hub id (org/name) or an MLflow URI (models:/NAME@ALIAS, "
                         "models:/NAME/N, runs:/ID/PATH)")


def load_tokenizer(spec: str, padding_side: str = "left") -> Any:
    """The tokenizer of ``spec`` with a pad token set (EOS if the model has none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(spec))
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(spec: str, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for generation: eval mode, left padding, on ``device`` (default:
    this rank's own device, see :func:`zhufu.pipeline.hardware.rank_device`)."""
    from transformers import AutoModelForCausalLM

    path = resolve_model(spec)
    tok = load_tokenizer(str(path), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path).to(rank_device(device))
    model.eval()
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def load_reward_model(spec: str, device: str | None = None) -> tuple[Any, Any]:
    """(sequence-classification model with one score, tokenizer), eval mode, pad id set, on
    ``device`` (default: this rank's own device, chosen now, not when the reward was built)."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_model(spec)
    tok = load_tokenizer(str(path), padding_side="right")
    model = AutoModelForSequenceClassification.from_pretrained(path).to(rank_device(device))
    model.eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    if model.config.num_labels != 1:
        raise ModelSpecError(f"{spec}: reward model must have num_labels=1, "
                             f"has {model.config.num_labels}")
    return model, tok
