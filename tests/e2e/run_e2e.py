"""``make e2e``: the whole cluster path on this machine, driven only through ``kubectl``.

Starts the stack (:mod:`stack`: S3, MLflow, the stand-in LLM, the one-node cluster, the chart
installed with ``helm template | kubectl apply``), applies the flow (:mod:`flow`), waits for
``Succeeded``, checks statuses, MLflow and the bucket, and prints as its last line one JSON
object: ``{"phases": …, "registered": …, "grpo_nodes": 2, "seconds": N}``. With
``--faults`` the operator is stopped while the CurationJob runs and started again, and both
GRPO pods are killed after the first checkpoint (:mod:`faults`); the summary then also holds
what each fault did. Exit status 0 only when every check passed; on failure the statuses,
events, operator log and pod log tails are printed. Work files stay in ``--workdir``
(default: a fresh temporary folder).

Run: ``.venv/bin/python -P tests/e2e/run_e2e.py [--faults] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _dir in (HERE, HERE.parent / "operator"):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))

import faults  # noqa: E402
from flow import Flow, apply, check, wait  # noqa: E402
from stack import Stack, StepFailed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--faults", action="store_true",
                        help="stop/start the operator and kill the GRPO pods mid-run")
    parser.add_argument("--nodes", type=int, default=2, help="GRPORun nodes (pods)")
    args = parser.parse_args()
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so every server and pod is still stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="zhufu-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    flow = Flow(started=time.monotonic(), nodes=args.nodes, max_steps=12 if args.faults else 4)
    try:
        with Stack(workdir) as stack:
            stack.say(f"work files in {workdir}")
            try:
                summary = run(stack, flow, args.faults)
            except (StepFailed, TimeoutError) as e:
                print(f"\nFAILED: {e}\n\n{stack.diagnostics()}", flush=True)
                return 1
    except (StepFailed, TimeoutError, RuntimeError) as e:  # the stack did not start
        print(f"\nFAILED: {e}", flush=True)
        return 1
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0


def run(stack: Stack, flow: Flow, with_faults: bool) -> dict[str, object]:
    """Apply, wait, check (and inject and verify the faults); the summary object."""
    injector = faults.Injector(flow) if with_faults else None
    apply(stack, flow)
    final = wait(stack, flow, during=injector.step if injector else None)
    summary = check(stack, flow, final)
    if injector is not None:
        summary["faults"] = injector.verify(stack)
    return summary

if __name__ == "__main__":
    sys.exit(main())
