"""Helpers of the reliability tests: servers, the ``zhufu`` console script, small data sets.

Server helpers come from ``tests/conftest.py``: servers run in their own process group and
are stopped by PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import free_port, start_server, stop_server, wait_http  # noqa: F401

BIN = Path(sys.executable).parent
ZHUFU = BIN / "zhufu"


@dataclass
class ChaosLLM:
    url: str  # the OpenAI base URL, .../v1
    log: Path

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@dataclass
class Ran:
    rc: int
    stdout: str
    stderr: str
    seconds: float


def zhufu(args: list[str], home: Path, env: dict[str, str] | None = None,
          timeout: float = 180) -> Ran:
    """Run ``zhufu ARGS`` (cwd = ``home``, ``ZHUFU_HOME`` = ``home``, no MLflow URI unless
    ``env`` gives one) and return its exit code, output and wall time."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    full.update({"ZHUFU_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    full.update(env or {})
    home.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    proc = subprocess.run([str(ZHUFU), *args], capture_output=True, text=True, env=full,
                          cwd=home, timeout=timeout)
    return Ran(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def startup_seconds(home: Path) -> float:
    """Wall time of ``zhufu --help`` now: the CLI's start-up under the machine's current load,
    the baseline a "fails fast" bound is measured against (a fixed bound fails at load 15)."""
    return zhufu(["--help"], home, timeout=300).seconds


def labelled_from_pairs(shared: Path, out: Path, n_queries: int, skip: int = 0) -> Path:
    """Labelled JSONL (chosen → 1, rejected → 0) from ``n_queries`` of the paper's pairs."""
    rows = json.loads((shared / "reward_data_train.json").read_text(encoding="utf-8"))
    seen: set[str] = set()
    with out.open("w", encoding="utf-8") as fh:
        for row in rows[skip:]:
            q = row["conversations"][0]["value"]
            if q in seen or row["chosen"]["value"] == row["rejected"]["value"]:
                continue
            seen.add(q)
            for key, label in (("chosen", 1), ("rejected", 0)):
                fh.write(json.dumps({"query": q, "response": row[key]["value"],
                                     "label": label}, ensure_ascii=False) + "\n")
            if len(seen) == n_queries:
                break
    return out


class TcpGate:
    """A TCP forwarder on 127.0.0.1 in its own thread: ``up`` forwards to ``target_port``,
    ``down`` closes the listening socket (connections refused, as for a dead server) and
    drops the open ones. Used to make a real server unreachable for a while and back."""

    def __init__(self, target_port: int) -> None:
        import asyncio
        import threading

        self.target_port = target_port
        self.port = free_port()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: Any = None
        self._writers: set[Any] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _pipe(self, reader: Any, writer: Any) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: Any, writer: Any) -> None:
        import asyncio

        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _up(self) -> None:
        import asyncio

        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                  reuse_address=True)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def up(self) -> None:
        self._run(self._up())

    def down(self) -> None:
        self._run(self._down())

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
