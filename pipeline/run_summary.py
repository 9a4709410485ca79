"""What ``zhufu run`` prints at the end and logs as metrics: tables from its report.

- the policies: judge scores per dimension, every evaluator's mean score (the one each
  evaluator prefers marked, and which policies trained against it), length, readable share,
  wrong-occasion share;
- the pairwise comparisons: B over A by every evaluator, raw and length-controlled win
  rates with 95 % intervals;
- what each reward cost to build (:func:`zhufu.pipeline.run.reward_costs`);
- the stage times and the wall time.
"""

from __future__ import annotations

from typing import Any


def summary_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """(metric, one value per policy) rows for the policies table."""
    policies = list(report["policies"].values())
    rows = [("judge overall (1–5)", *(f"{p['judge_overall']:.2f}" for p in policies))]
    rows += [(f"  {k}", *(f"{p['judge'][k]:.2f}" for p in policies))
             for k in policies[0]["judge"]]
    if all("rm" in p for p in policies):
        rows.append(("reward model", *(f"{p['rm']:.3f}" for p in policies)))
    rows.append(("mean length (chars)", *(f"{p['mean_length']:.1f}" for p in policies)))
    rows.append(("readable share", *(f"{p['readable_share']:.0%}" for p in policies)))
    if all("wrong_occasion_share" in p for p in policies):
        rows.append(("wrong occasion", *(f"{p['wrong_occasion_share']:.0%}" for p in policies)))
    if all("repeated_closing" in p for p in policies):
        rows.append(("most repeated closing line", *(
            f"{p['repeated_closing']['share']:.0%} ({p['repeated_closing']['queries']} queries)"
            for p in policies)))
    return rows


def evaluator_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """Policies × evaluators: each evaluator's mean score per policy, ``*`` on the policy it
    prefers (``**`` when it beats every other with the win rate's interval above 0.5); the
    label says which policies were trained against it (self-preference)."""
    names = list(report["policies"])
    rows = []
    for evaluator, info in report.get("evaluators", {}).items():
        own = info.get("trained_against") or []
        label = f"by {evaluator}" + (f" (reward of {', '.join(own)})" if own else
                                     " (no policy trained on it)")
        mark = " **" if info.get("prefers_clearly") else " *"
        rows.append((label, *(f"{info['means'][n]:.3f}" + (mark if n == info["prefers"]
                                                            else "") for n in names)))
    return rows


def pairwise_rows(report: dict[str, Any]) -> tuple[list[str], list[tuple[str, ...]]]:
    """(evaluator names, one row per pair): ``win [CI] · LC win [CI]`` of B over A."""
    evaluators = list(report["pairwise"][0].get("by_evaluator", {"judge": None}))
    rows = []
    for pair in report["pairwise"]:
        by = pair.get("by_evaluator") or {"judge": pair}
        cells = []
        for name in evaluators:
            figures, ci = by[name], by[name].get("ci95", {})
            cells.append(f"{figures['win_rate']:.2f} {_ci(ci.get('win_rate'))} · LC "
                         f"{figures['lc_win_rate']:.2f} {_ci(ci.get('lc_win_rate'))}")
        rows.append((f"{pair['b'].upper()} over {pair['a'].upper()}", *cells))
    return evaluators, rows


def cost_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per reward: build wall seconds, LLM calls, LLM tokens, human-labelled examples
    used to build it, GRPO wall seconds with it."""
    rows = []
    for name, c in report.get("reward_costs", {}).items():
        if "built_from" in c:  # mix: the sum of the rewards it is built from
            rows.append((name, f"= {' + '.join(c['built_from'])}", "", "", "",
                         f"{c.get('grpo_seconds', 0):.0f}"))
            continue
        grpo = f"{c['grpo_seconds']:.0f}" if "grpo_seconds" in c else "—"
        rows.append((name, f"{c['wall_seconds']:.0f}", f"{c['llm_calls']:.0f}",
                     f"{c['llm_tokens']:.0f}", f"{c['human_labelled']:.0f}", grpo))
    return rows


def pairwise_metrics(report: dict[str, Any]) -> dict[str, float]:
    """MLflow metrics of the comparison: ``win_rate`` / ``lc_win_rate`` of the first pair
    (GRPO over SFT in a one-reward run) and ``win_rate/B_vs_A[/evaluator]`` … for every
    pair (the judge's without the evaluator suffix)."""
    first = report["pairwise"][0]
    out = {"win_rate": first["win_rate"], "lc_win_rate": first["lc_win_rate"]}
    for pair in report["pairwise"]:
        for name, figures in (pair.get("by_evaluator") or {"judge": pair}).items():
            tail = "" if name == "judge" else f"/{name}"
            out.update({f"{k}/{pair['b']}_vs_{pair['a']}{tail}": figures[k]
                        for k in ("win_rate", "lc_win_rate")})
    return out


def print_summary(report: dict[str, Any]) -> None:
    """The policies table, the pairwise table and the times, on the console."""
    from rich.console import Console
    from rich.table import Table

    names = list(report["policies"])
    table = Table(title="Zhufu run: " + " vs ".join(n.upper() for n in names)
                  + f" on {report['n_prompts']} held-out queries")
    for col in ("metric", *(n.upper() for n in names)):
        table.add_column(col)
    for row in (*summary_rows(report), *evaluator_rows(report)):
        table.add_row(*row)
    blank = [""] * (len(names) - 1)
    for key, value in report["stage_seconds"].items():
        table.add_row(f"{key} (s)", *blank, f"{value:.0f}")
    table.add_row("wall time (s)", *blank, f"{report['wall_seconds']:.0f}")
    console = Console()
    console.print(table)
    evaluators, rows = pairwise_rows(report)
    pairs = Table(title="Pairwise: win rate of B over A [95 % CI] · length-controlled (LC), "
                  "by evaluator")
    for col in ("B over A", *evaluators):
        pairs.add_column(col)
    for row in rows:
        pairs.add_row(*row)
    console.print(pairs)
    costs = cost_rows(report)
    if costs:
        table = Table(title="What each reward cost to build (this run)")
        for col in ("reward", "build wall (s)", "LLM calls", "LLM tokens",
                    "human-labelled examples", "GRPO wall (s)"):
            table.add_column(col)
        for row in costs:
            table.add_row(*row)
        console.print(table)


def _ci(bounds: list[float] | None) -> str:
    return f"[{bounds[0]:.2f}, {bounds[1]:.2f}]" if bounds else ""
