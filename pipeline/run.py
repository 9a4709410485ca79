"""``zhufu run``: the whole paper in miniature, offline, on one CPU machine.

tiny models → SFT on the starter greetings → multi-agent curation of the SFT policy's
samples (offline analyser backend) → reward model on the curated pairs → adversarial judge
training → GRPO with the judge (or RM, or both) → SFT vs GRPO on held-out queries → registry.

With several rewards (``--reward rm,judge``) one GRPO run per reward starts from the same
SFT policy (same steps, prompts and seed), each registered under its own alias
(``zhufu-policy@grpo-rm``…), and every policy is compared with every other.

Every stage runs through the same wrapper as its own command (``zhufu sft``…), from the
stage table, with a small config; each logs its own MLflow run nested under one ``run``
parent. The console shows one line per stage; everything the stages print goes to
``run.log`` next to the report. Queries are split once (``starter_split``): stages train
on the training queries and the comparison uses only held-out ones.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from zhufu.pipeline.config import (
    CurateConfig,
    DebateConfig,
    GRPOConfig,
    JudgeTrainConfig,
    RewardModelConfig,
    RewardSpec,
    SFTConfig,
    StageConfig,
)
from zhufu.pipeline.errors import ConfigError
from zhufu.pipeline.results import StageResult
from zhufu.pipeline.stage_runner import run_stage
from zhufu.pipeline.stages import STAGES

RewardChoice = Literal["judge", "rm", "mix"]
#: GRPO rewards ``zhufu run`` knows: the trained judge, the reward model, their weighted sum.
REWARDS: tuple[RewardChoice, ...] = ("judge", "rm", "mix")


#: What ``--ablate`` can leave out: the curation's debate agents (for the reward model) and
#: the judge training's reflector; each ablated reward gets its own GRPO policy.
ABLATIONS: dict[str, tuple[str, RewardChoice]] = {"debate": ("-no-debate", "rm"),
                                                   "reflector": ("-no-reflector", "judge")}


def parse_choices(text: str, allowed: tuple[str, ...], flag: str) -> tuple[str, ...]:
    """``"rm,judge"`` → ``("rm", "judge")``: a comma list of ``allowed`` names, each once;
    anything else is a :class:`ConfigError` naming ``flag`` and the name.

    >>> parse_choices("rm, judge", REWARDS, "--reward")
    ('rm', 'judge')
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in allowed:
            raise ConfigError(f"{flag}: expected {', '.join(allowed[:-1])} or {allowed[-1]}, "
                              f"got {name!r}")
    if len(set(names)) < len(names):
        raise ConfigError(f"{flag}: each name at most once, got {text!r}")
    return tuple(names)


def parse_rewards(text: str) -> tuple[RewardChoice, ...]:
    """``--reward``: a comma list of :data:`REWARDS` (at least one)."""
    names = parse_choices(text, REWARDS, "--reward")
    if not names:
        raise ConfigError("--reward: name at least one of judge, rm, mix")
    return names  # type: ignore[return-value]


def parse_ablations(text: str, rewards: tuple[str, ...]) -> tuple[str, ...]:
    """``--ablate``: a comma list of :data:`ABLATIONS`; each needs the reward it ablates."""
    names = parse_choices(text, tuple(ABLATIONS), "--ablate")
    for name in names:
        reward = ABLATIONS[name][1]
        if not {reward, "mix"} & set(rewards):
            raise ConfigError(f"--ablate {name}: ablates the {reward} reward; add {reward} to "
                              f"--reward (e.g. --reward rm,judge)")
    return names


