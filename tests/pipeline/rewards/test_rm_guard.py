"""The degeneracy guard of the ``rm`` reward, on a real reward model with the paper data's flaw.

The fixture trains a tiny character-level BERT reward model (the project's own encoder) for a
dozen Bradley-Terry steps on pairs where the longer text always wins, the length bias a
reward model picks up from the paper's pairs. Raw, it scores a greeting written twice and a
long punctuation soup above the clean greeting; through the ``rm`` reward (guard on, the
default) both score below it while the clean greeting keeps its score, and each call logs how
many completions it vetoed.
"""

from __future__ import annotations

import asyncio

import pytest

from zhufu.pipeline.config import CharEncoderConfig, GRPOConfig, RewardSpec
from zhufu.pipeline.rewards import guard, rm

QUERY = "生日祝福语"
GOOD = "祝你生日快乐，天天开心！"
TWICE = GOOD + GOOD
SOUP = "生日，，快乐！！祝。。福，，开心！！天天。。快乐，，生日！！"
LONG_GREETINGS = [
    "祝你生日快乐，愿你在新的一岁里身体健康，工作顺利，天天都有好心情！",
    "新年快乐，愿你和家人平平安安，万事如意，来年事业更上一层楼。",
    "老师辛苦了，感谢您一直以来的教导，祝您桃李满天下，身体健康！",
    "恭喜你们喜结良缘，愿你们相亲相爱，白头偕老，永远幸福美满。",
    "中秋佳节到了，愿你花好月圆，阖家团圆，生活甜甜蜜蜜，快乐无边。",
    "祝妈妈生日快乐，谢谢您多年的辛苦付出，愿您永远年轻，笑口常开！",
]


@pytest.fixture(scope="module")
def length_biased_rm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny char-encoder RM trained so that the longer of two greetings wins."""
    import torch

    from zhufu.pipeline.train.char_encoder import build_char_encoder

    torch.manual_seed(0)
    model, tok = build_char_encoder([QUERY, GOOD, SOUP, *LONG_GREETINGS],
                                    CharEncoderConfig(hidden_size=32, num_layers=1, num_heads=2,
                                                      dropout=0.0), max_length=96)
    # more text wins: two greetings over one, a greeting over its first third
    chosen = [g + LONG_GREETINGS[i - 1] for i, g in enumerate(LONG_GREETINGS)] + LONG_GREETINGS
    rejected = LONG_GREETINGS + [g[: len(g) // 3] for g in LONG_GREETINGS]
    enc = {side: rm.encode(tok, [QUERY] * len(texts), texts, 96, padding=True)
           for side, texts in (("c", chosen), ("r", rejected))}
    batch = {side: {k: torch.tensor(e[k]) for k in ("input_ids", "attention_mask")}
             for side, e in enc.items()}
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(12):
        margin = model(**batch["c"]).logits[:, 0] - model(**batch["r"]).logits[:, 0]
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    out = tmp_path_factory.mktemp("length-rm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def test_the_guard_ranks_doubled_and_soup_text_below_a_good_greeting(
        length_biased_rm: str) -> None:
    texts = [GOOD, TWICE, SOUP]
    raw = rm.score_texts(length_biased_rm, [QUERY] * 3, texts)
    assert raw[1] > raw[0] and raw[2] > raw[0]  # the hole: both beat the greeting raw
    logged: list[tuple[str, float]] = []
    reward = rm.rm_reward(length_biased_rm)
    got = reward(prompts=[QUERY] * 3, completions=texts,
                 log_metric=lambda k, v: logged.append((k, v)))
    assert got[0] == pytest.approx(raw[0], abs=1e-6)  # a clean greeting keeps its score
    assert got[1] < got[0] and got[2] < got[0]
    assert got[1] <= rm.model_floor(length_biased_rm)  # below the model's floor too
    assert logged == [("rm_vetoed", 2.0), ("rm_vetoed_share", pytest.approx(2 / 3))]
    assert (reward.vetoed, reward.scored) == (2, 3)
    off = rm.rm_reward(length_biased_rm, guard=False)
    assert off(prompts=[QUERY] * 3, completions=texts) == pytest.approx(raw, abs=1e-6)


def test_the_floor_is_below_every_clean_completion_of_the_call() -> None:
    out = guard.apply_floor([-9.0, 3.0, 1.0], [False, True, False], model_floor=-2.0)
    assert out.scores == [-9.0, -10.0, 1.0] and out.n_vetoed == 1
    assert guard.apply_floor([4.0, 5.0], [True, True], model_floor=-2.0).scores == [-2.0, -2.0]
    assert guard.apply_floor([], [], model_floor=0.0).scores == []
    with pytest.raises(ValueError, match="2 scores vs 1 vetoes"):
        guard.apply_floor([1.0, 2.0], [True], model_floor=0.0)
    with pytest.raises(ValueError, match="no reference scores"):
        guard.reference_floor([])


def test_the_guard_vetoes_what_the_judge_calls_degenerate_and_no_project_greeting() -> None:
    from zhufu.pipeline.evaluation.judge_suite import project_goods
    from zhufu.pipeline.judge.testsets import degenerate_items

    goods = project_goods()
    assert not any(guard.vetoes([q for q, _ in goods], [t for _, t in goods]))
    items = [d for d in degenerate_items() if d.kind in ("written_twice", "punct_soup",
                                                         "shuffled", "repeated_phrase")]
    vetoed = guard.vetoes([d.query for d in items], [d.response for d in items])
    assert sum(vetoed) >= 0.95 * len(items)


def test_the_reward_spec_switches_the_guard(length_biased_rm: str) -> None:
    from zhufu.pipeline.train.grpo_setup import build_rewards

    assert RewardSpec(name="rm", model="x").guard is None  # unset: on (below)
    funcs, _ = build_rewards(GRPOConfig(rewards=[
        {"name": "rm", "model": length_biased_rm},
        {"name": "rm", "model": length_biased_rm, "guard": False}]), {})
    on, off = (asyncio.run(f([QUERY, QUERY], [GOOD, TWICE])) for f in funcs)
    assert on[1] < on[0] and off[1] > off[0]
    assert funcs[0].__wrapped__.guard and not funcs[1].__wrapped__.guard
