"""Data and bookkeeping of judge training: the labelled splits, cached features, the round
log, evaluation of a judge on a split, and the text form of the detector's standard.

The labelled pool is the ``labelled`` file (JSONL, or ShareGPT pairs) — the starter set when
unset — plus the ``pairs`` file converted to rows (chosen = 1, rejected = 0). Rows are
grouped (both sides of a pair share a group) and the groups are split, seeded, into train /
dev / test, so no greeting of a test pair is ever seen in training.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from zhufu.pipeline.analysis.features import Features, extract_features
from zhufu.pipeline.analysis.text import char_length
from zhufu.pipeline.analysis.weights import JudgeWeights
from zhufu.pipeline.config import JudgeTrainConfig
from zhufu.pipeline.data.rows import LabelledExample, PreferencePair
from zhufu.pipeline.errors import ConfigError
from zhufu.pipeline.evaluation.metrics import BANDS, band_of
from zhufu.pipeline.judge.optimiser import Example, Scorer
from zhufu.pipeline.judge.reflector import Reflection
from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, LLMError
from zhufu.pipeline.llm.parsing import parse_json_output


@dataclass
class RoundLog:
    """What one round did: dev accuracy (overall and per length band), fooled rate, rule diff."""

    round: int
    dev: dict[str, float]
    fooled_rate: float
    rules: list[str]
    added: list[str]
    removed: list[str]
    notes: list[str] = field(default_factory=list)
    generator: list[str] = field(default_factory=list)
    generator_added: list[str] = field(default_factory=list)
    misjudged: int = 0
    reflections: int = 0
    adversarial: int = 0
    n_rules: int = 0  # the detector's rules (phrase rules offline, text rules with an LLM)

    def metrics(self) -> dict[str, float]:
        out = {f"dev_{k}": v for k, v in self.dev.items()}
        out.update({"fooled_rate": self.fooled_rate, "n_rules": float(self.n_rules),
                    "misjudged": float(self.misjudged),
                    "reflections": float(self.reflections)})
        return {k: v for k, v in out.items() if v == v}  # drop NaN


class TrainingData:
    """Train / dev / test examples with their features, computed once and cached."""

    def __init__(self, train: list[LabelledExample], dev: list[LabelledExample],
                 test: list[LabelledExample], with_features: bool = True) -> None:
        self.with_features = with_features
        #: Queries of the adversarial batches (None = the training greetings' own queries).
        self.queries: list[str] | None = None
        #: (query, response) keys phrase rules may be mined from (None = every row).
        self.mineable: set[tuple[str, str]] | None = None
        #: (query, response) keys of the project's own rows (weighted by ``own_weight``).
        self.own: set[tuple[str, str]] = set()
        self._cache: dict[tuple[str, str], Features] = {}
        self.train_rows, self.dev_rows, self.test_rows = train, dev, test
        self.train = [self.example(r) for r in train]
        self.dev = [self.example(r) for r in dev]
        self.test = [self.example(r) for r in test]

    def features(self, query: str, response: str) -> Features:
        key = (query, response)
        if key not in self._cache:
            self._cache[key] = (extract_features(query, response) if self.with_features else
                                Features(intent=None, response=response,  # type: ignore[arg-type]
                                         length=char_length(response)))
        return self._cache[key]

    def example(self, row: LabelledExample) -> Example:
        return Example(row.query, row.response, row.label, self.features(row.query,
                                                                         row.response))


def _rows_from(uri: str) -> list[list[LabelledExample]]:
    from zhufu.pipeline.data import detect_format, load_labelled, load_pairs

    if detect_format(uri) == "sharegpt-pairs":
        return [_pair_rows(p) for p in load_pairs(uri)]
    return [[r] for r in load_labelled(uri)]


def _pair_rows(p: PreferencePair) -> list[LabelledExample]:
    return [LabelledExample(p.query, p.chosen, 1), LabelledExample(p.query, p.rejected, 0)]


def split_groups(groups: list[list[LabelledExample]], dev_fraction: float,
                 test_fraction: float, seed: int
                 ) -> tuple[list[LabelledExample], list[LabelledExample],
                            list[LabelledExample]]:
    """Seeded split of row groups into (train, dev, test); each side keeps ≥ 1 group when
    the pool allows."""
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    n = len(order)
    n_test = round(n * test_fraction) if test_fraction > 0 else 0
    n_dev = max(1, round(n * dev_fraction))
    if n - n_test - n_dev < 1:
        raise ConfigError(f"labelled pool of {n} groups is too small for dev_fraction "
                          f"{dev_fraction} + test_fraction {test_fraction}")
    test = [r for i in order[:n_test] for r in groups[i]]
    dev = [r for i in order[n_test:n_test + n_dev] for r in groups[i]]
    train = [r for i in order[n_test + n_dev:] for r in groups[i]]
    return train, dev, test


def tune_set_rows() -> list[LabelledExample]:
    """The project's own training text beyond the labelled set: the starter good greetings
    (1), both sides of every principle pair of the tune split (good = 1, bad = 0) and every
    degenerate answer of the tune split (0)."""
    from zhufu.pipeline.data import starter_greetings
    from zhufu.pipeline.judge.testsets import degenerate_items, principle_pairs

    rows = list(starter_greetings())
    rows += [LabelledExample(p.query, t, y) for p in principle_pairs(("tune",))
             for t, y in ((p.good, 1), (p.bad, 0))]
    rows += [LabelledExample(d.query, d.response, 0) for d in degenerate_items(("tune",))]
    return rows


def load_training_data(cfg: JudgeTrainConfig) -> TrainingData:
    """The splits ``cfg`` describes, with features (offline backend) computed once.

    The tune split of the judge's own test sets (``tune_sets``) joins the train split only;
    ``mine_from: labelled`` records which rows phrase rules may come from."""
    from zhufu.pipeline.data import load_labelled

    groups = _rows_from(cfg.labelled) if cfg.labelled else [[r] for r in load_labelled(None)]
    own = {(r.query, r.response) for g in groups for r in g}
    if cfg.pairs:
        groups += _rows_from(cfg.pairs)
    if cfg.dev:
        dev = load_labelled(cfg.dev)
        order = list(range(len(groups)))
        random.Random(cfg.seed).shuffle(order)
        n_test = round(len(groups) * cfg.test_fraction)
        test = [r for i in order[:n_test] for r in groups[i]]
        train = [r for i in order[n_test:] for r in groups[i]]
    else:
        train, dev, test = split_groups(groups, cfg.dev_fraction, cfg.test_fraction, cfg.seed)
    if cfg.tune_sets:
        extra = tune_set_rows()
        train = train + extra
        own |= {(r.query, r.response) for r in extra}
    data = TrainingData(train, dev, test, with_features=cfg.llm.backend == "offline")
    data.own = own
    if cfg.mine_from == "labelled":
        data.mineable = own
    if cfg.queries:
        from zhufu.pipeline.data import load_queries

        data.queries = load_queries(cfg.queries, unique=True)
    return data


def evaluate_split(weights: JudgeWeights, examples: list[Example]) -> dict[str, float]:
    """Accuracy overall (``acc``) and per length band (``acc_30_50`` …) of the feature judge."""
    if not examples:
        return {"acc": float("nan")}
    pred = Scorer(weights, examples).predict()
    return accuracy_report([e.label for e in examples], list(pred),
                           [e.features.length for e in examples])


def accuracy_report(labels: list[int], pred: list[int], lengths: list[int]
                    ) -> dict[str, float]:
    out = {"acc": sum(int(a == b) for a, b in zip(labels, pred, strict=True)) / len(labels)}
    for name, _, _ in BANDS:
        idx = [i for i, n in enumerate(lengths) if band_of(n) == name]
        if idx:
            key = "acc_" + name.replace("-", "_").replace("<", "lt").replace(">=", "ge")
            out[key] = sum(int(labels[i] == pred[i]) for i in idx) / len(idx)
    return out


def render_rules(weights: JudgeWeights, max_rules: int) -> list[str]:
    """The detector's standard as text (what an LLM judge would read), one line per rule."""
    lines = []
    for r in weights.rules[:max_rules]:
        words = "、".join(r.pattern.replace("\\", "").split("|")[:6])
        effect = "加分" if r.weight > 0 else "扣分"
        lines.append(f"含有“{words}”等短语时{r.dimension}{effect}{abs(r.weight):.2f}"
                     f"（{r.note}）")
    return lines