@dataclass
class RunSettings:
    """Knobs of the embedded default (sized for a 2-core CPU in ≤ 10 minutes)."""

    #: One GRPO policy per reward, all from the same SFT policy.
    rewards: tuple[RewardChoice, ...] = ("judge",)
    #: Rewards rebuilt without one component (:data:`ABLATIONS`), each with its GRPO policy.
    ablate: tuple[str, ...] = ()
    #: SFT data: the starter greetings of the training queries plus this many generated
    #: ones (zhufu.pipeline.data.compose); this many generated queries are held out. With
    #: 3,000 (293 steps) the policy named a wrong occasion in 36-38 % of its samples, on
    #: training and held-out queries alike: it had not yet learned to read the occasion
    #: from the query. 6,000 (575 steps) brought that to 9-11 %; with 5,000 (481 steps) it
    #: was 21 % and GRPO then lost to SFT (docs/policy.md).
    sft_generated: int = 6000
    held_out_generated: int = 45
    #: Share of SFT prompts wrapped like GRPO's and the comparison's (PROMPT_TEMPLATE).
    sft_prompt_prefixed: float = 0.5
    sft_epochs: float = 1.5
    sft_learning_rate: float = 5e-3
    sft_warmup_ratio: float = 0.08
    sft_batch_size: int = 16
    curate_samples: int = 2
    rm_epochs: float = 2.0
    judge_rounds: int = 3
    #: ``zhufu run``'s --grpo-steps default. 40 steps once cut the wrong-occasion share to
    #: 0.14 (0.26 with 30), but with the wider occasion and recipient knowledge four one-seed
    #: runs gave 40 steps no clear gain (win 0.48-0.51 vs 0.50-0.51, wrong occasion 0.33 vs
    #: 0.30) for a third more GRPO steps (docs/policy.md).
    grpo_steps: int = 30
    #: GRPO step size, KL weight and completions per step (8 prompts x 4 generations); the
    #: rest comes from the ``tiny`` preset. On the 575-step SFT policy, one seed each: 5e-4
    #: with KL 0.01 won 0.54 by the judge, 8 generations a prompt 0.48; 1e-3 with KL 0.04
    #: won 0.61 by the judge and 0.59 by the independent evaluator, readable 0.99, at the
    #: same cost; once the judge vetoed doubled clauses, 0.52 (LC 0.47) and 0.65 (LC 0.63).
    #: With doubled runs of two or three clauses vetoed too, two GRPO seeds each: 1e-3 won
    #: LC 0.58/0.59 by the judge and 0.57-0.59 by the independent evaluator but doubled the
    #: share of clauses found in none of the project's text (garbled splices, 7 % in SFT's
    #: samples → 16 %) and of vetoed samples (5 → 12-13 of 128); 5e-4 won LC 0.57-0.62 and
    #: 0.57-0.58 with 8-9 % such clauses and 7 vetoed (docs/policy.md). (On the old,
    #: 293-step policy 1e-3 with KL 0.001 had driven the readable share of the completions
    #: from 0.9 to 0.25-0.6.)
    grpo_learning_rate: float = 5e-4
    grpo_beta: float = 0.04
    grpo_batch_size: int = 32
    #: Longest GRPO completion (tokens). The comparison samples up to 64; with the preset's
    #: 40 a fifth of the completions were cut off and the policy learned to write 23 %
    #: shorter; with 64 it rambled (readable 0.91); 48 kept the length (docs/policy.md).
    grpo_max_completion_length: int = 48
    #: GRPO prompts: the starter training queries plus this many distinct generated training
    #: queries (never held out), so GRPO sees every occasion, not only the starter's.
    grpo_generated_queries: int = 200
    compare_prompts: int = 64
    compare_samples: int = 2
    #: The comparison's independent evaluator: an LLM judge spec (``openai:MODEL@URL``), or
    #: None for the offline scorer fitted on test-set splits no reward saw.
    evaluator: str | None = None
    seed: int = 0
    experiment: str = "zhufu-run"
    #: torch intra-op threads; 0 = torch's default; None = :func:`run_threads` picks at the
    #: start: two when the machine is idle, else one. On a busy machine a second OpenMP thread
    #: that spins waiting for a core made an SFT step 5-10x slower; on 2 idle cores two threads
    #: trained 87 SFT steps in 27.7 s against 34.4 s with one (docs/policy.md).
    torch_threads: int | None = None


