"""Every stage of Zhufu, declared once: the CLI, ``zhufu run`` and the operator read this table.

A :class:`Stage` names its config model (the pydantic model the command reads from YAML and
the CRD schema is generated from), its run function as ``"module:function"`` (imported only
when the stage runs, so this table imports no torch and the operator can read it), its
command, and whether it is a *distributed* torch stage: one that may run under ``torchrun``
or ``accelerate launch``, every rank training. The run function does the stage's work and
returns a :class:`~zhufu.pipeline.results.StageOutput`; the wrapper
(:mod:`zhufu.pipeline.stage_runner`) does everything else, the same way for every stage.
Adding a stage is one entry here plus its run function.

:data:`KINDS` says what each custom resource's Job runs: a sequence of :class:`Step`. The
kind's own config is the config of its main step (the one without a ``section``); another
step reads its config from a section of it and is skipped when that section is unset; the
steps run in the order written (a GRPORun's ``sft`` section runs before its GRPO). The
main stage's command runs the whole sequence, so a pod runs ``zhufu curate --config …`` and
``zhufu curate`` on a laptop does the same work.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zhufu.pipeline.config import (
    CurateConfig,
    GRPOConfig,
    JudgeTrainConfig,
    RewardModelConfig,
    SFTConfig,
    StageConfig,
)


def resolve(ref: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` reference names (imported now)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Option:
    """An extra flag of a stage's command (``--name``). With ``field`` it is a shortcut for
    ``--set FIELD=VALUE``; without, its value goes to the run function as a keyword."""

    name: str
    help: str
    default: bool | str | None = None
    field: str | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    config: type[StageConfig]
    run: str  # "module:function": (config, **options) -> StageOutput
    command: tuple[str, ...]  # `zhufu <command…>`
    distributed: bool  # rank-safe torch stage (torchrun / accelerate); else one process
    help: str
    options: tuple[Option, ...] = ()
    prepare: str | None = None  # "module:function": config -> effective config (presets)


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("sft", SFTConfig, "zhufu.pipeline.train.sft:sft", ("sft",), True,
          "Fine-tune the policy on Alpaca greetings (TRL SFTTrainer); register "
          "zhufu-policy@sft. Data defaults to the starter set."),
    Stage("curate", CurateConfig, "zhufu.pipeline.curation.stage:curate", ("curate",), False,
          "Retrieval → debate → judge → reflect per candidate; best/worst per query become "
          "pairs; with reward_model: set, then train the reward model on them (a CurationJob). "
          "Resumes by default: answers already in the output's journal are not asked again.",
          options=(Option("fresh", "Start over: move the journal of a previous run aside "
                          "instead of resuming.", False),
                   Option("progress", "Show a progress bar on stderr.", True),
                   Option("shard", "With shards: N > 1, curate only shard I (0 to N-1) into its "
                          "part, <output>/shard-I/ (a CurationJob's pod); without it, read every "
                          "finished part (curating the others here) and write the whole "
                          "result."))),
    Stage("train-rm", RewardModelConfig, "zhufu.pipeline.train.reward_model:train_rm",
          ("train-rm",), True,
          "Train a reward model on preference pairs (TRL RewardTrainer), report its held-out "
          "accuracy next to the longer-wins and n-gram baselines, register zhufu-reward."),
    Stage("judge-train", JudgeTrainConfig, "zhufu.pipeline.judge.stage:judge_train",
          ("judge", "train"), False,
          "Train the principle judge: generator vs detector rounds with a reflector; log every "
          "round to MLflow, keep the best round by dev accuracy, register zhufu-judge."),
    Stage("grpo", GRPOConfig, "zhufu.pipeline.train.grpo:grpo", ("grpo",), True,
          "Train the policy with judge / reward-model / rule rewards (TRL GRPOTrainer); "
          "register zhufu-policy@grpo.",
          options=(Option("resume", "auto: continue from the newest checkpoint; never: start "
                          "over.", None, field="resume"),),
          prepare="zhufu.pipeline.train.grpo_setup:apply_preset"),
)}


@dataclass(frozen=True)
class Step:
    """One stage of a kind's Job.

    ``section``: the field of the kind's config holding this step's config (``None``: the
    kind's config itself); an unset section skips the step, and the step inherits the kind's
    ``experiment`` unless it sets its own. ``link``: ``"module:function"`` ``(config,
    results so far by stage) -> config``, filling the step's inputs from earlier steps.
    ``prefix``: put before this step's output and metric names in the kind's result.
    ``unless``: an option of the main step that, when given, skips this step (a curation
    shard's pod curates its part only; the reward model trains on every part later).
    """

    stage: str
    section: str | None = None
    link: str | None = None
    prefix: str = ""
    unless: str | None = None


@dataclass(frozen=True)
class Kind:
    kind: str
    title: str
    job: str  # the Job is named <resource>-<job>: stored state in live clusters, keep it
    steps: tuple[Step, ...]

    @property
    def main(self) -> Stage:
        """The stage whose config is the kind's config (and whose command runs the Job)."""
        return STAGES[next(s.stage for s in self.steps if s.section is None)]

    @property
    def distributed(self) -> bool:
        """Whether the Job may run under torchrun: only if every step is rank-safe."""
        return all(STAGES[s.stage].distributed for s in self.steps)


KINDS: dict[str, Kind] = {k.kind: k for k in (
    Kind("CurationJob", "Multi-agent curation", "curate", (
        Step("curate"),
        Step("train-rm", section="reward_model", prefix="rm_", unless="shard",
             link="zhufu.pipeline.curation.stage:train_on_curated_pairs"))),
    Kind("JudgeTraining", "Adversarial judge training", "judge", (Step("judge-train"),)),
    Kind("GRPORun", "GRPO policy training", "grpo", (
        Step("sft", section="sft", prefix="sft_"),
        Step("grpo", link="zhufu.pipeline.train.grpo_setup:policy_from_sft"))),
)}


def steps_of(stage: str) -> tuple[Step, ...]:
    """What ``zhufu <stage>`` runs: the steps of the kind built on it, else the stage alone."""
    for kind in KINDS.values():
        if kind.main.name == stage:
            return kind.steps
    return (Step(stage),)
