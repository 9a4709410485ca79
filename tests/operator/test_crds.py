"""The generated CRDs: committed files match the models, schemas are structural, the example
CRs validate and broken CRs are rejected.

No API server can run here: CRs are validated offline with ``jsonschema`` against the CRD's
``openAPIV3Schema`` (``nullable`` mapped to a null type, unknown fields rejected as
``kubectl apply``'s strict field validation does); the CRDs themselves are checked with
``kubernetes-validate --strict`` against the Kubernetes 1.37 schemas.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from zhufu.operator.crds import (
    crd,
    drift,
    openapi_schema,
    render_crds,
    structural_errors,
    to_jsonschema,
)
from zhufu.operator.spec import KINDS, kind_of

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "charts" / "zhufu" / "crds"
EXAMPLES = REPO / "examples" / "crs"


def _validator(kind: str) -> jsonschema.Draft4Validator:
    schema = to_jsonschema(crd(kind_of(kind))["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    return jsonschema.Draft4Validator(schema)


def _examples() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]


def test_committed_crds_match_the_models() -> None:
    stale = drift(CRD_DIR)
    assert not stale, f"regenerate with `zhufu operator crds`: {stale}"
    assert sorted(p.name for p in CRD_DIR.glob("*.yaml")) == sorted(render_crds())


@pytest.mark.parametrize("kind", list(KINDS))
def test_crd_is_structural_and_valid_kubernetes(kind: str) -> None:
    doc = crd(KINDS[kind])
    schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert structural_errors(schema) == []
    assert "$ref" not in yaml.safe_dump(schema) and "anyOf" not in yaml.safe_dump(schema)
    kubernetes_validate.validate(doc, "1.37.0", strict=True)
    names = doc["spec"]["names"]
    assert names["shortNames"] == [KINDS[kind].short]
    cols = {c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {"Phase", "MLflow-Run", "Age"} <= cols
    assert "status" in doc["spec"]["versions"][0]["subresources"]


def test_schema_keeps_types_enums_bounds_and_required() -> None:
    spec = openapi_schema(KINDS["GRPORun"].spec)
    props = spec["properties"]
    assert props["numGenerations"] == {"type": "integer", "description": "Default: 4.",
                                        "minimum": 2}
    assert props["learningRate"]["exclusiveMinimum"] is True and props["learningRate"][
        "minimum"] == 0
    assert props["deepspeed"]["enum"] == ["none", "zero2", "zero3"]
    reward = props["rewards"]["items"]
    assert reward["required"] == ["name"]
    assert reward["properties"]["name"]["enum"] == ["judge", "rm", "format", "length",
                                                    "repetition", "variety"]
    assert props["preset"]["nullable"] is True
    assert props["rewards"]["minItems"] == 1
    assert props["resources"]["properties"]["gpus"]["maximum"] == 16


def test_structural_checker_catches_violations() -> None:
    bad = {"type": "object", "properties": {
        "a": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "b": {"type": "array"},
        "c": {"$ref": "#/x"},
    }}
    errors = structural_errors(bad)
    assert any(".a: no type" in e for e in errors)
    assert any("'type' inside anyOf" in e for e in errors)
    assert any(".b: array without items" in e for e in errors)
    assert any(".c: $ref" in e for e in errors)


def test_examples_cover_the_flow_and_validate() -> None:
    docs = _examples()
    assert sorted(d["kind"] for d in docs) == ["CurationJob", "GRPORun", "JudgeTraining"]
    names = {d["kind"]: d["metadata"]["name"] for d in docs}
    grpo = next(d for d in docs if d["kind"] == "GRPORun")
    assert grpo["spec"]["judgeRef"] == names["JudgeTraining"]
    assert grpo["spec"]["curationRef"] == names["CurationJob"]
    for doc in docs:
        errors = list(_validator(doc["kind"]).iter_errors(doc))
        assert not errors, f"{doc['kind']}: {[e.message for e in errors]}"
        # The operator's own checks (beyond the schema) accept them too.
        from zhufu.operator.validation import validate

        validate(kind_of(doc["kind"]), doc["metadata"]["name"], doc["spec"])


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if value is _DELETE:
        del node[parts[-1]]
    elif isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return out


_DELETE = object()

# (kind, path, bad value, why) — each a different kind of mistake the API server must reject.
BROKEN: list[tuple[str, str, Any, str]] = [
    ("GRPORun", "spec.numGenerations", "four", "string for an integer"),
    ("GRPORun", "spec.numGenerations", 1, "below minimum (2)"),
    ("GRPORun", "spec.learningRate", 0, "exclusive minimum 0"),
    ("GRPORun", "spec.beta", -0.1, "negative KL coefficient"),
    ("GRPORun", "spec.deepspeed", "zero4", "not in enum"),
    ("GRPORun", "spec.vllm", "remote", "not in enum"),
    ("GRPORun", "spec.rewards", [], "empty rewards (minItems 1)"),
    ("GRPORun", "spec.rewards.0.name", "bleu", "unknown reward name"),
    ("GRPORun", "spec.rewards.0", {"weight": 1.0}, "reward without required name"),
    ("GRPORun", "spec.rewards.0.weight", -1, "negative reward weight"),
    ("GRPORun", "spec.rewards", {"name": "judge"}, "object where an array belongs"),
    ("GRPORun", "spec.resources.gpus", -1, "negative GPUs"),
    ("GRPORun", "spec.resources.gpus", 64, "more GPUs than a node has (max 16)"),
    ("GRPORun", "spec.resources.memory", "lots", "memory not a quantity"),
    ("GRPORun", "spec.resources.cpu", 4, "cpu quantity as a number, not a string"),
    ("GRPORun", "spec.nodes", 0, "zero nodes"),
    ("GRPORun", "spec.backoffLimit", -1, "negative backoffLimit"),
    ("GRPORun", "spec.activeDeadlineSeconds", 0, "zero deadline"),
    ("GRPORun", "spec.suspend", "yes", "string for a boolean"),
    ("GRPORun", "spec.queue", "GPU Team", "queue not a DNS label"),
    ("GRPORun", "spec.judgeRef", "Greetings_Judge", "reference neither a name nor a URI"),
    ("GRPORun", "spec.curationRef", "x" * 300, "oversized reference"),
    ("GRPORun", "spec.tolerations.0.effect", "Sometimes", "toleration effect not in enum"),
    ("GRPORun", "spec.nodeSelector", {"gpu": 1}, "nodeSelector value not a string"),
    ("GRPORun", "spec.lora.r", 0, "LoRA rank 0"),
    ("GRPORun", "spec.unknownField", 1, "unknown field (typo)"),
    ("GRPORun", "spec.resources.gpu", 1, "unknown nested field (gpu vs gpus)"),
    ("GRPORun", "spec", _DELETE, "no spec at all"),
    ("GRPORun", "spec.image", "", "empty image"),
    ("GRPORun", "spec.llmApiKeySecret", {"key": "k"}, "secret without a name"),
    ("CurationJob", "spec.llm.backend", "claude", "unknown LLM backend"),
    ("CurationJob", "spec.llm.concurrency", 0, "zero concurrency"),
    ("CurationJob", "spec.samplesPerQuery", 65, "above maximum (64)"),
    ("CurationJob", "spec.retrieval.kind", "grep", "unknown retrieval kind"),
    ("CurationJob", "spec.debate.rounds", 9, "too many debate rounds"),
    ("CurationJob", "spec.experiment", "", "empty experiment name"),
    ("JudgeTraining", "spec.rounds", 101, "too many rounds"),
    ("JudgeTraining", "spec.maxRules", 0, "zero rules"),
    ("JudgeTraining", "spec.reflector", "true", "string for a boolean"),
    ("JudgeTraining", "spec.seed", -3, "negative seed"),
]


@pytest.mark.parametrize(("kind", "path", "value", "why"), BROKEN,
                         ids=[f"{k}:{w}" for k, _, _, w in BROKEN])
def test_broken_crs_are_rejected(kind: str, path: str, value: Any, why: str) -> None:
    base = next(d for d in _examples() if d["kind"] == kind)
    if path.startswith("spec.tolerations"):
        base = _set(base, "spec.tolerations", [{"key": "a", "operator": "Exists"}])
    if path.startswith("spec.lora"):
        base = _set(base, "spec.lora", {"r": 8})
    assert not list(_validator(kind).iter_errors(base)), "the base example must be valid"
    broken = _set(base, path, value)
    assert list(_validator(kind).iter_errors(broken)), f"accepted: {why}"


def test_at_least_twenty_kinds_of_mistakes() -> None:
    assert len({why for *_, why in BROKEN}) >= 20


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_spec_field_is_camel_case(kind: str) -> None:
    """Kubernetes API conventions: spec fields are camelCase (``numGenerations``,
    ``llm.baseUrl``); v1alpha1 renamed the snake_case stage config fields."""
    def names(node: dict[str, Any], path: str) -> list[str]:
        out = []
        for key, sub in (node.get("properties") or {}).items():
            out += [f"{path}.{key}", *names(sub, f"{path}.{key}")]
        if "items" in node:
            out += names(node["items"], f"{path}[]")
        return out

    spec = crd(KINDS[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    fields = names(spec["spec"], "spec")
    assert {"spec.outputDir", "spec.experiment"} <= set(fields)
    assert [f for f in fields if "_" in f] == []