#: 1-minute load average under which :func:`run_threads` counts the machine as idle.
IDLE_LOAD = 1.0


def run_threads(s: RunSettings, load: float | None = None, cores: int | None = None) -> int:
    """torch intra-op threads for the run: ``s.torch_threads`` when set, else two when the
    machine has two cores or more and its 1-minute load average is under :data:`IDLE_LOAD`
    (the tiny models gain nothing from more), else one.

    >>> run_threads(RunSettings(), load=0.3, cores=2), run_threads(RunSettings(), 1.6, 2)
    (2, 1)
    >>> run_threads(RunSettings(torch_threads=1), load=0.0, cores=16)
    1
    """
    if s.torch_threads is not None:
        return s.torch_threads
    load = os.getloadavg()[0] if load is None else load
    cores = (os.cpu_count() or 1) if cores is None else cores
    return 2 if cores >= 2 and load < IDLE_LOAD else 1


@dataclass
class RunState:
    """What the stages produced so far (URIs and figures), for the next stage and the report."""

    work: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Policy name in the report → model URI, in the order they were trained.
    policies: dict[str, str] = field(default_factory=dict)
    #: Ablation → what leaving the component out changed (evaluation.ablation).
    ablations: dict[str, dict[str, Any]] = field(default_factory=dict)


def sft_rows(s: RunSettings) -> tuple[list[Any], list[str], list[str]]:
    """(SFT rows, training queries, held-out queries) of the embedded run.

    SFT rows are the starter greetings of the training queries plus ``s.sft_generated``
    generated examples whose queries are not held out; a seeded ``s.sft_prompt_prefixed``
    share of them asks with the GRPO/comparison prompt (PROMPT_TEMPLATE) instead of the bare
    query, so the policy answers both. Held out: a quarter of the starter queries and
    ``s.held_out_generated`` generated ones.
    """
    import random

    from zhufu.pipeline.data import PROMPT_TEMPLATE, SFTExample, starter_sft, starter_split
    from zhufu.pipeline.data.compose import compose_split, composed_sft

    train, held_out = starter_split(held_out_fraction=0.25, seed=s.seed)
    composed, composed_held = compose_split(s.sft_generated + s.held_out_generated * 2,
                                            held_out=s.held_out_generated, seed=s.seed)
    rows = starter_sft(train) + composed_sft(composed[:s.sft_generated])
    rng = random.Random(s.seed)
    rows = [SFTExample(PROMPT_TEMPLATE.format(query=r.instruction), r.input, r.output)
            if rng.random() < s.sft_prompt_prefixed else r for r in rows]
    rng.shuffle(rows)
    return rows, train, held_out + composed_held


def grpo_queries(s: RunSettings, train: list[str]) -> list[str]:
    """GRPO's prompts: ``train`` plus ``s.grpo_generated_queries`` distinct queries of the
    generated SFT examples (seeded draw; held-out queries never among them)."""
    import random

    from zhufu.pipeline.data.compose import compose_split

    if s.grpo_generated_queries <= 0:
        return list(train)
    composed, _ = compose_split(s.sft_generated + s.held_out_generated * 2,
                                held_out=s.held_out_generated, seed=s.seed)
    pool = sorted(set(ex.query for ex in composed[:s.sft_generated]) - set(train))
    drawn = random.Random(s.seed + 2).sample(pool, min(s.grpo_generated_queries, len(pool)))
    return list(train) + drawn


