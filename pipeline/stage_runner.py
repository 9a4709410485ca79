"""The one wrapper around every stage: it owns what every stage does the same way.

:func:`run_stage` runs a stage's function (:data:`zhufu.pipeline.stages.STAGES`) with its
side effects in a fixed order, each on the ranks that own it:

1. the config is loaded and validated (by the caller: CLI, ``zhufu run``, a test);
2. the tracking store is checked (an unreachable MLflow server fails here, in seconds,
   before torch loads); a multi-process launch joins its process group;
3. global rank 0 alone starts the MLflow run: config as params, lineage tags (stage, Zhufu
   version, ``zhufu.resource`` from ``ZHUFU_RESOURCE`` in a pod);
4. every rank runs the stage's function (the training: DDP or ZeRO across the ranks);
5. every rank calls the trainer's own ``save_model`` (under ZeRO-3 a collective that
   gathers the weights; rank 0 writes);
6. rank 0 alone: merges LoRA adapters into the saved weights, publishes the model
   (``s3://`` outputs), registers it, moves the alias, logs the metrics, writes the result
   file (``ZHUFU_RESULT_FILE``, the pod's termination message);
7. every rank ends with rank 0's result and exit code: a failure on rank 0 is re-raised
   there (exit 2 for a :class:`~zhufu.pipeline.errors.ZhufuError`, else 1) and the other
   ranks exit with the same code.

:func:`run_steps` runs a kind's sequence of stages in one process (a CurationJob: curate,
then train-rm on the pairs; a GRPORun: sft, then grpo on its model), each step through
:func:`run_stage`, and reports one result. Rank 0 records each finished stage's result on its
MLflow run (``zhufu.result``); when a pod of a Job is retried (or the operator re-created the
Job after a group failure), a section step that an earlier attempt finished (found by
``zhufu.job_uid``, the resource's uid) is not run again: its recorded
result feeds the next step, so a GRPORun killed during GRPO resumes GRPO from its checkpoint
on the same SFT model, and registers no second SFT version.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from zhufu.pipeline import distributed, tracking
from zhufu.pipeline.config import StageConfig
from zhufu.pipeline.errors import ConfigError, ZhufuError
from zhufu.pipeline.results import StageOutput, StageResult, emit
from zhufu.pipeline.stages import STAGES, Stage, Step, resolve, steps_of

#: Fields a section step takes from the kind's config unless its section sets them.
INHERITED = ("experiment", "output_dir")
#: Files Trainer.save_model writes that a published model does not need (a pickle).
_TRAINER_LEFTOVERS = ("training_args.bin",)


def exit_code(error: BaseException | None) -> int:
    """0 for success, 2 for something the user can fix, 1 for a bug."""
    if error is None:
        return 0
    return 2 if isinstance(error, ZhufuError) else 1


def run(stage: str, cfg: StageConfig, **options: Any) -> StageResult:
    """What ``zhufu <stage>`` runs: the stage, with the steps of the kind built on it."""
    return run_steps(steps_of(stage), cfg, options)


def run_steps(steps: Sequence[Step], cfg: StageConfig,
              options: Mapping[str, Any] | None = None) -> StageResult:
    """Run ``steps`` in order (see :class:`~zhufu.pipeline.stages.Step`); ``options`` go to
    the main step. The result file always holds the merged result of the steps so far."""
    done: dict[str, StageResult] = {}
    merged: StageResult | None = None
    for step in steps:
        step_cfg = cfg if step.section is None else getattr(cfg, step.section)
        if step_cfg is None or (step.unless and (options or {}).get(step.unless) is not None):
            continue
        if step.section is not None:
            step_cfg = step_cfg.model_copy(update={
                k: getattr(cfg, k) for k in INHERITED if k not in step_cfg.model_fields_set})
            earlier = tracking.finished_in_this_job(step.stage, step_cfg.experiment)
            if earlier is not None:  # a retried pod: the step's model is registered already
                done[step.stage] = StageResult(**earlier)
                print(f"zhufu: {step.stage} finished in an earlier attempt of this Job (MLflow "
                      f"run {done[step.stage].mlflow_run_id}); not run again", file=sys.stderr,
                      flush=True)
                continue
        if step.link:
            step_cfg = resolve(step.link)(step_cfg, done)
        report = partial(_merged_with, steps, dict(done), step.stage)
        done[step.stage] = run_stage(STAGES[step.stage], step_cfg,
                                     options if step.section is None else None, report)
        merged = merge(steps, done)
    if merged is None:
        raise ConfigError("nothing to run: every step's section is unset")
    return merged


def merge(steps: Sequence[Step], done: Mapping[str, StageResult]) -> StageResult:
    """One result for a kind: the main step's, plus the other steps' outputs and metrics
    under their prefix and every registered version (the main step's first; another step's
    version of the same model as ``NAME@<stage>``)."""
    main = next(s for s in steps if s.section is None)
    base = done.get(main.stage) or next(iter(done.values()))
    outputs, registered, metrics = dict(base.outputs), dict(base.registered), dict(base.metrics)
    for step in steps:
        result = done.get(step.stage)
        if result is None or result is base:
            continue
        outputs.update({f"{step.prefix}{k}": v for k, v in result.outputs.items()})
        metrics.update({f"{step.prefix}{k}": v for k, v in result.metrics.items()})
        registered.update({f"{k}@{step.stage}" if k in base.registered else k: v
                           for k, v in result.registered.items()})
    return replace(base, outputs=outputs, registered=registered, metrics=metrics)


def _merged_with(steps: Sequence[Step], done: Mapping[str, StageResult], stage: str,
                 result: StageResult) -> StageResult:
    return merge(steps, {**done, stage: result})


def run_stage(stage: Stage, cfg: StageConfig, options: Mapping[str, Any] | None = None,
              report: Callable[[StageResult], StageResult] = lambda r: r) -> StageResult:
    """Run one stage with every side effect in the order of the module docstring.

    Every rank of a launch calls this and gets rank 0's result back. ``report`` turns the
    stage's result into what the result file holds (a kind's merged result).
    """
    tracking.configure()
    if distributed.world_size() > 1:
        if not stage.distributed:
            raise ConfigError(f"{stage.name} runs in one process: start it without torchrun "
                              "(only sft, train-rm and grpo train on several ranks)")
        distributed.init()
    if stage.prepare:
        cfg = resolve(stage.prepare)(cfg)
    work = resolve(stage.run)
    with tracking.stage_run(stage.name, cfg) as mlflow_run:
        run_id = distributed.broadcast(mlflow_run.info.run_id if mlflow_run else None)
        out: StageOutput = work(cfg, **(options or {}))
        local = target = None
        if out.has_model:
            from zhufu.pipeline.models.paths import stage_output

            local, target = stage_output(cfg.output_dir, stage.name, run_id or "run")
        if out.trainer is not None:
            out.trainer.save_model(str(local))
            _report_rank(stage, out.trainer)
        failure: BaseException | None = None
        result: StageResult | None = None
        if distributed.is_main_process():
            try:
                result = _finish(stage, out, local, target, run_id, report)
            except Exception as e:  # noqa: BLE001 - re-raised below, after the others hear
                failure = e
        code, result = distributed.broadcast((exit_code(failure), result))
        if failure is not None:
            raise failure  # rank 0: the MLflow run ends FAILED, the CLI reports it
        if code:
            print(f"zhufu: rank {distributed.rank()}: rank 0 failed to finish {stage.name} "
                  f"(exit {code}); its output says why", file=sys.stderr, flush=True)
            raise SystemExit(code)
    assert result is not None
    return result


def _finish(stage: Stage, out: StageOutput, local: Path | None, target: str | None,
            run_id: str | None, report: Callable[[StageResult], StageResult]) -> StageResult:
    """Rank 0's part: complete and publish the model, register it, log, write the result."""
    from zhufu.pipeline.models.paths import publish

    outputs = dict(out.outputs)
    registered: dict[str, str] = {}
    tracking.log_metrics(out.metrics)
    if local is not None and target is not None:
        if out.trainer is not None:
            _merge_lora(out.trainer, local)
            for name in _TRAINER_LEFTOVERS:
                (local / name).unlink(missing_ok=True)
        if out.write_model is not None:
            local.mkdir(parents=True, exist_ok=True)
            out.write_model(local)
        publish(local, target)
        outputs["model"] = target
        if out.register is not None:
            reg = out.register
            tags = {**tracking.lineage_tags(stage.name), **reg.tags, "run_id": run_id or ""}
            registered[reg.name] = tracking.register_dir(
                local, reg.name, alias=reg.alias, tags=tags, artifact_path=reg.artifact_path)
    result = StageResult(stage=stage.name, mlflow_run_id=run_id, outputs=outputs,
                         registered=registered, metrics=out.summary_metrics())
    if run_id:  # what a retry of the same Job reuses instead of running the step again
        tracking.set_tags({tracking.RESULT_TAG: result.to_json()})
    emit(report(result))
    return result


