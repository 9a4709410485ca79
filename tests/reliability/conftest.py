"""Fixtures of the reliability tests; helpers live in ``reltools.py``.

``chaos_llm(rate, seed, hang_s)`` starts ``chaos_llm.py`` (a real aiohttp server, its own
process on 127.0.0.1) and returns a :class:`reltools.ChaosLLM` (``/v1`` URL, request log).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

HERE = str(Path(__file__).resolve().parent)
OPERATOR_TESTS = str(Path(__file__).resolve().parents[1] / "operator")
for _dir in (HERE, OPERATOR_TESTS):  # reltools; opharness + kube_emulator (importlib mode)
    if _dir not in sys.path:
        sys.path.insert(0, _dir)

from reltools import ChaosLLM, free_port, start_server, stop_server, wait_http  # noqa: E402
from tenancy import Cluster, shared_cluster  # noqa: E402

CHAOS = Path(__file__).with_name("chaos_llm.py")


@pytest.fixture
def chaos_llm(tmp_path: Path) -> Iterator[Callable[..., ChaosLLM]]:
    procs: list[subprocess.Popen] = []

    def start(rate: float = 0.3, seed: int = 7, hang_s: float = 5.0) -> ChaosLLM:
        port = free_port()
        log = tmp_path / f"chaos-{port}.jsonl"
        proc = start_server([sys.executable, "-P", str(CHAOS), "--port", str(port), "--log",
                             str(log), "--fault-rate", str(rate), "--seed", str(seed),
                             "--hang-s", str(hang_s)], tmp_path / f"chaos-{port}.out")
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/health", 20, proc)
        return ChaosLLM(f"http://127.0.0.1:{port}/v1", log)

    yield start
    for proc in procs:
        stop_server(proc)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """One shared two-team install per test module (``tenancy.shared_cluster``); the module
    marks its tests ``pytest.mark.asyncio(loop_scope="module")`` to share its loop."""
    async with shared_cluster(tmp_path_factory.mktemp("tenancy")) as c:
        yield c
