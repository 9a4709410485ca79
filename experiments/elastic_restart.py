"""Experiment (issue 13, item 6): two torchrun "nodes" on 127.0.0.1 with c10d rendezvous and
``--max-restarts``; node 1's process group (agent and worker) is killed mid-run, then started
again as a Job would restart its pod. Does the group restart from the last checkpoint and end
at the planned step with one registration?

    .venv/bin/python -P experiments/elastic_restart.py OUT_DIR [-- CMD ARGS...]

CMD defaults to ``experiments/elastic_toy.py OUT_DIR/train``. Prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(node: int, port: int, cmd: list[str], log: Path) -> subprocess.Popen:
    """One node's torchrun agent in its own process group (what one pod runs)."""
    restarts = "3" if os.environ.get("ELASTIC_MODE", "elastic") == "elastic" else "0"
    args = [str(BIN / "torchrun"), "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
            "--rdzv-id", "zhufu-elastic", "--rdzv-conf", f"is_host={int(node == 0)}",
            "--max-restarts", restarts, "--monitor-interval", "1", *cmd]
    return subprocess.Popen(args, stdout=log.open("a"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_pod(agent: subprocess.Popen) -> None:
    """SIGKILL an agent and every process under it, as when its pod is lost. (torchrun starts
    its workers in their own sessions: killing the agent's process group alone leaves the
    worker training on — seen in the first try of this experiment.)"""
    import psutil

    procs = [psutil.Process(agent.pid), *psutil.Process(agent.pid).children(recursive=True)]
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
    agent.wait()
    psutil.wait_procs(procs[1:], timeout=30)


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    mode = os.environ.get("ELASTIC_MODE", "elastic")  # or "group"
    train = out / "train"
    train.mkdir(parents=True, exist_ok=True)
    cmd = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else [
        str(Path(__file__).with_name("elastic_toy.py")), str(train)]
    port = free_port()
    started = time.monotonic()
    nodes = {n: launch(n, port, cmd, out / f"node{n}.log") for n in (0, 1)}
    # Wait for the first checkpoint, then kill node 1 (agent + worker) like a lost pod.
    while not (train / "LATEST").is_file():
        if any(p.poll() is not None for p in nodes.values()):
            raise SystemExit(f"a node exited before the first checkpoint; see {out}")
        time.sleep(0.2)
    killed_at = (train / "LATEST").read_text().strip()
    kill_pod(nodes[1])
    first_codes = {}
    if mode == "elastic":  # the survivor's agent restarts its worker and waits for node 1
        time.sleep(3)
        nodes[1] = launch(1, port, cmd, out / "node1.log")  # the Job's replacement pod
    else:  # whole group: the survivor fails, then every node starts again
        first_codes = {0: nodes[0].wait(timeout=900), 1: -9}
        port = free_port()
        nodes = {n: launch(n, port, cmd, out / f"node{n}.log") for n in (0, 1)}
    codes = {n: p.wait(timeout=900) for n, p in nodes.items()}
    events = [json.loads(line) for f in sorted(train.glob("events-rank*.jsonl"))
              for line in f.read_text().splitlines()]
    summary = {"mode": mode, "first_exit_codes": first_codes, "exit_codes": codes,
               "killed_after": killed_at,
               "final_latest": (train / "LATEST").read_text().strip(),
               "registered": (train / "registered.txt").read_text().splitlines()
               if (train / "registered.txt").is_file() else [],
               "starts": [(e["step"], e["restart"]) for e in events if e["event"] == "start"],
               "ends": [e["step"] for e in events if e["event"] == "end"],
               "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