def _merge_lora(trainer: Any, local: Path) -> None:
    """Replace saved LoRA adapters by the merged full model (rank 0, from the saved files).

    ``save_model`` wrote only the adapters (gathered from every rank under ZeRO-3); the base
    weights are read again from where training read them and the adapters merged into them.
    """
    trained = trainer.model
    if not hasattr(trained, "peft_config") or not (local / "adapter_config.json").is_file():
        return
    from peft import PeftModel
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    # Under ZeRO-3 a registered DeepSpeed config makes from_pretrained run zero.Init, whose
    # collectives would wait for the other ranks forever (docs/gpu.md): rank 0 loads alone.
    unset_hf_deepspeed_config()
    base_model = trained.get_base_model()
    base_path = trained.peft_config["default"].base_model_name_or_path
    dtype = next(base_model.parameters()).dtype
    base = type(base_model).from_pretrained(base_path, config=base_model.config, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(local)).merge_and_unload()
    for path in local.glob("adapter_*"):
        path.unlink()
    merged.save_pretrained(str(local))


def _report_rank(stage: Stage, trainer: Any) -> None:
    """One line per rank after training: optimizer steps and a checksum of the weights, so
    a launch shows every rank trained the same model (they must match under DDP)."""
    import torch

    with torch.no_grad():
        checksum = sum(float(p.detach().double().sum()) for p in trainer.model.parameters())
    print(f"zhufu: rank {distributed.rank()}/{distributed.world_size()}: {stage.name}: "
          f"{trainer.state.global_step} optimizer steps, weight checksum {checksum!r}",
          file=sys.stderr, flush=True)
