"""What the operator would create for a custom resource, without a cluster.

:func:`render` runs the operator's own steps on a resource read from YAML: validation
(:func:`~zhufu.operator.validation.validate`), dependency models for URI references
(:func:`~zhufu.operator.dependencies.apply_models`) and the builders
(:func:`~zhufu.operator.builders.children`, adopted by Kopf: :func:`build`, which the
handlers call too), with the settings from the ``ZHUFU_*`` environment as the operator
reads them. A reference to another resource by name
(``judgeRef: my-judge``) cannot be looked up here: its reward keeps no model and a note
says what the operator fills in once that resource Succeeded. ``zhufu operator render -f
CR.yaml`` prints the result, the way ``helm template`` does for a chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from zhufu.operator import builders, dependencies, tenancy
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import API_VERSION, KINDS, Kind
from zhufu.operator.validation import SpecError, validate


class RenderError(ValueError):
    """A document that is not a Zhufu resource the operator would accept (says which)."""


@dataclass
class Rendered:
    """The children of one resource, in creation order, and notes for the reader."""

    resource: str
    children: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def render(obj: dict[str, Any], settings: OperatorSettings, namespace: str = "default"
           ) -> Rendered:
    """The ConfigMap, [Service,] and Job the operator would create for ``obj``."""
    if not isinstance(obj, dict):
        raise RenderError("not a mapping: expected a Zhufu custom resource")
    kind_name, meta = obj.get("kind"), obj.get("metadata") or {}
    if obj.get("apiVersion") != API_VERSION or kind_name not in KINDS:
        raise RenderError(f"apiVersion {obj.get('apiVersion')!r} kind {kind_name!r}: not a "
                          f"Zhufu resource ({API_VERSION}: {', '.join(KINDS)})")
    name = meta.get("name")
    if not name:
        raise RenderError(f"{kind_name}: metadata.name is missing")
    kind = KINDS[kind_name]
    namespace = meta.get("namespace") or namespace
    label = f"{kind_name}/{name}"
    try:
        workload, deps, config = validate(kind, name, dict(obj.get("spec") or {}))
        workload, deps, config = tenancy.enforce(kind, namespace, workload, deps, config,
                                                 settings)
    except SpecError as e:
        raise RenderError(f"{label}: {e}") from e
    notes = []
    models = {}
    for ref_field, (ref_kind, reward) in dependencies.REFS.items():
        ref = deps.get(ref_field)
        if not ref:
            continue
        if dependencies.is_uri(ref):
            models[reward] = ref
        else:
            notes.append(f"spec.{ref_field}: the operator waits for {ref_kind} {ref!r} to "
                         f"succeed and sets the {reward!r} reward's model to the version it "
                         "registered (left unset here)")
    if workload.get("llmApiKeySecret"):
        notes.append("spec.llmApiKeySecret: the operator also checks that the Secret opted in "
                     "(label zhufu.dev/llm-key=true); not checked here")
    shards = builders.shards_of(config)
    if shards > 1:
        whole = builders.child_names(kind, name).whole
        notes.append(f"spec.shards: {shards}: once every shard succeeded, the operator creates "
                     f"Job {whole!r}, the same pod without --shard (every part → the whole "
                     "result, then the reward model when asked for)")
    if models:
        config = dependencies.apply_models(config, models)
    owner = {**obj, "metadata": {**meta, "namespace": namespace}}
    return Rendered(label, build(kind, owner, workload, config, settings), notes)


def build(kind: Kind, owner: Mapping[str, Any], workload: dict[str, Any],
          config: dict[str, Any], settings: OperatorSettings) -> list[dict[str, Any]]:
    """The children of ``owner`` (the resource, as Kopf gives it) as the operator creates them:
    the builders' objects, adopted (ownerReferences and the owner's labels, by Kopf)."""
    import kopf

    meta = owner["metadata"]
    restarts = int((owner.get("status") or {}).get("restarts") or 0)
    children = builders.children(kind, meta["name"], meta["namespace"], workload, config,
                                 settings, int(meta.get("generation") or 1), restarts,
                                 meta.get("uid"))
    kopf.adopt(children, owner=owner)
    return children


def render_file(path: Path, settings: OperatorSettings, namespace: str = "default"
                ) -> list[Rendered]:
    """Every resource of a (multi-document) YAML file, rendered."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except FileNotFoundError as e:
        raise RenderError(f"{path}: no such file") from e
    except yaml.YAMLError as e:
        raise RenderError(f"{path}: not valid YAML: {e}") from e
    if not docs:
        raise RenderError(f"{path}: no documents")
    return [render(d, settings, namespace) for d in docs]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's config.yaml) as literal blocks, readable as is."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(rendered: list[Rendered]) -> str:
    """The children as one multi-document YAML stream, each resource's notes as comments."""
    parts = []
    for r in rendered:
        head = [f"# {r.resource}", *(f"# note: {n}" for n in r.notes)]
        for child in r.children:
            body = yaml.dump(child, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
            parts.append("\n".join([*head, body]))
            head = [f"# {r.resource}"]
    return "---\n" + "---\n".join(parts)
