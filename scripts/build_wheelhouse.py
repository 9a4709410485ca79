"""Build ``wheelhouse/``: the wheels a GPU host without network needs to run ``zhufu grpo``.

The GPU host (an image with a CUDA torch stack: torch, transformers, peft, accelerate, numpy,
pandas, pyarrow, scikit-learn, matplotlib, aiohttp...) lacks zhufu's other dependencies (TRL,
MLflow, datasets, pydantic, jieba...). This script walks zhufu's requirements (base + train)
for the host's Python and platform, stops at every package the host already has
(:data:`HOST_HAS`), pins what ``constraints.txt`` pins, downloads the rest as wheels (building
a wheel here for a source-only package such as jieba), and prints each file with its size.
It fails when the total passes ``--budget-mib`` (what a working-tree copy may carry).

    .venv/bin/python -P scripts/build_wheelhouse.py            # or: make wheelhouse

``scripts/gpu-smoke.sh`` installs from it with ``pip --no-index --find-links wheelhouse``
*with* dependency resolution, so a host package too old for a carried one fails the install
loudly, naming both.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PIP = Path(sys.executable).parent / "pip"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
#: What the GPU host's Python already has (an image with a CUDA torch stack; read off the
#: lent H200 machine's package list, 2026-11). Versions there are the host's business: pip
#: checks them against what the carried wheels require when it installs.
HOST_HAS = frozenset(canonicalize_name(n) for n in """
accelerate aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs certifi
charset-normalizer click cloudpickle contourpy cuda-bindings cuda-pathfinder cuda-toolkit cycler
einops filelock fonttools frozenlist fsspec grpcio h11 hf-xet httpcore httpx huggingface-hub
idna jinja2 joblib kiwisolver markdown markdown-it-py markupsafe matplotlib mdurl mpmath msgpack
multidict narwhals networkx ninja numpy nvidia-ml-py packaging pandas peft pillow pip
prometheus-client propcache protobuf psutil pyarrow py-cpuinfo pygments pyparsing
python-dateutil pyyaml regex requests rich safetensors scikit-learn scipy setuptools shellingham
six sympy threadpoolctl tokenizers torch tqdm transformers triton typer typing-extensions
urllib3 uvloop werkzeug wheel xxhash yarl zipp
""".split())
#: Carried even though the host has a version: zhufu's pins, so the GPU run uses the same
#: transformers the trainer image does (the host's torch stays: far too large to carry).
CARRY_PINNED = frozenset({"transformers"})
#: What the GPU smoke run needs instead of zhufu's own requirement, to fit the budget: MLflow
#: without its server and UI (mlflow-skinny, same version: the local sqlite store and the
#: registry work without them; `zhufu ui` does not) plus the sqlite store's SQLAlchemy and
#: Alembic. boto3 (17 MiB with botocore) only serves s3:// paths, which the smoke run does
#: not use: it is left out, and zhufu itself is installed without dependency resolution.
SUBSTITUTES = {"mlflow": ("mlflow-skinny", "sqlalchemy", "alembic"), "boto3": ()}
#: Needed to build zhufu itself from source on the host (pip's isolated build env).
BUILD_TOOLS = ("setuptools>=69", "wheel")


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def roots() -> list[Requirement]:
    """zhufu's base and train requirements, with :data:`SUBSTITUTES` applied."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    out = []
    for line in (*project["dependencies"], *project["optional-dependencies"]["train"]):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in SUBSTITUTES:
            out += [Requirement(r) for r in SUBSTITUTES[name]]
        else:
            out.append(req)
    return out


