"""``zhufu operator render -f CR.yaml``: the children the operator would create, no cluster.

The command goes through the operator's own validation and builders (the handlers call the
same :func:`zhufu.operator.render.build`), so these tests check what reaches the user: every
example renders, refs by name are explained, and bad input names what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from zhufu.operator import builders, tenancy
from zhufu.operator.render import RenderError, render, render_file
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import KINDS
from zhufu.operator.validation import validate
from zhufu.pipeline.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "crs"
SETTINGS = OperatorSettings(trainer_image="registry.example/zhufu-trainer:test",
                            mlflow_uri="http://mlflow.example:5000",
                            allowed_priority_classes=["training-high"])


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("name", ["curationjob", "judgetraining", "grporun"])
def test_every_example_renders_what_the_builders_make(name: str) -> None:
    obj = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    rendered = render(obj, SETTINGS, namespace="team-a")
    kind = KINDS[obj["kind"]]
    workload, deps, config = tenancy.enforce(
        kind, "team-a", *validate(kind, obj["metadata"]["name"], obj["spec"]), SETTINGS)
    assert config["experiment"].startswith("team-a.")  # MLflow names are the namespace's
    names = builders.child_names(kind, obj["metadata"]["name"])
    job = rendered.children[-1]
    assert job["kind"] == "Job" and job["metadata"]["name"] == names.job
    assert job["metadata"]["namespace"] == "team-a"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == (
        obj["kind"], obj["metadata"]["name"], True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == SETTINGS.trainer_image
    assert {"name": "MLFLOW_TRACKING_URI", "value": SETTINGS.mlflow_uri} in container["env"]
    config_map = rendered.children[0]
    assert yaml.safe_load(config_map["data"]["config.yaml"]) == yaml.safe_load(
        builders.config_yaml(config))
    kinds = [c["kind"] for c in rendered.children]
    assert kinds == (["ConfigMap", "Service", "Job"] if workload.get("nodes", 1) > 1
                     else ["ConfigMap", "Job"])


def test_references_by_name_are_explained_and_uris_filled_in() -> None:
    obj = yaml.safe_load((EXAMPLES / "grporun.yaml").read_text())
    rendered = render(obj, SETTINGS)
    assert [n.split(":")[0] for n in rendered.notes] == ["spec.judgeRef", "spec.curationRef"]
    obj["spec"]["judgeRef"] = "models:/zhufu-judge/3"
    obj["spec"]["curationRef"] = "models:/zhufu-reward@candidate"
    rendered = render(obj, SETTINGS)
    assert rendered.notes == []
    config = yaml.safe_load(rendered.children[0]["data"]["config.yaml"])
    models = {r["name"]: r.get("model") for r in config["rewards"]}
    assert models == {"judge": "models:/default.zhufu-judge/3",
                      "rm": "models:/default.zhufu-reward@candidate", "format": None}


def test_cli_prints_every_document_and_names_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    both = tmp_path / "both.yaml"
    both.write_text((EXAMPLES / "judgetraining.yaml").read_text() + "\n---\n"
                    + (EXAMPLES / "curationjob.yaml").read_text())
    out = runner.invoke(app, ["operator", "render", "-f", str(both), "-n", "team-b"])
    assert out.exit_code == 0, out.output
    docs = _docs(out.output)
    assert [(d["kind"], d["metadata"]["namespace"]) for d in docs] == [
        ("ConfigMap", "team-b"), ("Job", "team-b"), ("ConfigMap", "team-b"), ("Job", "team-b")]
    bad = tmp_path / "bad.yaml"
    obj = yaml.safe_load((EXAMPLES / "grporun.yaml").read_text())
    obj["spec"]["batchSize"] = 30
    bad.write_text(yaml.safe_dump(obj))
    out = runner.invoke(app, ["operator", "render", "-f", str(bad)])
    assert out.exit_code == 2
    assert "GRPORun/greetings-grpo: spec: batchSize must be a multiple" in out.output
    out = runner.invoke(app, ["operator", "render", "-f", str(tmp_path / "none.yaml")])
    assert out.exit_code == 2 and "no such file" in out.output


@pytest.mark.parametrize(("obj", "message"), [
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, "not a Zhufu resource"),
    ({"apiVersion": "zhufu.dev/v1alpha1", "kind": "GRPORun", "metadata": {}},
     "metadata.name is missing"),
    ({"apiVersion": "zhufu.dev/v1alpha1", "kind": "CurationJob", "metadata": {"name": "c"},
      "spec": {"nodes": 2}}, "CurationJob/c: spec.nodes"),
])
def test_bad_resources_name_what_is_wrong(obj: dict, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(obj, SETTINGS)


def test_empty_or_broken_files(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("---\n")
    with pytest.raises(RenderError, match="no documents"):
        render_file(tmp_path / "empty.yaml", SETTINGS)
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    with pytest.raises(RenderError, match="not valid YAML"):
        render_file(tmp_path / "broken.yaml", SETTINGS)
