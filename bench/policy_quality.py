"""Does the embedded policy write after SFT? Wall time, loss and readable share.

Runs exactly the data preparation and SFT stage of ``zhufu run`` (``RunSettings`` as
shipped, or overridden with ``--set FIELD=VALUE``) in a fresh data dir, then samples
``--samples`` greetings for each held-out query and reports the share the shared
readability check (:mod:`zhufu.pipeline.evaluation.readable`) accepts, which rules the rest
break, and ``--show`` samples verbatim. With ``--queries FILE`` (one query a line, e.g. the
paper's ``random_query.txt``) it also samples the first ``--max-queries`` of those.

    .venv/bin/python -P bench/policy_quality.py [--samples 4] [--set sft_epochs=3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path


def _settings(overrides: list[str]):  # noqa: ANN202 - RunSettings
    from zhufu.pipeline.run import RunSettings

    s = RunSettings(experiment="bench-policy")
    fields = {f.name: f.type for f in dataclasses.fields(s)}
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {item}: RunSettings has no field {key!r}")
        setattr(s, key, type(getattr(s, key))(value))
    return s


def _readable_report(queries: list[str], samples: list[list[str]], show: int, seed: int
                     ) -> dict[str, object]:
    from zhufu.pipeline.analysis import extract_features
    from zhufu.pipeline.evaluation.readable import readability

    verdicts = [(q, t, readability(t, q)) for q, ts in zip(queries, samples, strict=True)
                for t in ts]
    failed = Counter(rule for *_, v in verdicts for rule in v.failed)
    # does the greeting fit the query? the analyser's occasion / recipient features
    fit = Counter()
    for q, t, _ in verdicts:
        values = extract_features(q, t).values
        fit["occasion_named"] += values["occasion_named"] > 0
        fit["wrong_occasion"] += values["wrong_occasion"] > 0
        fit["recipient_named"] += values["recipient_named"] > 0
        fit["honorific_slip"] += values["honorific_slip"] > 0
    shown = random.Random(seed).sample(verdicts, min(show, len(verdicts)))
    return {"queries": len(queries), "samples": len(verdicts),
            "readable_share": sum(v.ok for *_, v in verdicts) / len(verdicts),
            "failed_rules": dict(failed), "distinct_share": len({t for _, t, _ in verdicts})
            / len(verdicts),
            "mean_length": sum(len(t) for _, t, _ in verdicts) / len(verdicts),
            "fit_shares": {k: v / len(verdicts) for k, v in fit.items()},
            "shown": [{"query": q, "text": t, "failed": list(v.failed)} for q, t, v in shown]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4, help="greetings per held-out query")
    parser.add_argument("--show", type=int, default=10)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--queries", help="another query file to sample (e.g. paper queries)")
    parser.add_argument("--max-queries", type=int, default=60)
    parser.add_argument("--home", help="data dir (default: a fresh temporary one)")
    parser.add_argument("--out", help="also write the JSON report to this file")
    parser.add_argument("--shape", action="append", default=[],
                        help="override a TINY_SHAPE field of a fresh build: KEY=INT")
    args = parser.parse_args()
    from zhufu.pipeline.models import tiny

    for item in args.shape:
        key, _, value = item.partition("=")
        if key not in tiny.TINY_SHAPE:
            raise SystemExit(f"--shape {item}: TINY_SHAPE has no field {key!r}")
        tiny.TINY_SHAPE[key] = type(tiny.TINY_SHAPE[key])(value)

    os.environ["ZHUFU_HOME"] = args.home or tempfile.mkdtemp(prefix="zhufu-policy-bench-")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from zhufu.pipeline import tracking
    from zhufu.pipeline.data import load_queries
    from zhufu.pipeline.evaluation.sampling import sample_greetings
    from zhufu.pipeline.models import data_dir, tiny_policy_path
    from zhufu.pipeline.run import RunState, _prepare_data, _record, plan
    from zhufu.pipeline.stage_runner import run_stage
    from zhufu.pipeline.stages import STAGES

    s = _settings(args.overrides)
    tracking.configure()
    started = time.perf_counter()
    tiny_policy_path()
    build_s = time.perf_counter() - started
    state = RunState(work=data_dir() / "run")
    state.work.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    _prepare_data(state, s)
    t0, c0 = time.perf_counter(), time.process_time()
    step = next(x for x in plan(s) if x.stage == "sft")
    _record(state, step, run_stage(STAGES["sft"], step.config(state, s)))
    sft_s, sft_cpu = time.perf_counter() - t0, time.process_time() - c0
    held = load_queries(state.outputs["held_out_queries"])
    t0 = time.perf_counter()
    samples = sample_greetings(state.outputs["sft_policy"], held, n=args.samples, seed=s.seed)
    sample_s = time.perf_counter() - t0
    report: dict[str, object] = {
        "settings": dataclasses.asdict(s), "load_average_before": load0,
        "load_average_after": os.getloadavg()[0], "build_seconds": build_s,
        "shape": tiny.TINY_SHAPE, "sft_seconds": sft_s, "sft_cpu_seconds": sft_cpu,
        "sft_examples": state.metrics["sft/examples"],
        "sft_train_loss": state.metrics["sft/train_loss"], "sample_seconds": sample_s,
        "held_out": _readable_report(held, samples, args.show, s.seed)}
    if args.queries:
        other = load_queries(args.queries)[:args.max_queries]
        more = sample_greetings(state.outputs["sft_policy"], other, n=args.samples,
                                seed=s.seed)
        report["other_queries"] = {"file": str(Path(args.queries).name),
                                   **_readable_report(other, more, args.show, s.seed)}
    text = json.dumps(report, ensure_ascii=False, indent=2)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