def _prepare_data(state: RunState, s: RunSettings) -> None:
    from zhufu.pipeline.data import (
        starter_greetings,
        starter_labelled,
        write_labelled,
        write_queries,
        write_sft,
    )

    rows, train, held_out = sft_rows(s)
    keep = set(train)
    files = {"sft": "sft_train.json", "train_queries": "train_queries.txt",
             "grpo_queries": "grpo_queries.txt", "held_out_queries": "held_out_queries.txt",
             "dev_labels": "labelled_train.jsonl"}
    paths = {k: str(state.work / v) for k, v in files.items()}
    write_sft(rows, paths["sft"])
    write_queries(train, paths["train_queries"])
    write_queries(grpo_queries(s, train), paths["grpo_queries"])
    write_queries(held_out, paths["held_out_queries"])
    labelled = [ex for ex in starter_labelled() if ex.query in keep]
    write_labelled(labelled, paths["dev_labels"])
    state.outputs.update(paths)
    # curation reads the labelled rows of the training queries (candidates; their labels
    # only measure agreement) and the starter greetings (retrieval exemplars)
    state.metrics.update({"queries/train": len(train), "queries/held_out": len(held_out),
                          "sft/examples": len(rows), "data/curation_labelled": len(labelled),
                          "data/curation_exemplars": len(starter_greetings())})


def _sft(state: RunState, s: RunSettings) -> SFTConfig:
    return SFTConfig(experiment=s.experiment, data=state.outputs["sft"],
                     num_epochs=s.sft_epochs, learning_rate=s.sft_learning_rate,
                     warmup_ratio=s.sft_warmup_ratio, batch_size=s.sft_batch_size,
                     max_length=128, seed=s.seed)


def _curate(state: RunState, s: RunSettings, variant: str = "") -> CurateConfig:
    """Curation of the SFT policy's samples; ``-no-debate``: without the debate agents."""
    return CurateConfig(
        experiment=s.experiment, queries=state.outputs["train_queries"],
        policy=state.outputs["sft_policy"], samples_per_query=s.curate_samples,
        responses=state.outputs["dev_labels"], dev_labels=state.outputs["dev_labels"],
        output_dir=str(state.work / f"curation{variant}"), seed=s.seed,
        debate=DebateConfig(enabled=variant != "-no-debate"))


def _train_rm(state: RunState, s: RunSettings, variant: str = "") -> RewardModelConfig:
    return RewardModelConfig(experiment=s.experiment, data=state.outputs[f"pairs{variant}"],
                             num_epochs=s.rm_epochs, seed=s.seed, eval_fraction=0.2)


def _train_judge(state: RunState, s: RunSettings, variant: str = "") -> JudgeTrainConfig:
    """Judge training; ``-no-reflector``: without the reflector."""
    return JudgeTrainConfig(experiment=s.experiment, queries=state.outputs["train_queries"],
                            rounds=s.judge_rounds, seed=s.seed,
                            reflector=variant != "-no-reflector")


