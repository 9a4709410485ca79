"""The trainer image's pins fit together: vLLM inside TRL's supported range, vLLM's torch and
transformers requirements met by the image's torch and the project's pins, every pinned
release installable on the image's Python, torch's CUDA the base image's CUDA.

The ``registry`` tests ask the package registry through pip (seconds, nothing installed);
they are not in the default suite and ``.ci/run`` runs them (``make test-registry``). The
others check the logic on made-up metadata and the local files only.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest
from imagepins import (
    SDIST_ONLY,
    Meta,
    cuda_of_torch,
    dockerfile_args,
    image_pins,
    sdist_metadata,
    trl_vllm_range,
    unmet,
    wheel_metadata,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


def _meta(name: str, version: str, *reqs: str, python: str | None = None) -> Meta:
    return Meta(name, version, reqs, python)


def test_unmet_names_the_conflict() -> None:
    pins = {"vllm": "0.33.0", "torch": "2.13.0", "transformers": "5.24.0"}
    metas = {"vllm": _meta("vllm", "0.33.0", "transformers<5.21.0,>=5.16.1", "torch==2.14.0",
                           "numpy", "pytest; extra == 'test'", "uvloop; sys_platform == 'win32'",
                           python=">=3.10,<3.15")}
    problems = unmet(pins, metas, "3.12")
    assert problems == [
        "vllm 0.33.0 requires transformers<5.21.0,>=5.16.1, but the image pins "
        "transformers==5.24.0",
        "vllm 0.33.0 requires torch==2.14.0, but the image pins torch==2.13.0"]
    assert unmet(pins | {"transformers": "5.20.1", "torch": "2.14.0"}, metas, "3.12") == []
    assert unmet(pins, {"x": _meta("x", "1", python=">=3.13")}, "3.12") == [
        "x 1 requires Python >=3.13, the image has 3.12"]


def test_cuda_of_torch_reads_the_toolkit_pin() -> None:
    assert cuda_of_torch(_meta("torch", "2.13.0", 'cuda-toolkit[cublas,cudart]==13.0.3; '
                               'platform_system == "Linux"', "filelock")) == "13.0"
    assert cuda_of_torch(_meta("torch", "2.6.0", "nvidia-cuda-runtime-cu12==12.4.127")) == "12.4"
    assert cuda_of_torch(_meta("torch", "2.13.0", "filelock")) is None


def test_trl_range_is_read_from_the_installed_trl() -> None:
    spec = importlib.util.find_spec("trl.import_utils")
    low, high = trl_vllm_range(Path(spec.origin).read_text())
    assert Version(low) <= Version(high)
    assert importlib.metadata.version("trl") == image_pins()["trl"], (
        "the installed TRL is not the pinned one: reinstall with -c constraints.txt")
    with pytest.raises(ValueError, match="no 'Version"):
        trl_vllm_range("def is_vllm_available(): return True")


def test_project_ranges_admit_the_pins() -> None:
    """pyproject.toml's own ranges (``vllm>=…``, ``torch>=…``) allow every image pin."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    pins = image_pins()
    reqs = [Requirement(r) for r in (*project["dependencies"],
                                     *project["optional-dependencies"]["train"],
                                     *project["optional-dependencies"]["gpu"])]
    for req in reqs:
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name]), f"pyproject {req} vs pin {pins[name]}"
    assert {"torch", "vllm", "deepspeed", "transformers", "trl"} <= set(pins)


@pytest.fixture(scope="module")
def registry() -> dict[str, Meta]:
    pins = image_pins()
    python = dockerfile_args()["PYTHON_VERSION"]
    metas = wheel_metadata({n: v for n, v in pins.items() if n not in SDIST_ONLY}, python)
    for name in SDIST_ONLY & set(pins):
        metas[name] = sdist_metadata(name, pins[name])
    return metas


@pytest.mark.registry
def test_image_pins_fit_together(registry: dict[str, Meta]) -> None:
    pins = image_pins()
    assert {n: m.version for n, m in registry.items()} == pins
    assert unmet(pins, registry, dockerfile_args()["PYTHON_VERSION"]) == []


@pytest.mark.registry
def test_vllm_is_in_trls_supported_range() -> None:
    spec = importlib.util.find_spec("trl.import_utils")
    low, high = trl_vllm_range(Path(spec.origin).read_text())
    vllm = Version(image_pins()["vllm"])
    assert Version(low) <= vllm <= Version(high), f"TRL supports vLLM {low}-{high}, not {vllm}"


@pytest.mark.registry
def test_base_image_cuda_is_torchs_cuda(registry: dict[str, Meta]) -> None:
    cuda = ".".join(dockerfile_args()["CUDA_VERSION"].split(".")[:2])
    assert cuda_of_torch(registry["torch"]) == cuda


@pytest.mark.registry
def test_the_check_fails_on_the_old_pin() -> None:
    """Negative control on real metadata: vLLM 0.33.0 (the image's previous pin) is flagged
    for both its transformers range and its torch pin."""
    pins = image_pins() | {"vllm": "0.33.0"}
    metas = wheel_metadata({"vllm": "0.33.0"}, dockerfile_args()["PYTHON_VERSION"])
    problems = unmet(pins, metas, dockerfile_args()["PYTHON_VERSION"])
    assert any("transformers" in p for p in problems), problems
    assert any("torch==2.14" in p for p in problems), problems
