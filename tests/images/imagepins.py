"""The trainer image's version pins and the checks that they fit together.

Pins come from two places: ``images/trainer/Dockerfile`` (build arguments: torch, vLLM,
DeepSpeed, CUDA, Python) and ``constraints.txt`` (everything else the image installs).
Metadata comes from the package registry through pip, for the image's Python and platform:
``pip install --dry-run --no-deps --report`` for wheels (seconds, nothing installed) and the
sdist's ``PKG-INFO`` for DeepSpeed, which ships no wheel. The checks are pure functions of
that metadata, so they are unit-tested on made-up metadata without the registry.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "trainer" / "Dockerfile"
PIP = Path(sys.executable).parent / "pip"
PLATFORM = "manylinux_2_28_x86_64"
#: What pip on the image (glibc 2.28) installs: its own tag and every older manylinux tag
#: (orjson, for one, publishes manylinux_2_17 wheels only).
PLATFORM_TAGS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)] + [
    "manylinux2014_x86_64", "manylinux1_x86_64"]
#: Packages published as source only: their metadata is read from the sdist's PKG-INFO.
SDIST_ONLY = {"deepspeed"}
#: Build arguments of the Dockerfile that pin a Python package.
ARG_PACKAGES = {"TORCH_VERSION": "torch", "VLLM_VERSION": "vllm",
                "DEEPSPEED_VERSION": "deepspeed"}


@dataclass(frozen=True)
class Meta:
    """What the registry says about one release: its requirements and Python range."""

    name: str
    version: str
    requires_dist: tuple[str, ...]
    requires_python: str | None


def dockerfile_args(path: Path = DOCKERFILE) -> dict[str, str]:
    """``ARG NAME=DEFAULT`` defaults of the Dockerfile (an ARG repeated must agree)."""
    args: dict[str, str] = {}
    for name, value in re.findall(r"^ARG (\w+)=(\S*)$", path.read_text(), flags=re.M):
        if args.setdefault(name, value) != value:
            raise ValueError(f"{path}: ARG {name} has two defaults: {args[name]} and {value}")
    return args


def constraint_pins(path: Path = REPO / "constraints.txt") -> dict[str, str]:
    """``name==version`` lines of a constraints file, by canonical name."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def image_extras_names() -> set[str]:
    """Names the trainer image installs by requirement: zhufu's base deps, train and gpu."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["train"],
            *project["optional-dependencies"]["gpu"]]
    return {canonicalize_name(Requirement(r).name) for r in reqs}


def image_pins() -> dict[str, str]:
    """Every ``==`` pin the image installs with: constraints.txt with the Dockerfile's torch,
    vLLM and DeepSpeed, less the pins only the operator or development installs use."""
    args = dockerfile_args()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    elsewhere = {canonicalize_name(Requirement(r).name)
                 for extra in ("operator", "dev") for r in project["optional-dependencies"][extra]}
    pins = {n: v for n, v in constraint_pins().items()
            if n not in elsewhere or n in image_extras_names()}
    pins.update({pkg: args[arg] for arg, pkg in ARG_PACKAGES.items()})
    return pins


def unmet(pins: dict[str, str], metas: dict[str, Meta], python: str) -> list[str]:
    """Every requirement of a pinned release on another pinned package that the other pin
    does not satisfy, and every release whose ``Requires-Python`` excludes ``python``."""
    env = {"python_version": python, "python_full_version": f"{python}.0",
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "os_name": "posix", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "extra": ""}
    problems = []
    for name, meta in sorted(metas.items()):
        if meta.requires_python and Version(python) not in SpecifierSet(meta.requires_python):
            problems.append(f"{name} {meta.version} requires Python {meta.requires_python}, "
                            f"the image has {python}")
        for line in meta.requires_dist:
            req = Requirement(line)
            other = canonicalize_name(req.name)
            if other not in pins or other == name:
                continue
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if not req.specifier.contains(pins[other], prereleases=True):
                problems.append(f"{name} {meta.version} requires {req}, but the image pins "
                                f"{other}=={pins[other]}")
    return problems


def trl_vllm_range(source: str) -> tuple[str, str]:
    """The vLLM versions TRL accepts, read from ``trl/import_utils.py``'s check."""
    found = re.search(r'Version\("([\d.]+)"\)\s*<=\s*_vllm_base_version\s*<=\s*'
                      r'Version\("([\d.]+)"\)', source)
    if not found:
        raise ValueError("trl/import_utils.py: no 'Version(a) <= _vllm_base_version <= "
                         "Version(b)' check found; read how this TRL checks vLLM")
    return found.group(1), found.group(2)


def cuda_of_torch(meta: Meta) -> str | None:
    """``MAJOR.MINOR`` of the CUDA toolkit a torch wheel depends on (None: no CUDA deps)."""
    for line in meta.requires_dist:
        req = Requirement(line)
        if canonicalize_name(req.name) == "cuda-toolkit" or re.match(
                r"nvidia-cuda-runtime-cu\d+", canonicalize_name(req.name)):
            pinned = [s.version for s in req.specifier if s.operator == "=="]
            if pinned:
                return ".".join(pinned[0].split(".")[:2])
    return None


def wheel_metadata(pins: dict[str, str], python: str) -> dict[str, Meta]:
    """Registry metadata of ``name==version`` wheels for the image's Python and platform."""
    specs = [f"{n}=={v}" for n, v in sorted(pins.items())]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        proc = subprocess.run(
            [str(PIP), "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
             "--report", str(report), "--only-binary=:all:",
             *[arg for tag in PLATFORM_TAGS for arg in ("--platform", tag)],
             "--python-version", python, "--target", str(Path(tmp) / "t"), *specs],
            capture_output=True, text=True, timeout=300)
        if proc.returncode:
            raise RuntimeError(f"pip could not find {' '.join(specs)} for Python {python} on "
                               f"{PLATFORM}:\n{proc.stderr[-3000:]}")
        data = json.loads(report.read_text())
    out = {}
    for item in data["install"]:
        m = item["metadata"]
        name = canonicalize_name(m["name"])
        out[name] = Meta(name, m["version"], tuple(m.get("requires_dist") or ()),
                         m.get("requires_python"))
    return out


def sdist_metadata(name: str, version: str) -> Meta:
    """Metadata from the ``PKG-INFO`` of a source distribution (downloaded, not built)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [str(PIP), "download", "--no-deps", "--no-binary=:all:", "--quiet", "-d", tmp,
             f"{name}=={version}"], capture_output=True, text=True, timeout=300,
            env={"DS_BUILD_OPS": "0", "PATH": "/usr/bin:/bin"})
        if proc.returncode:
            raise RuntimeError(f"pip download {name}=={version}: {proc.stderr[-2000:]}")
        archive = next(Path(tmp).glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers() if m.name.count("/") == 1
                          and m.name.endswith("/PKG-INFO"))
            text = tar.extractfile(member).read().decode()
    msg = Parser().parsestr(text)
    return Meta(canonicalize_name(name), msg["Version"],
                tuple(msg.get_all("Requires-Dist") or ()), msg.get("Requires-Python"))