def _dev_version(name: str) -> str | None:
    """The version this development venv has (what CI tested), if installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _marker_env(python: str) -> dict[str, str]:
    return {"python_version": python, "python_full_version": f"{python}.0",
            "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
            "os_name": "posix", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "extra": ""}


def _pick(specs: dict[str, SpecifierSet], python: str) -> dict[str, dict]:
    """pip's choice (newest matching release) for each name, with its metadata."""
    args = [f"{n}{s}" for n, s in sorted(specs.items())]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        cmd = [str(PIP), "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
               "--report", str(report), "--python-version", python, "--target",
               str(Path(tmp) / "t"), "--prefer-binary"]
        for plat in PLATFORMS:
            cmd += ["--platform", plat]
        cmd += ["--only-binary=:all:", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode:
            raise SystemExit(f"pip could not pick versions for {args}:\n{proc.stderr[-3000:]}")
        items = json.loads(report.read_text())["install"]
    return {canonicalize_name(i["metadata"]["name"]): i for i in items}


def closure(python: str, source_only: set[str]) -> dict[str, str]:
    """name → version of every package zhufu needs that the host lacks (or that we pin)."""
    pins = constraint_pins()
    env = _marker_env(python)
    specs: dict[str, SpecifierSet] = {}
    todo = list(roots())
    chosen: dict[str, str] = {}
    while todo:
        new: set[str] = set()
        for req in todo:
            name = canonicalize_name(req.name)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if name in HOST_HAS and name not in CARRY_PINNED:
                continue
            spec = specs.get(name, SpecifierSet()) & req.specifier
            dev = pins.get(name) or pins.get(name.removesuffix("-skinny")) or _dev_version(name)
            if dev and spec.contains(dev, prereleases=True):
                spec &= SpecifierSet(f"=={dev}")  # the version CI ran with
            if specs.get(name) != spec or name not in chosen:
                specs[name] = spec
                new.add(name)
        todo = []
        if not new:
            break
        binary = {n: s for n, s in specs.items() if n in new and n not in source_only}
        picked = _pick(binary, python) if binary else {}
        for name in new:
            if name in source_only:
                chosen[name] = _source_version(name, specs[name])
                continue
            item = picked[name]
            chosen[name] = item["metadata"]["version"]
            if name in CARRY_PINNED:
                continue  # its dependencies are the host's (tokenizers, hub, safetensors)
            todo += [Requirement(r) for r in item["metadata"].get("requires_dist") or ()]
    return chosen


def _source_version(name: str, spec: SpecifierSet) -> str:
    pins = constraint_pins()
    if name in pins:
        return pins[name]
    versions = subprocess.run([str(PIP), "index", "versions", name], capture_output=True,
                              text=True, timeout=120).stdout
    listed = versions.split("Available versions:", 1)[-1].split(",")
    for v in (x.strip() for x in listed):
        if v and spec.contains(v):
            return v
    raise SystemExit(f"{name}: no release matches {spec}")


def download(chosen: dict[str, str], out: Path, python: str, source_only: set[str]) -> None:
    binary = [f"{n}=={v}" for n, v in sorted(chosen.items()) if n not in source_only]
    cmd = [str(PIP), "download", "--no-deps", "--quiet", "-d", str(out), "--only-binary=:all:",
           "--python-version", python, "--implementation", "cp"]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    subprocess.run([*cmd, *binary, *BUILD_TOOLS], check=True, timeout=1800)
    for name in sorted(source_only & set(chosen)):
        subprocess.run([str(PIP), "wheel", "--no-deps", "--quiet", "-w", str(out),
                        f"{name}=={chosen[name]}"], check=True, timeout=600)


def add_deepspeed(out: Path) -> None:
    """DeepSpeed's sdist (it publishes no wheel; gpu-smoke.sh builds it on the host against the
    host's torch) and hjson, its one dependency a CUDA torch host usually lacks."""
    version = re.search(r"^ARG DEEPSPEED_VERSION=(\S+)$",
                        (REPO / "images/trainer/Dockerfile").read_text(), re.M).group(1)
    subprocess.run([str(PIP), "download", "--no-deps", "--quiet", "--no-binary=:all:", "-d",
                    str(out), f"deepspeed=={version}"], check=True, timeout=600)
    subprocess.run([str(PIP), "download", "--no-deps", "--quiet", "--only-binary=:all:", "-d",
                    str(out), "hjson"], check=True, timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "wheelhouse")
    parser.add_argument("--python", default="3.12", help="the GPU host's Python (X.Y)")
    parser.add_argument("--budget-mib", type=float, default=60.0,
                        help="fail above this total (a device run carries 64 MiB in all)")
    parser.add_argument("--source-only", default="jieba",
                        help="comma-separated packages published without wheels")
    parser.add_argument("--no-deepspeed", action="store_true",
                        help="leave out DeepSpeed (the smoke test then skips ZeRO-3)")
    args = parser.parse_args()
    source_only = {canonicalize_name(n) for n in args.source_only.split(",") if n}
    chosen = closure(args.python, source_only)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    download(chosen, args.out, args.python, source_only)
    if not args.no_deepspeed:
        add_deepspeed(args.out)
    files = sorted([*args.out.glob("*.whl"), *args.out.glob("*.tar.gz")])
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f.stat().st_size / 2**20:8.2f} MiB  {f.name}")
    print(f"{total / 2**20:8.2f} MiB  total, {len(files)} wheels in {args.out}")
    (args.out / "MANIFEST.txt").write_text(
        "".join(f"{f.name}\t{f.stat().st_size}\n" for f in files))
    # What gpu-smoke.sh installs (with dependency resolution against the host's packages).
    wanted = sorted({canonicalize_name(r.name) for r in roots()} & set(chosen))
    (args.out / "requirements.txt").write_text(
        "".join(f"{n}=={chosen[n]}\n" for n in wanted))
    if total > args.budget_mib * 2**20:
        raise SystemExit(f"wheelhouse is {total / 2**20:.1f} MiB, over the "
                         f"{args.budget_mib:g} MiB budget: carry less")


if __name__ == "__main__":
    main()
