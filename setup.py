"""Package discovery for the folder → package mapping in pyproject.toml.

``pipeline/`` is ``zhufu.pipeline`` and ``operator/`` is ``zhufu.operator``; setuptools'
automatic discovery cannot follow such a mapping, so the sub-packages are listed here.
"""

from setuptools import find_packages, setup


def mapped(folder: str, package: str) -> list[str]:
    return [package, *(f"{package}.{sub}" for sub in find_packages(folder))]


setup(
    packages=[
        "zhufu",
        *mapped("pipeline", "zhufu.pipeline"),
        *mapped("operator", "zhufu.operator"),
    ]
)