def _grpo(state: RunState, s: RunSettings, reward: RewardChoice, name: str,
          variant: str = "") -> GRPOConfig:
    """GRPO from the SFT policy with ``reward`` (built without the ablated component for a
    ``variant``); every arm gets the same steps, prompts and seed, its own checkpoints and,
    next to other arms, its own alias (``name``)."""
    judge, rm = state.outputs[f"judge{variant}"] if reward != "rm" else None, (
        state.outputs[f"reward_model{variant}"] if reward != "judge" else None)
    rewards = {"judge": [RewardSpec(name="judge", model=judge)],
               "rm": [RewardSpec(name="rm", model=rm)],
               "mix": [RewardSpec(name="judge", model=judge),
                       RewardSpec(name="rm", model=rm, weight=0.5)]
               }[reward]
    rewards += [RewardSpec(name="format", weight=0.5), RewardSpec(name="repetition", weight=0.25)]
    return GRPOConfig(
        experiment=s.experiment, policy=state.outputs["sft_policy"], preset="tiny",
        prompts=state.outputs.get("grpo_queries", state.outputs["train_queries"]),
        rewards=rewards, max_steps=s.grpo_steps,
        save_steps=max(1, s.grpo_steps // 2), checkpoint_dir=str(state.work / f"{name}-ckpt"),
        resume="never", seed=s.seed, learning_rate=s.grpo_learning_rate, beta=s.grpo_beta,
        batch_size=s.grpo_batch_size, max_completion_length=s.grpo_max_completion_length,
        alias=name)


def grpo_arms(s: RunSettings) -> list[tuple[str, RewardChoice, str]]:
    """(policy name, reward, variant) of every GRPO run: ``grpo`` alone, else
    ``grpo-<reward>``; then one per ablation (``grpo-rm-no-debate``…)."""
    if len(s.rewards) == 1 and not s.ablate:
        return [("grpo", s.rewards[0], "")]
    arms: list[tuple[str, RewardChoice, str]] = [(f"grpo-{r}", r, "") for r in s.rewards]
    return arms + [(f"grpo-{ABLATIONS[a][1]}{ABLATIONS[a][0]}", ABLATIONS[a][1],
                    ABLATIONS[a][0]) for a in s.ablate]


def _record(state: RunState, step: Step, result: StageResult) -> None:
    """Keep what later stages and the report need from a step's result."""
    def version(name: str) -> str:
        return f"models:/{name}/{result.registered[name]}"

    stage, v = step.stage, step.variant
    keep: tuple[str, ...] = ()
    if stage == "sft":
        state.outputs["sft_policy"] = "models:/zhufu-policy@sft"
        state.policies["sft"] = state.outputs["sft_policy"]
        keep = ("train_loss",)
    elif stage == "curate":
        state.outputs[f"pairs{v}"] = result.outputs["pairs"]
        state.outputs[f"trace{v}"] = result.outputs["trace"]
        keep = ("pairs", "agreement", "candidates", "calls", "calls_replayed",
                "tokens_prompt", "tokens_completion")
    elif stage == "train-rm":
        state.outputs[f"reward_model{v}"] = version("zhufu-reward")
        keep = tuple(k for k in result.metrics if "acc" in k)
    elif stage == "judge-train":
        state.outputs[f"judge{v}"] = version("zhufu-judge")
        keep = (*(k for k in result.metrics if "acc" in k or "fooled" in k),
                "train_rows", "dev_rows", "test_rows", "llm_calls", "llm_prompt_tokens",
                "llm_completion_tokens")
    elif stage == "grpo":
        state.outputs[f"{step.name}_policy"] = version("zhufu-policy")
        state.policies[step.name] = state.outputs[f"{step.name}_policy"]
        keep = ("steps", *(k for k in result.metrics
                           if k.startswith(("readable_share/", "wrong_occasion_share/"))))
    state.metrics.update({f"{step.prefix}/{k}": result.metrics.get(k, float("nan"))
                          for k in keep})


def reward_costs(state: RunState, v: str = "") -> dict[str, dict[str, Any]]:
    """What building each reward cost in this run (the paper's efficiency claim, measured):
    wall seconds, LLM calls and tokens, and the human-labelled examples used.

    ``rm``: curation (sampling the SFT policy, the agents) + reward-model training; the pairs
    are labelled by the agents, the human-labelled rows of the training queries are
    candidates whose labels only measure agreement, the starter greetings are retrieval
    exemplars. ``judge``: adversarial judge training on the labelled starter rows (train +
    dev; the test rows only measure it), starting from the shipped judge. ``v``: the rewards
    of an ablation variant (``-no-debate``…), named ``rm-no-debate``….
    """
    m, sec = state.metrics, state.seconds
    return {
        f"rm{v}": {"wall_seconds": sec.get(f"curate{v}", 0.0) + sec.get(f"train-rm{v}", 0.0),
               # answers replayed from an earlier run's journal count: the reward needed them
               "llm_calls": m.get(f"curate{v}/calls", 0.0)
               + m.get(f"curate{v}/calls_replayed", 0.0),
               "llm_tokens": m.get(f"curate{v}/tokens_prompt", 0.0)
               + m.get(f"curate{v}/tokens_completion", 0.0),
               "human_labelled": m.get("data/curation_labelled", 0)
               + m.get("data/curation_exemplars", 0),
               "human_labelled_detail": {
                   "curation candidates (labels measure agreement only)":
                       m.get("data/curation_labelled", 0),
                   "retrieval exemplars (good greetings)": m.get("data/curation_exemplars", 0),
                   "reward-model training (pairs labelled by the agents)": 0},
               "starts_from": "the tiny reward model (random weights)"},
        f"judge{v}": {"wall_seconds": sec.get(f"judge-train{v}", 0.0),
                  "llm_calls": m.get(f"judge{v}/llm_calls", 0.0),
                  "llm_tokens": m.get(f"judge{v}/llm_prompt_tokens", 0.0)
                  + m.get(f"judge{v}/llm_completion_tokens", 0.0),
                  "human_labelled": m.get(f"judge{v}/train_rows", 0.0)
                  + m.get(f"judge{v}/dev_rows", 0.0),
                  "human_labelled_detail": {
                      "judge training rows": m.get(f"judge{v}/train_rows", 0.0),
                      "dev rows (best-round pick)": m.get(f"judge{v}/dev_rows", 0.0)},
                  "starts_from": "the shipped judge (pipeline/judge/default_judge.json: trained "
                                 "on the starter set, the project's own test-set tune split and "
                                 "the paper's curated pairs, docs/judge.md)"},
    }


#: Which evaluator each reward is built from (``mix`` sums both).
REWARD_EVALUATORS: dict[str, tuple[str, ...]] = {"judge": ("judge",), "rm": ("rm",),
                                                 "mix": ("judge", "rm")}


def _compare(state: RunState, s: RunSettings) -> dict[str, Any]:
    """Every policy against every other, scored by the judge, the reward model and an
    evaluator neither was trained against (:mod:`~zhufu.pipeline.evaluation.evaluators`);
    each evaluator's entry names the policies trained against it."""
    from zhufu.pipeline.evaluation.compare import compare_policies
    from zhufu.pipeline.evaluation.evaluators import independent_evaluator

    report = compare_policies(
        state.policies, prompts=state.outputs["held_out_queries"],
        max_prompts=s.compare_prompts, judge=state.outputs.get("judge"),
        reward_model=state.outputs.get("reward_model"), bootstrap=500, seed=s.seed,
        samples_per_prompt=s.compare_samples,
        evaluators={"independent": independent_evaluator(s.evaluator, s.seed)})
    for name, info in report["evaluators"].items():
        info["trained_against"] = [arm for arm, reward, variant in grpo_arms(s)
                                   if not variant and name in REWARD_EVALUATORS[reward]]
    return report


@dataclass(frozen=True)
class Step:
    """One stage run of the loop: ``name`` labels its progress line, its metrics and what it
    leaves for later steps; ``config`` builds the stage's config from what earlier steps
    produced."""

    name: str
    stage: str  # a key of zhufu.pipeline.stages.STAGES
    config: Callable[[RunState, RunSettings], StageConfig]
    #: ``-no-debate`` / ``-no-reflector``: the step builds or uses an ablated reward.
    variant: str = ""
    #: An output of an earlier step this one needs; absent (the ablation changed nothing,
    #: :func:`_measure_ablation`), the step is skipped.
    requires: str | None = None

    @property
    def prefix(self) -> str:
        """Prefix of the step's metrics in the report (``rm/…``, ``grpo-judge/…``)."""
        for stage, prefix in (("train-rm", "rm"), ("judge-train", "judge")):
            if self.name.startswith(stage):
                return prefix + self.name.removeprefix(stage)
        return self.name


def plan(s: RunSettings) -> list[Step]:
    """The loop after the data is prepared: SFT, curation, reward model, judge, then one
    GRPO run per reward (:func:`grpo_arms`)."""
    steps = [Step("sft", "sft", _sft), Step("curate", "curate", _curate),
             Step("train-rm", "train-rm", _train_rm),
             Step("judge-train", "judge-train", _train_judge)]
    for ablation in s.ablate:
        v = ABLATIONS[ablation][0]
        if ablation == "debate":
            steps += [Step(f"curate{v}", "curate", partial(_curate, variant=v), v),
                      Step(f"train-rm{v}", "train-rm", partial(_train_rm, variant=v), v,
                           requires=f"pairs{v}")]
        else:
            steps.append(Step(f"judge-train{v}", "judge-train",
                              partial(_train_judge, variant=v), v))
    steps += [Step(name, "grpo", partial(_grpo, reward=reward, name=name, variant=v), v,
                   requires=f"{'judge' if reward == 'judge' else 'reward_model'}{v}"
                   if v else None)
              for name, reward, v in grpo_arms(s)]
    return steps


def _measure_ablation(state: RunState, step: Step) -> str:
    """After an ablated curation or judge training: what leaving the component out changed
    (:mod:`~zhufu.pipeline.evaluation.ablation`), kept in ``state.ablations``. When nothing
    changed the ablated reward's output is withdrawn, so its training and GRPO steps are
    skipped (their row could not differ from the full run's). Returns the progress figure."""
    from zhufu.pipeline.evaluation import ablation as A

    v = step.variant
    if step.stage == "curate":
        name, key = "debate", f"pairs{v}"
        changes = A.curation_changes({"trace": state.outputs["trace"],
                                      "pairs": state.outputs["pairs"]},
                                     {"trace": state.outputs[f"trace{v}"],
                                      "pairs": state.outputs[key]})
        what = (f"{changes['verdicts_changed']} of {changes['candidates']} verdicts, "
                f"{changes['scores_changed']} scores, {changes['pairs_changed']} pairs changed")
    else:
        name, key = "reflector", f"judge{v}"
        changes = A.judge_changes(state.outputs["judge"], state.outputs[key])
        what = (f"{changes['verdicts_changed']} verdicts, {changes['scores_changed']} scores "
                f"of {changes['texts']} test texts changed")
    same = A.unchanged(changes)
    if same:
        del state.outputs[key]
        changes["note"] = (f"without the {name} nothing the next step reads changed ({what})"
                           "; the ablated reward and its GRPO policy would repeat the full "
                           "run's, so they were not trained")
    state.ablations[name] = {**changes, "trained": not same}
    return what + ("; ablation row skipped: nothing to compare" if same else "")


def _figures(name: str, state: RunState, stage: str | None = None) -> str:
    """What a step's progress line shows after its time (``stage``: the step's stage when
    its name differs, as for ``grpo-rm``)."""
    m = state.metrics
    if stage == "grpo" and f"{name}/readable_share/first" in m:
        return (f"{m[f'{name}/steps']:.0f} steps, readable share of completions "
                f"{m[f'{name}/readable_share/first']:.0%} → "
                f"{m[f'{name}/readable_share/last']:.0%} "
                f"(lowest {m[f'{name}/readable_share/min']:.0%})" + (
                    f", wrong occasion {m[f'{name}/wrong_occasion_share/first']:.0%} → "
                    f"{m[f'{name}/wrong_occasion_share/last']:.0%}"
                    if f"{name}/wrong_occasion_share/first" in m else ""))
    if name == "data":
        return (f"{m['sft/examples']} SFT examples, {m['queries/train']} training / "
                f"{m['queries/held_out']} held-out queries")
    if name == "sft":
        return f"loss {m['sft/train_loss']:.3f}"
    if name == "curate":
        return f"{m.get('curate/pairs', 0):.0f} pairs"
    if name == "train-rm":
        return ", ".join(f"{k.removeprefix('rm/')} {v:.2f}" for k, v in m.items()
                         if k.startswith("rm/") and k.endswith("acc"))
    if name == "judge-train":
        return ", ".join(f"{k} {m[f'judge/{k}']:.3f}" for k in ("dev_acc_best", "test_acc")
                         if f"judge/{k}" in m)
    return ""


def run_all(settings: RunSettings | None = None, report_path: str | None = None) -> dict[str, Any]:
    """Run every stage (see module docstring); return and write the report.

    The console gets one line per stage (:class:`~zhufu.pipeline.progress.StageProgress`);
    what the stages print (TRL's per-step dictionaries, progress bars, warnings) goes to
    ``<data dir>/run/run.log``, and their metrics to MLflow.
    """
    import mlflow

    from zhufu.pipeline import tracking
    from zhufu.pipeline.evaluation.compare import plot_comparison
    from zhufu.pipeline.models import data_dir, tiny_policy_path, tiny_reward_model_path
    from zhufu.pipeline.progress import StageProgress
    from zhufu.pipeline.run_summary import pairwise_metrics, print_summary

    s = settings or RunSettings()
    started = time.perf_counter()
    load_before = os.getloadavg()
    threads = run_threads(s, load_before[0])
    if threads:
        import torch

        torch.set_num_threads(threads)
    tracking.configure()
    state = RunState(work=data_dir() / "run")
    state.work.mkdir(parents=True, exist_ok=True)
    steps = plan(s)
    progress = StageProgress(state.work / "run.log", total=len(steps) + 3)
    with progress.stage("models", state.seconds):
        tiny_policy_path()
        tiny_reward_model_path()
    with mlflow.start_run(experiment_id=tracking.ensure_experiment(s.experiment),
                          run_name="zhufu-run", tags={"zhufu.stage": "run"}):
        mlflow.log_params({"reward": ",".join(s.rewards), "ablate": ",".join(s.ablate),
                           "grpo_steps": s.grpo_steps,
                           "sft_epochs": s.sft_epochs, "judge_rounds": s.judge_rounds})
        with progress.stage("data", state.seconds) as line:
            _prepare_data(state, s)
            line.done(_figures("data", state))
        for step in steps:
            if step.requires and step.requires not in state.outputs:
                progress.note(f"{step.name}: skipped (the ablation changed nothing)")
                continue
            with progress.stage(step.name, state.seconds) as line:
                _record(state, step, run_stage(STAGES[step.stage], step.config(state, s)))
                line.done(_measure_ablation(state, step)
                          if step.variant and step.stage in ("curate", "judge-train")
                          else _figures(step.name, state, step.stage))
            warnings = state.metrics.get(f"{step.prefix}/readable_share/warnings", 0)
            if warnings:
                progress.note(f"warning: the readable share of {step.name}'s completions fell "
                              f"{warnings:.0f} time(s) during training; see {progress.log}")
        with progress.stage("compare", state.seconds) as line:
            comparison = _compare(state, s)
            line.done(f"{comparison['n_prompts']} held-out queries, " + "; ".join(
                f"{p['b'].upper()} win rate {p['win_rate']:.2f}, length-controlled "
                f"{p['lc_win_rate']:.2f}" for p in comparison["pairwise"] if p["a"] == "sft"))
        costs = reward_costs(state)
        for v in (ABLATIONS[a][0] for a in s.ablate):
            costs.update({k: c for k, c in reward_costs(state, v).items()
                          if c["wall_seconds"]})
        for arm, reward, v in grpo_arms(s):
            if arm in state.seconds:
                costs.setdefault(reward + v, {"built_from": list(REWARD_EVALUATORS[reward])})
                costs[reward + v]["grpo_seconds"] = state.seconds[arm]
        report = {**comparison, "reward_costs": costs, "ablations": state.ablations,
                  "stages": state.metrics, "stage_seconds": state.seconds,
                  "outputs": state.outputs, "wall_seconds": time.perf_counter() - started,
                  "load_average": {"start": list(load_before), "end": list(os.getloadavg())},
                  "torch_threads": threads,
                  "log": str(progress.log)}
        out = Path(report_path) if report_path else state.work / "report.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        png = out.with_suffix(".png")
        plot_comparison(comparison, str(png))
        tracking.log_metrics({"wall_seconds": report["wall_seconds"],
                              **pairwise_metrics(comparison),
                              **{f"readable_share/{k}": v["readable_share"]
                                 for k, v in comparison["policies"].items()}})
        mlflow.log_artifact(str(out))
        mlflow.log_artifact(str(progress.log))
        tracking.log_png(png)
    print_summary(report)
    print(f"report: {out}  plot: {png}  log: {progress.log}  (browse the runs with `zhufu ui`)")
    return report
