"""examples/paper.yaml (the paper's experiment on a GPU cluster: one GRPORun per reward) and
examples/paper-compare-job.yaml (``zhufu eval compare`` as a plain Job), checked offline:
the CRs against the CRD schema and the operator's own validation and rendering (what
``zhufu operator render -f`` prints), the Job with
``kubernetes-validate --strict``, its command with the real CLI parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import typer
import yaml

from zhufu.operator.crds import crd, to_jsonschema
from zhufu.operator.render import render
from zhufu.operator.settings import OperatorSettings
from zhufu.operator.spec import kind_of
from zhufu.operator.validation import validate
from zhufu.pipeline.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SETTINGS = OperatorSettings(trainer_image="registry.example/zhufu-trainer:test",
                            mlflow_uri="http://mlflow.example:5000")


def _paper() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / "paper.yaml").read_text()) if d]


def _grpo_runs() -> dict[str, dict[str, Any]]:
    runs = [d["spec"] for d in _paper() if d["kind"] == "GRPORun"]
    return {r["rewards"][0]["name"]: r for r in runs}


def test_paper_resources_validate_and_render() -> None:
    docs = _paper()
    assert [d["kind"] for d in docs] == ["JudgeTraining", "CurationJob", "GRPORun", "GRPORun"]
    for doc in docs:
        schema = to_jsonschema(crd(kind_of(doc["kind"]))["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"])
        errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(doc)]
        assert not errors, f"{doc['metadata']['name']}: {errors}"
        validate(kind_of(doc["kind"]), doc["metadata"]["name"], doc["spec"])
        job = render(doc, SETTINGS, namespace="zhufu").children[-1]
        assert job["kind"] == "Job" and job["metadata"]["namespace"] == "zhufu"


def test_one_grpo_run_per_reward_with_the_papers_settings() -> None:
    """Qwen2.5-7B-Instruct, the paper preset, the same SFT recipe, steps, prompts and seed;
    the judge run uses the JudgeTraining, the rm run the CurationJob; own aliases."""
    names = {d["kind"]: d["metadata"]["name"] for d in _paper() if d["kind"] != "GRPORun"}
    runs = _grpo_runs()
    assert sorted(runs) == ["judge", "rm"]
    judge, rm = runs["judge"], runs["rm"]
    assert judge["judgeRef"] == names["JudgeTraining"] and "curationRef" not in judge
    assert rm["curationRef"] == names["CurationJob"] and "judgeRef" not in rm
    for run in (judge, rm):
        assert run["policy"].endswith("Qwen2.5-7B-Instruct") and run["preset"] == "paper"
        assert len(run["rewards"]) == 1
    for key in ("policy", "prompts", "maxSteps", "seed", "preset", "deepspeed", "resources"):
        assert judge[key] == rm[key], key
    assert {k: v for k, v in judge["sft"].items() if k != "alias"} == {
        k: v for k, v in rm["sft"].items() if k != "alias"}
    assert (judge["alias"], rm["alias"]) == ("grpo-judge", "grpo-rm")
    assert judge["prompts"].endswith("grpo_train.parquet")


def _compare_job() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "paper-compare-job.yaml").read_text())


def test_compare_job_is_valid_kubernetes_and_a_valid_zhufu_command() -> None:
    job = _compare_job()
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:3] == ["zhufu", "eval", "compare"]
    group = typer.main.get_command(app)
    compare = group.commands["eval"].commands["compare"]  # type: ignore[attr-defined]
    params = compare.make_context("compare", list(command[3:])).params  # parses, runs nothing
    policies = dict(p.split("=", 1) for p in params["policy"])
    # the policies the GRPORuns register: the judge run's SFT (alias sft) and both GRPO
    runs = _grpo_runs()
    assert list(policies) == ["sft", "grpo-rm", "grpo-judge"]
    assert policies["sft"].endswith("zhufu-policy@" + runs["judge"]["sft"].get("alias", "sft"))
    assert policies["grpo-rm"].endswith("@" + runs["rm"]["alias"])
    assert policies["grpo-judge"].endswith("@" + runs["judge"]["alias"])
    assert params["prompts"].endswith("grpo_test.parquet") and params["max_prompts"] == 800
    assert params["judge"] and params["reward_model"] and params["evaluator"].startswith(
        "openai:")
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert "valueFrom" in env["AWS_SECRET_ACCESS_KEY"] and "valueFrom" in env["OPENAI_API_KEY"]


def test_the_papers_test_prompts_are_800(shared_data: Path) -> None:
    from zhufu.pipeline.data import load_prompts

    assert len(load_prompts(str(shared_data / "grpo_test.parquet"))) == 800
