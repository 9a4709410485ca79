"""The judge test suite: any scorer against the project's degenerate set and principle pairs.

What a user runs (``zhufu eval judge --judge SPEC``) before optimising a policy against a
judge or reward model, so that its holes show up here instead of in the policy:

- **degenerate set** (:func:`~zhufu.pipeline.judge.testsets.degenerate_items`): the share
  labelled bad, per kind, and the AUC of good greetings against these items (P(a random
  good greeting scores above a random degenerate answer)). The good greetings are the
  project's own (starter greetings, labelled good examples, the good side of the
  hand-written principle pairs), plus any given by the caller (e.g. the chosen side of the
  paper's pairs, read from its path at evaluation time);
- **principle pairs** (:func:`~zhufu.pipeline.judge.testsets.principle_pairs`): per split
  and kind, pair accuracy (the good greeting scores higher; a tie counts ½) and label
  accuracy (both greetings of a pair labelled right, counted per greeting).

A *scorer* is any function ``(pairs of (query, text)) -> (scores, labels or None)``: a judge
(:func:`judge_scorer`) gives both; a reward model (:func:`rm_scorer`) gives scores only, so
its label figures are left out. :func:`guarded_scorer` turns a reward model's scorer into
what GRPO's ``rm`` reward optimises (its degeneracy guard, :mod:`zhufu.pipeline.rewards.guard`),
so both can be reported side by side. :func:`preference_report` adds pair accuracy on
held-out preference pairs (the paper's), overall and on near-same-length pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import median
from typing import Any

from zhufu.pipeline import aio
from zhufu.pipeline.evaluation import metrics as M
from zhufu.pipeline.judge.testsets import (
    SPLITS,
    DegenerateItem,
    PrinciplePair,
    degenerate_items,
    principle_pairs,
)

Texts = Sequence[tuple[str, str]]
Scorer = Callable[[Texts], tuple[list[float], list[int] | None]]


def judge_scorer(spec: str | None = None, progress: bool = False) -> Scorer:
    """A scorer from a judge spec (see :func:`zhufu.pipeline.judge.load_judge`): the overall
    1–5 score and the good/bad verdict. A failed judgement counts as scored 3.0, labelled bad
    (the judge's neutral result); ``failures`` on the returned function counts them. All
    texts of one call are judged in one event loop, and the judge is closed after it."""
    from zhufu.pipeline.judge import load_judge

    judge = load_judge(spec)

    def score(texts: Texts) -> tuple[list[float], list[int] | None]:
        async def run() -> list[Any]:
            try:
                return await judge.score_many(list(texts), progress=progress)
            finally:
                await judge.aclose()

        results = aio.run(run())
        score.failures = judge.failures  # type: ignore[attr-defined]
        return [r.score for r in results], [r.label for r in results]

    score.failures = 0  # type: ignore[attr-defined]
    return score


def rm_scorer(spec: str) -> Scorer:
    """A scorer from a reward model (path or ``models:/…``): scores only, no labels."""
    from zhufu.pipeline.rewards.rm import score_texts

    def score(texts: Texts) -> tuple[list[float], list[int] | None]:
        return [float(s) for s in score_texts(spec, [q for q, _ in texts],
                                              [t for _, t in texts])], None

    return score


def guarded_scorer(scorer: Scorer, model_floor: float) -> Scorer:
    """A reward model's ``scorer`` with the ``rm`` reward's degeneracy guard applied to each
    call's scores (:func:`zhufu.pipeline.rewards.guard.guard`); ``vetoed`` on the returned
    function counts the texts it vetoed."""
    from zhufu.pipeline.rewards.guard import guard

    def score(texts: Texts) -> tuple[list[float], list[int] | None]:
        raw, _ = scorer(texts)
        out = guard([q for q, _ in texts], [t for _, t in texts], raw, model_floor)
        score.vetoed += out.n_vetoed  # type: ignore[attr-defined]
        return out.scores, None

    score.vetoed = 0  # type: ignore[attr-defined]
    return score


def cached(scorer: Scorer) -> Scorer:
    """``scorer`` that scores each distinct text once over all its calls (scores only: for
    a reward model, whose raw and guarded reports then share one scoring pass)."""
    table: dict[tuple[str, str], float] = {}

    def score(texts: Texts) -> tuple[list[float], list[int] | None]:
        todo = [t for t in dict.fromkeys(texts) if t not in table]
        if todo:
            table.update(zip(todo, scorer(todo)[0], strict=True))
        return [table[t] for t in texts], None

    return score


def guard_floor(scorer: Scorer) -> float:
    """The degeneracy guard's model floor for a reward model's ``scorer``: its lowest score
    on the project's good greetings minus the guard's margin
    (:func:`zhufu.pipeline.rewards.guard.reference_floor`)."""
    from zhufu.pipeline.rewards.guard import reference_floor

    return reference_floor(scorer(project_goods())[0])


def scored_once(scorer: Scorer, texts: Texts) -> Scorer:
    """Score every distinct text of ``texts`` with one call of ``scorer``; the returned scorer
    answers from that table (so the reports below can ask for their texts separately)."""
    unique = list(dict.fromkeys(texts))
    scores, labels = scorer(unique)
    table = {t: (s, None if labels is None else labels[i])
             for i, (t, s) in enumerate(zip(unique, scores, strict=True))}

    def lookup(asked: Texts) -> tuple[list[float], list[int] | None]:
        got = [table[t] for t in asked]
        return [s for s, _ in got], None if labels is None else [int(x) for _, x in got]

    lookup.failures = getattr(scorer, "failures", 0)  # type: ignore[attr-defined]
    return lookup


def project_goods() -> list[tuple[str, str]]:
    """The project's own good greetings: starter greetings, labelled good examples and the
    good side of the hand-written principle pairs (deduplicated, in that order)."""
    from zhufu.pipeline.data import starter_greetings, starter_labelled

    rows = [(g.query, g.response) for g in (*starter_greetings(), *starter_labelled())
            if g.label == 1]
    rows += [(p.query, p.good) for p in principle_pairs() if p.source == "hand"]
    return list(dict.fromkeys(rows))


def chosen_of(uri: str) -> list[tuple[str, str]]:
    """(query, chosen greeting) of every pair in a ShareGPT preference file (path or s3://)."""
    from zhufu.pipeline.data import load_pairs

    return [(p.query, p.chosen) for p in load_pairs(uri)]


def _share(labels: Sequence[int], value: int) -> float:
    return sum(int(x == value) for x in labels) / len(labels) if labels else float("nan")


def degenerate_report(scorer: Scorer, goods: Sequence[tuple[str, str]],
                      items: Sequence[DegenerateItem] | None = None) -> dict[str, Any]:
    """Share labelled bad and AUC of ``goods`` against the degenerate items, overall, per
    split and per kind; the highest-scoring degenerate items are listed for inspection."""
    items = list(degenerate_items() if items is None else items)
    texts = [(d.query, d.response) for d in items] + list(goods)
    scores, labels = scorer(texts)
    deg_s, good_s = scores[:len(items)], scores[len(items):]
    deg_l = labels[:len(items)] if labels is not None else None

    def block(idx: list[int]) -> dict[str, Any]:
        s = [deg_s[i] for i in idx]
        out: dict[str, Any] = {"n": len(idx), "max_score": max(s) if s else float("nan"),
                               "auc": M.auc(good_s + s, [1] * len(good_s) + [0] * len(s))}
        if deg_l is not None:
            out["bad_share"] = _share([deg_l[i] for i in idx], 0)
        return out

    report: dict[str, Any] = {"n_good": len(goods), **block(list(range(len(items))))}
    report["good_median"] = median(good_s) if good_s else float("nan")
    report["good_min"] = min(good_s) if good_s else float("nan")
    if labels is not None:
        report["good_labelled_good"] = _share(labels[len(items):], 1)
    report["by_split"] = {s: block([i for i, d in enumerate(items) if d.split == s])
                          for s in SPLITS if any(d.split == s for d in items)}
    kinds = list(dict.fromkeys(d.kind for d in items))
    report["by_kind"] = {k: block([i for i, d in enumerate(items) if d.kind == k])
                         for k in kinds}
    top = sorted(range(len(items)), key=lambda i: -deg_s[i])[:5]
    report["highest"] = [{"id": items[i].id, "text": items[i].response[:40],
                          "score": deg_s[i]} for i in top]
    return report


def pairs_report(scorer: Scorer, pairs: Sequence[PrinciplePair] | None = None
                 ) -> dict[str, Any]:
    """Per split, overall and per kind: pair accuracy and (with labels) label accuracy."""
    pairs = list(principle_pairs() if pairs is None else pairs)
    texts = [(p.query, p.good) for p in pairs] + [(p.query, p.bad) for p in pairs]
    scores, labels = scorer(texts)
    n = len(pairs)

    def block(idx: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(idx), "pair_acc": M.pair_accuracy(
            [scores[i] for i in idx], [scores[n + i] for i in idx])}
        if labels is not None:
            right = [labels[i] == 1 for i in idx] + [labels[n + i] == 0 for i in idx]
            out["label_acc"] = sum(right) / len(right) if right else float("nan")
            out["good_as_good"] = _share([labels[i] for i in idx], 1)
            out["bad_as_bad"] = _share([labels[n + i] for i in idx], 0)
        return out

    report: dict[str, Any] = {}
    for split in SPLITS:
        idx = [i for i, p in enumerate(pairs) if p.split == split]
        if not idx:
            continue
        kinds = list(dict.fromkeys(pairs[i].kind for i in idx))
        report[split] = {**block(idx), "by_kind": {
            k: block([i for i in idx if pairs[i].kind == k]) for k in kinds}}
    report["misranked"] = [{"id": p.id, "good": scores[i], "bad": scores[n + i]}
                           for i, p in enumerate(pairs) if scores[i] <= scores[n + i]][:20]
    return report


def preference_report(scorer: Scorer, pairs: Sequence[Any]) -> dict[str, Any]:
    """Pair accuracy (the chosen text scored higher; a tie counts ½) on preference pairs
    (``.query``, ``.chosen``, ``.rejected``): ``acc`` overall and ``acc_near`` on
    near-same-length pairs, with their counts, and how many chosen and rejected texts the
    degeneracy guard would veto (``vetoed_chosen``, ``vetoed_rejected``)."""
    from zhufu.pipeline.rewards.guard import vetoes

    if not pairs:
        raise ValueError("preference_report: no pairs")
    n = len(pairs)
    texts = [(p.query, p.chosen) for p in pairs] + [(p.query, p.rejected) for p in pairs]
    scores, _ = scorer(texts)
    chosen, rejected = scores[:n], scores[n:]
    near = [i for i, m in enumerate(M.near_same_length(
        [len(p.chosen) for p in pairs], [len(p.rejected) for p in pairs])) if m]
    vetoed = vetoes([q for q, _ in texts], [t for _, t in texts])
    return {"n": n, "acc": M.pair_accuracy(chosen, rejected), "n_near": len(near),
            "acc_near": M.pair_accuracy([chosen[i] for i in near], [rejected[i] for i in near]),
            "vetoed_chosen": sum(vetoed[:n]), "vetoed_rejected": sum(vetoed[n:])}


def held_out_pairs(uri: str, eval_fraction: float = 0.2, seed: int = 0) -> list[Any]:
    """The preference pairs ``zhufu train-rm`` holds out of the file at ``uri`` with the same
    ``evalFraction`` and ``seed`` (the pairs its reported accuracy is measured on)."""
    from zhufu.pipeline.data import load_pairs
    from zhufu.pipeline.train.reward_model import split_pairs

    return split_pairs(load_pairs(uri), eval_fraction, seed)[1]


def run_suite(scorer: Scorer, extra_goods: Sequence[tuple[str, str]] = (),
              splits: tuple[str, ...] = SPLITS, held_out: Sequence[Any] = ()) -> dict[str, Any]:
    """Both reports on the given splits, every text scored in one call (the degenerate AUC
    counts ``extra_goods`` among the good greetings); with ``held_out`` preference pairs,
    also their :func:`preference_report` (``held_out_pairs``)."""
    goods = list(dict.fromkeys([*project_goods(), *extra_goods]))
    items, pairs = degenerate_items(splits), principle_pairs(splits)
    texts = [(d.query, d.response) for d in items] + goods
    texts += [(p.query, t) for p in pairs for t in (p.good, p.bad)]
    texts += [(p.query, t) for p in held_out for t in (p.chosen, p.rejected)]
    once = scored_once(scorer, texts)
    report = {"degenerate": degenerate_report(once, goods, items),
              "pairs": pairs_report(once, pairs)}
    if held_out:
        report["held_out_pairs"] = preference_report(once, held_out)
    return {**report, "failures": getattr(once, "failures", 0)}


def _f(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def format_report(report: dict[str, Any]) -> str:
    """The suite's figures as plain-text tables (one line per kind)."""
    deg, pairs = report["degenerate"], report["pairs"]
    lines = []
    if "held_out_pairs" in report:
        h = report["held_out_pairs"]
        lines.append(f"held-out preference pairs: n={h['n']}  acc={_f(h['acc'])}  "
                     f"near-same-length n={h['n_near']} acc={_f(h['acc_near'])}  "
                     f"(guard would veto {h['vetoed_chosen']} chosen, {h['vetoed_rejected']} "
                     "rejected)")
    lines += [f"degenerate set: n={deg['n']}  bad_share={_f(deg.get('bad_share', '-'))}  "
             f"AUC vs {deg['n_good']} good greetings={_f(deg['auc'])}  "
             f"(good median score {_f(deg['good_median'])}, degenerate max "
             f"{_f(deg['max_score'])})"]
    lines.append(f"  {'kind/split':<18}{'n':>5}{'bad_share':>11}{'auc':>8}{'max':>8}")
    for name, row in [*deg["by_split"].items(), *deg["by_kind"].items()]:
        lines.append(f"  {name:<18}{row['n']:>5}{_f(row.get('bad_share', '-')):>11}"
                     f"{_f(row['auc']):>8}{_f(row['max_score']):>8}")
    lines.append("principle pairs (pair_acc: good scored higher; label_acc: both labelled "
                 "right):")
    lines.append(f"  {'split/kind':<22}{'n':>5}{'pair_acc':>10}{'label_acc':>11}"
                 f"{'good_ok':>9}{'bad_ok':>8}")
    for split in SPLITS:
        if split not in pairs:
            continue
        rows = [(split, pairs[split])] + [(f"  {k}", v)
                                          for k, v in pairs[split]["by_kind"].items()]
        for name, row in rows:
            lines.append(f"  {name:<22}{row['n']:>5}{_f(row['pair_acc']):>10}"
                         f"{_f(row.get('label_acc', '-')):>11}"
                         f"{_f(row.get('good_as_good', '-')):>9}"
                         f"{_f(row.get('bad_as_bad', '-')):>8}")
    return "\n".join(lines)


__all__ = ["Scorer", "cached", "chosen_of", "degenerate_report", "format_report", "guard_floor",
           "guarded_scorer",
           "held_out_pairs", "judge_scorer", "pairs_report", "preference_report",
           "project_goods", "rm_scorer", "run_suite", "scored_once"]
