"""GRPORun dependencies: wait for the referenced resources, then feed their outputs in.

``spec.judgeRef`` names a JudgeTraining (or is a ``models:/``/``runs:/``/``s3://`` URI) and
fills ``model`` of the rewards named ``judge``; ``spec.curationRef`` names a CurationJob (or a
URI) and fills ``model`` of the rewards named ``rm``. A resource reference is ready when the
resource's ``status.phase`` is ``Succeeded``; its model is the first entry of
``status.registered`` (``name: version`` becomes ``models:/name/version``; a value that is
already a URI is kept), else ``status.outputs.model``. References only point from a GRPORun
to the two other kinds, so a cycle or a self-reference cannot be written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zhufu.pipeline.config import GRPOConfig

REFS = {"judgeRef": ("JudgeTraining", "judge"), "curationRef": ("CurationJob", "rm")}
_URI_PREFIXES = ("models:/", "runs:/", "s3://")


def is_uri(ref: str) -> bool:
    return ref.startswith(_URI_PREFIXES)


def model_uri(status: dict[str, Any]) -> str | None:
    """The model a finished dependency offers, from its status."""
    for key, value in (status.get("registered") or {}).items():
        value = str(value)
        if "/" in value or ":" in value:
            return value
        return f"models:/{key}/{value}"
    model = (status.get("outputs") or {}).get("model")
    return str(model) if model else None


@dataclass
class DependencyCheck:
    """Outcome over all references: ``state`` is ready, waiting or failed."""

    state: str
    field: str = ""
    message: str = ""
    models: dict[str, str] | None = None  # reward name -> model URI


def check(deps: dict[str, Any], lookup: dict[str, dict[str, Any] | None]) -> DependencyCheck:
    """Decide from the referenced objects (``lookup[field]`` is the object, or None if absent)."""
    models: dict[str, str] = {}
    waiting: list[tuple[str, str]] = []
    for field, (kind, reward) in REFS.items():
        ref = deps.get(field)
        if not ref:
            continue
        if is_uri(ref):
            models[reward] = ref
            continue
        obj = lookup.get(field)
        if obj is None:
            waiting.append((field, f"{kind} {ref!r} does not exist (yet)"))
            continue
        status = obj.get("status") or {}
        phase = status.get("phase")
        if phase == "Failed":
            why = f"{status.get('reason', '')} {status.get('message', '')}".strip()
            return DependencyCheck("failed", f"spec.{field}", f"{kind} {ref!r} failed: {why}")
        if phase != "Succeeded":
            waiting.append((field, f"{kind} {ref!r} is {phase or 'not started'}"))
            continue
        uri = model_uri(status)
        if uri is None:
            return DependencyCheck("failed", f"spec.{field}", f"{kind} {ref!r} succeeded but "
                                   "registered no model (status.registered is empty)")
        models[reward] = uri
    if waiting:
        return DependencyCheck("waiting", f"spec.{waiting[0][0]}",
                               "; ".join(m for _, m in waiting), models)
    return DependencyCheck("ready", models=models)


def missing(deps: dict[str, Any], lookup: dict[str, dict[str, Any] | None]) -> list[str]:
    """The reference fields whose resource does not exist."""
    return [f"spec.{f}" for f in REFS if deps.get(f) and not is_uri(deps[f])
            and lookup.get(f) is None]


def default_rewards() -> list[dict[str, Any]]:
    """The rewards a GRPO config has when it names none (from the pipeline's model)."""
    return [r.model_dump(mode="json", exclude_none=True) for r in GRPOConfig().rewards]


def apply_models(config: dict[str, Any], models: dict[str, str]) -> dict[str, Any]:
    """A copy of a GRPO config whose rewards without a model get the dependency's model."""
    rewards = config.get("rewards") or default_rewards()
    out = []
    for r in rewards:
        r = dict(r)
        if r.get("name") in models and not r.get("model"):
            r["model"] = models[r["name"]]
        out.append(r)
    return {**config, "rewards": out}