OPTIMISE_PROMPT = """You maintain the judging standard of a reviewer of Chinese greetings \
(祝福语). Below are the current rules and the reviewer's recent mistakes with explanations. \
Rewrite the rule list so these mistakes would not happen again: at most {max_rules} short, \
concrete rules. Answer with ONE JSON object only: {{"rules": ["...", "..."]}}"""


async def rewrite_rules_llm(backend: ChatBackend, rules: list[str],
                            reflections: list[Reflection], max_rules: int,
                            failures: dict[str, int]) -> list[str]:
    """The LLM optimiser: a new capped rule list, or the old one (counted) on garbage."""
    data = json.dumps({"rules": rules, "mistakes": [
        {"greeting": r.response[:200], "correct": "good" if r.label else "bad",
         "explanation": r.explanation, "proposed_rule": r.rule} for r in reflections[:40]]},
        ensure_ascii=False)
    request = ChatRequest(
        messages=[{"role": "system", "content": OPTIMISE_PROMPT.format(max_rules=max_rules)},
                  {"role": "user", "content": data}],
        task={"kind": "judge_optimise", "rules": rules,
              "proposed": [r.rule for r in reflections if r.rule], "max_rules": max_rules},
        temperature=0.2, json_output=True)
    reply = (await backend.chat_many([request]))[0]
    obj: Any = None if isinstance(reply, LLMError) else parse_json_output(reply.text)
    new = obj.get("rules") if obj else None
    if not isinstance(new, list) or not all(isinstance(r, str) for r in new) or not new:
        failures["optimiser"] = failures.get("optimiser", 0) + 1
        return rules
    return [r.strip()[:200] for r in new if r.strip()][:max_rules]


def _register_offline() -> None:
    from zhufu.pipeline.llm.offline import register_task

    @register_task("judge_optimise")
    def optimise_task(task: dict) -> dict:
        """Offline answer: keep the current rules, append proposed ones, cap the list."""
        rules = [str(r) for r in task.get("rules", [])]
        for r in task.get("proposed", []):
            if str(r) not in rules:
                rules.append(str(r))
        return {"rules": rules[-int(task.get("max_rules", 10)):]}


_register_offline()
