"""docs/kind.md stays true: its custom resources pass the generated CRD schema and the
operator's own validation, and the object names it uses are the ones the chart renders for a
release called ``zhufu`` with charts/zhufu/ci/kind-values.yaml. (No kind cluster runs here.)"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KIND_DOC = REPO / "docs" / "kind.md"


def _crd_validator(crd_file: Path) -> jsonschema.Draft4Validator:
    """Draft-4 validator of the CRD's openAPIV3Schema (the operator's own conversion), strict
    about unknown fields like `kubectl apply` with server-side field validation."""
    from zhufu.operator.crds import to_jsonschema

    crd = yaml.safe_load(crd_file.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return jsonschema.Draft4Validator(to_jsonschema(version["schema"]["openAPIV3Schema"]))


def _doc_resources() -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", KIND_DOC.read_text(encoding="utf-8"), re.S)
    return [d for b in blocks for d in yaml.safe_load_all(b)
            if d and str(d.get("apiVersion", "")).startswith("zhufu.dev/")]


def test_kind_doc_has_the_whole_flow() -> None:
    kinds = [d["kind"] for d in _doc_resources()]
    assert kinds == ["CurationJob", "JudgeTraining", "GRPORun"]


@pytest.mark.parametrize("resource", _doc_resources(), ids=lambda d: d["kind"])
def test_kind_doc_resources_are_valid(chart, resource: dict) -> None:
    from zhufu.operator.spec import KINDS
    from zhufu.operator.validation import validate

    crd_file = chart.dir / "crds" / f"{KINDS[resource['kind']].plural}.zhufu.dev.yaml"
    if not crd_file.exists():
        pytest.skip(f"{crd_file.name} not generated yet")
    _crd_validator(crd_file).validate(resource)
    # Cross-field checks the API server cannot do, exactly as the operator runs them.
    validate(KINDS[resource["kind"]], resource["metadata"]["name"], dict(resource["spec"]))


def test_crd_schema_rejects_a_broken_doc_resource(chart) -> None:
    """The schema check above can fail: a negative GPU count is refused."""
    crd_file = chart.dir / "crds" / "grporuns.zhufu.dev.yaml"
    if not crd_file.exists():
        pytest.skip(f"{crd_file.name} not generated yet")
    validator = _crd_validator(crd_file)
    grpo = next(d for d in _doc_resources() if d["kind"] == "GRPORun")
    for bad_spec in ({"resources": {"gpus": -1}}, {"max_step": 4}, {"preset": "huge"}):
        broken = {**grpo, "spec": {**grpo["spec"], **bad_spec}}
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_kind_doc_names_match_the_chart(chart) -> None:
    text = KIND_DOC.read_text(encoding="utf-8")
    values = chart.dir / "ci" / "kind-values.yaml"
    assert "charts/zhufu/ci/kind-values.yaml" in text and values.exists()
    out = chart.helm("template", "zhufu", str(chart.dir), "--namespace", "zhufu",
                     "-f", str(values)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for expected in [("Deployment", "zhufu-operator"), ("Service", "zhufu-mlflow"),
                     ("Service", "zhufu-minio"), ("ServiceAccount", "zhufu-job")]:
        assert expected in names, expected
        assert expected[1] in text
    # MinIO's root login is the Secret the doc creates before the install, not a chart one.
    assert not [n for k, n in names if k == "Secret"]
    assert "create secret generic zhufu-minio-root" in text
    images = {c["image"] for d in docs if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert "zhufu/zhufu-operator:dev" in images and "zhufu/zhufu-operator:dev" in text
    assert "kind load docker-image --name zhufu zhufu/zhufu-operator:dev zhufu/zhufu-trainer:dev" \
        in text
    operator = next(d for d in docs if d["metadata"]["name"] == "zhufu-operator"
                    and d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in
           operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ZHUFU_TRAINER_IMAGE"] == "zhufu/zhufu-trainer:dev"
    assert env["ZHUFU_IMAGE_PULL_POLICY"] == "Never"
    assert env["ZHUFU_S3_SECRET"] == "zhufu-minio-root"
