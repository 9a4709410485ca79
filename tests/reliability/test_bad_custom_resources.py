"""Malformed custom resources that get PAST the CRD schema and must be stopped by the operator.

The schema-level rejections (40 kinds: wrong types, unknown reward names, negative GPUs,
oversized references, unknown fields…) are in ``tests/operator/test_crds.py::BROKEN``; 15
operator-level ones are in ``tests/operator/test_builders.py::INVALID`` and the end-to-end
``Failed/InvalidSpec`` + Event path in ``tests/operator/test_operator_flow.py``. This file adds
the operator-level kinds those do not try. Each case is first checked to PASS the generated
CRD schema (so the API server would store it), then :func:`zhufu.operator.validation.validate`
must raise a ``SpecError`` naming the exact field, with a message holding ``why``.

Dependency cycles cannot be written: only a GRPORun takes references (a CurationJob or
JudgeTraining with one fails, cases below), and a GRPORun's references name a JudgeTraining
or CurationJob, never a GRPORun — a GRPORun naming itself waits for a JudgeTraining of that
name and ends ``DependencyNotFound`` (the ``orphan`` case of ``test_operator_flow.py``).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from zhufu.operator.crds import crd, to_jsonschema
from zhufu.operator.spec import kind_of
from zhufu.operator.validation import SpecError, validate

LONG = "x" * 60
_NO_GPU = {"resources": {"gpus": 0}}

# (kind, name, spec, field named, part of the message)
CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("GRPORun", "g", {"deepspeed": "zero3"}, "spec.deepspeed", "needs GPUs"),
    ("GRPORun", "g", {**_NO_GPU, "deepspeed": "zero2", "vllm": "colocate"}, "spec.deepspeed",
     "needs GPUs"),
    ("GRPORun", "g", {"curationRef": "c", "rewards": [{"name": "judge"}]}, "spec.curationRef",
     "no reward named 'rm'"),
    ("GRPORun", "g", {"curationRef": "c", "rewards": [{"name": "format"},
                                                      {"name": "rm", "model": "m"}]},
     "spec.rewards[1].model", "one place only"),
    ("GRPORun", "g", {"judgeRef": "models:/zhufu-judge/1",
                      "rewards": [{"name": "judge", "model": "m"}]},
     "spec.rewards[0].model", "one place only"),
    ("GRPORun", "g", {"rewards": [{"name": "rm", "model": ""}]}, "spec.rewards[0].model",
     "needs a model"),
    ("GRPORun", "g", {"rewards": [{"name": "format"}, {"name": "rm"}, {"name": "rm"}]},
     "spec.rewards[1].model", "needs a model"),
    ("GRPORun", "g", {"rewards": [{"name": "judge", "weight": 0},
                                  {"name": "format", "weight": 0}]}, "spec", "weights sum to 0"),
    ("GRPORun", "g", {"batchSize": 3, "numGenerations": 2}, "spec", "multiple of"),
    ("GRPORun", "g", {"tolerations": [{"key": "k", "effect": "NoSchedule",
                                       "tolerationSeconds": 30}]},
     "spec.tolerations[0].tolerationSeconds", "NoExecute"),
    ("CurationJob", "c", {"judge": False, "debate": {"enabled": False}}, "spec",
     "nothing gives a verdict"),
    ("CurationJob", "c", {"llm": {"backend": "transformers"}}, "spec.llm", "needs 'model'"),
    ("CurationJob", "c", {"llm": {"backend": "openai", "model": "m", "baseUrl": "ftp://x/v1"}},
     "spec.llm", "http://"),
    ("CurationJob", "c", {"llm": {"backend": "openai", "baseUrl": "http://x/v1"}}, "spec.llm",
     "needs both"),
    ("CurationJob", "c", {"tolerations": [{"operator": "Exists", "value": "v"}]},
     "spec.tolerations[0].value", "must be empty"),
    ("CurationJob", LONG, {}, "metadata.name", "at most"),
    ("JudgeTraining", "j", {"llm": {"backend": "transformers"}}, "spec.llm", "needs 'model'"),
    ("JudgeTraining", "j", {"llm": {"backend": "openai", "model": "m"}}, "spec.llm",
     "needs both"),
    ("JudgeTraining", "j", {"nodes": 2}, "spec.nodes", "one node"),
    ("JudgeTraining", "j", {"llmApiKeySecret": {"name": "s"}, "llm": {"apiKeyFile": "/k"}},
     "spec.llm.apiKeyFile", "not both"),
    ("JudgeTraining", LONG, {}, "metadata.name", "at most"),
    # stage-level mistakes that used to fail only later, in the pod
    ("CurationJob", "c", {"retrieval": {"kind": "dense"}}, "spec.retrieval.model",
     "needs retrieval.model"),
    ("CurationJob", "c", {"outputDir": "s3://"}, "spec.outputDir", "needs a bucket name"),
    ("CurationJob", "c", {"exemplars": "s3:///greetings.json"}, "spec.exemplars",
     "needs a bucket name"),
    ("GRPORun", "g", {"checkpointDir": "s3://"}, "spec.checkpointDir", "needs a bucket name"),
    ("GRPORun", "g", {"outputDir": "s3://My_Bucket/runs"}, "spec.outputDir",
     "not a valid bucket name"),
    ("JudgeTraining", "j", {"labelled": "S3://zhufu/labelled.jsonl"}, "spec.labelled",
     "lower case"),
]


def _schema_errors(kind: str, name: str, spec: dict[str, Any]) -> list[str]:
    schema = crd(kind_of(kind))["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    doc = {"apiVersion": "zhufu.dev/v1alpha1", "kind": kind,
           "metadata": {"name": name, "namespace": "ml"}, "spec": spec}
    return [e.message for e in jsonschema.Draft4Validator(to_jsonschema(schema))
            .iter_errors(doc)]


def test_cases_are_many_and_distinct() -> None:
    assert len({(k, repr(s), n) for k, n, s, *_ in CASES}) == len(CASES) >= 20


@pytest.mark.parametrize(("kind", "name", "spec", "field", "why"), CASES,
                         ids=[f"{c[0]}:{c[3]}:{i}" for i, c in enumerate(CASES)])
def test_past_the_schema_but_stopped_naming_the_field(kind: str, name: str, spec: dict[str, Any],
                                                      field: str, why: str) -> None:
    assert _schema_errors(kind, name, spec) == [], "must get past the CRD schema"
    with pytest.raises(SpecError) as err:
        validate(kind_of(kind), name, spec)
    assert err.value.field == field, str(err.value)
    assert why in err.value.message, str(err.value)


@pytest.mark.parametrize("kind", ["CurationJob", "JudgeTraining"])
@pytest.mark.parametrize("ref", ["judgeRef", "curationRef"])
def test_only_grporun_takes_references(kind: str, ref: str) -> None:
    """Cycles need a non-GRPORun with a reference: the schema already refuses one, and the
    operator does too if a schema ever let it through."""
    assert _schema_errors(kind, "x", {ref: "other"}), "the schema has no such field"
    with pytest.raises(SpecError) as err:
        validate(kind_of(kind), "x", {ref: "other"})
    assert err.value.field == f"spec.{ref}" and "only GRPORun" in err.value.message
