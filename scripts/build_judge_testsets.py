"""Rebuild the generated parts of the judge test sets under ``pipeline/judge/testsets/``.

Both files hold hand-written rows (``source: hand``, written for Zhufu and kept as they are)
and generated rows, which this script writes again from a fixed seed:

- ``degenerate.jsonl``: ``source: generated`` rows are :mod:`zhufu.pipeline.judge.degenerate`
  applied to the project's own good greetings (the starter set). Generated rows are split
  ``tune`` / ``held_out`` (every third row held out); hand-written rows are the ``final``
  check, never tuned on.
- ``principle_pairs.jsonl``: ``source: template`` rows come from the small template grammar
  below (occasion × recipient × detail × wish, with its own phrase banks, none shared with
  the hand-written pairs) and are the ``final`` check; hand-written pairs are split ``tune``
  / ``held_out`` (every third pair of each kind held out).

Run from the repository root: ``.venv/bin/python -P scripts/build_judge_testsets.py``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from zhufu.pipeline.data import starter_greetings, starter_labelled
from zhufu.pipeline.judge.degenerate import KINDS, make

OUT = Path(__file__).resolve().parents[1] / "pipeline" / "judge" / "testsets"
PER_KIND = 28
SEED = 20251129

# --- the template family of principle pairs ------------------------------------------------
# occasion key → (query word, wish, details, personal wishes, taboo clause, advert clause)
OCCASIONS: dict[str, dict] = {
    "birthday": {
        "q": "生日祝福", "wish": "生日快乐", "name": "生日",
        "details": ["今年的蛋糕特意挑了{p}最爱的抹茶味", "这一年{p}学会了做饭，还养活了一盆多肉",
                    "蜡烛吹完记得把第一块蛋糕留给自己"],
        "personal": ["愿{p}往后的日子有人陪、有事做、有所盼", "愿{p}新的一岁心里有光，脚下有路"],
        "taboo": "又老了一岁，身体可得当心，别出什么大毛病",
        "ad": "顺便一提，本店生日蛋糕限时八折，扫码就能下单",
    },
    "wedding": {
        "q": "新婚祝福", "wish": "新婚快乐", "name": "新婚",
        "details": ["看{p}穿上礼服的那一刻，全场都安静了",
                    "从相识那天的一杯咖啡到今天的喜酒，整整七年"],
        "personal": ["愿{p}们把日子过成两个人都喜欢的样子", "愿{p}们的小家灯火常明，笑声不断"],
        "taboo": "万一哪天真过不下去了，好聚好散也不丢人",
        "ad": "蜜月旅行还没订的话，我们旅行社有情侣套餐优惠",
    },
    "spring": {
        "q": "新年祝福", "wish": "新春快乐", "name": "新年",
        "details": ["年夜饭桌上那道红烧鱼今年还得由{p}掌勺", "窗花和春联今年都是我亲手贴的"],
        "personal": ["愿{p}新的一年所求皆如愿，所行皆坦途",
                    "愿{p}这一年胃口好，觉睡得香，烦心事少"],
        "taboo": "去年的霉运千万别带进新年，今年可别再破财了",
        "ad": "年货礼盒本店满三百减五十，欢迎扫码选购",
    },
    "midautumn": {
        "q": "中秋祝福", "wish": "中秋快乐", "name": "中秋",
        "details": ["今年的月饼我挑了{p}喜欢的五仁馅", "阳台上那盆桂花今年开得特别香"],
        "personal": ["愿{p}和家人月下团圆，灯下安好", "愿{p}的日子像今晚的月亮一样圆满"],
        "taboo": "只可惜人总要分离，团圆也不过就这一晚",
        "ad": "本公司中秋月饼礼盒第二件半价，欢迎致电订购",
    },
    "opening": {
        "q": "开业祝福", "wish": "开业大吉", "name": "开业",
        "details": ["门口的花篮从早上一直排到了路口", "装修跑了整整三个月，今天终于开门迎客"],
        "personal": ["愿{p}的店天天有熟客，年年有新客", "愿{p}的生意像门口的灯笼一样红火"],
        "taboo": "就怕撑不到年底就得关门，亏本了可别灰心",
        "ad": "店里装修要是还缺灯具，欢迎联系我司，报名字打九折",
    },
    "retirement": {
        "q": "退休祝福", "wish": "退休快乐", "name": "退休",
        "details": ["三十年的早班车，今天终于坐到了终点站",
                    "办公室那盆君子兰，我们会替{p}好好照顾"],
        "personal": ["愿{p}往后钓钓鱼、养养花，日子过得悠悠闲闲", "愿{p}把时间都留给自己和家人"],
        "taboo": "人一闲下来就老得快，可别在家闲出病来",
        "ad": "老年大学春季班正在招生，现在报名立减两百",
    },
    "graduation": {
        "q": "毕业祝福", "wish": "毕业快乐", "name": "毕业",
        "details": ["四年里泡过的图书馆和食堂都会记得{p}", "那本写满笔记的课本，我替{p}收好了"],
        "personal": ["愿{p}带着好奇出发，去看更大的世界",
                    "愿{p}下一站遇到的人都温柔，做的事都热爱"],
        "taboo": "不过毕业就失业的人也很多，找不到工作别太难过",
        "ad": "找工作不顺的话，欢迎报名我们的求职培训班，包推荐",
    },
}
# recipient → (query word, address, pronoun, high register?)
RECIPIENTS = {
    "grandma": ("外婆", "外婆", "您", True),
    "teacher": ("老师", "老师", "您", True),
    "boss": ("领导", "周总", "您", True),
    "friend": ("闺蜜", "亲爱的", "你", False),
    "classmate": ("老同学", "老同学", "你", False),
    "brother": ("弟弟", "老弟", "你", False),
}
FITS = {"birthday": list(RECIPIENTS), "wedding": ["friend", "classmate", "brother", "boss"],
        "spring": list(RECIPIENTS), "midautumn": list(RECIPIENTS),
        "opening": ["friend", "classmate", "brother", "boss"],
        "retirement": ["grandma", "teacher", "boss"],
        "graduation": ["friend", "classmate", "brother"]}
NEGATIVE = ["反正{p}这些年也就这样了，别指望会有什么变化", "说实话，{p}这一年的表现挺让人失望的",
            "日子本来就没什么意思，凑合着过吧"]
STOCK = ["万事如意", "心想事成", "身体健康", "工作顺利", "幸福美满", "天天开心", "一切顺利",
         "吉祥如意"]
CASUAL_TAIL = "哈哈，咱俩谁跟谁，改天请你撸串"


def _fill(text: str, pronoun: str) -> str:
    return text.replace("{p}们", "你们").replace("{p}", pronoun)


def template_pair(kind: str, rng: random.Random) -> dict:
    """One (query, good, bad) pair of the template family breaking ``kind``."""
    occ_key = rng.choice(sorted(OCCASIONS))
    occ = OCCASIONS[occ_key]
    rec_key = rng.choice(FITS[occ_key])
    rec_q, addr, p, high = RECIPIENTS[rec_key]
    query = f"给{rec_q}的{occ['q']}语"
    detail = _fill(rng.choice(occ["details"]), p)
    personal = _fill(rng.choice(occ["personal"]), p)
    good = f"{addr}，{occ['wish']}！{detail}，{personal}。"
    if kind == "taboo":
        bad = f"{addr}，{occ['wish']}！{detail}，{occ['taboo']}。"
    elif kind == "wrong_occasion":
        other = OCCASIONS[rng.choice([k for k in sorted(OCCASIONS) if k != occ_key])]
        bad = (f"{addr}，{other['wish']}！{_fill(rng.choice(other['details']), p)}，"
               f"{_fill(rng.choice(other['personal']), p)}。")
    elif kind == "register":
        if high:
            bad = f"嘿，{occ['wish']}！{detail.replace('您', '你')}，{CASUAL_TAIL}。"
        else:
            s = rng.sample(STOCK, 3)
            bad = (f"值此{occ['name']}之际，谨向您致以诚挚的问候与衷心的祝贺，"
                   f"恭祝您{s[0]}，{s[1]}，{s[2]}。")
    elif kind == "negative":
        bad = f"{addr}，{occ['wish']}！{detail}，{_fill(rng.choice(NEGATIVE), p)}。"
    elif kind == "advertising":
        bad = f"{addr}，{occ['wish']}！{detail}，{occ['ad']}。"
    elif kind == "format":
        bad = f"【{occ['name']}祝福】\n1. {occ['wish']}\n2. {personal}\n#{occ['wish']}#"
    elif kind == "repetition":
        w = occ["wish"]
        bad = f"{addr}，{w}！祝{p}{w}，{w}{w}，天天都{w}，{w}又{w}。"
    elif kind == "generic":
        s = rng.sample(STOCK, 4)
        bad = f"{addr}，{occ['wish']}！在这个特别的日子里，祝{p}{s[0]}，{s[1]}，{s[2]}，{s[3]}。"
    else:
        raise ValueError(kind)
    return {"query": query, "good": good, "bad": bad, "kind": kind}


PAIR_KINDS = ("taboo", "wrong_occasion", "register", "negative", "advertising", "format",
              "repetition", "generic")


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


def build_degenerate() -> list[dict]:
    hand = [r for r in _read(OUT / "degenerate.jsonl") if r["source"] == "hand"]
    goods = [g for g in (*starter_greetings(), *starter_labelled()) if g.label == 1]
    rng = random.Random(SEED)
    rows = []
    for kind in KINDS:
        seen: set[str] = set()
        while sum(r["kind"] == kind for r in rows) < PER_KIND:
            g = rng.choice(goods)
            text = make(kind, g.query, g.response, rng)
            if text in seen:
                continue
            seen.add(text)
            i = len(rows)
            rows.append({"id": f"dg{i + 1:03d}", "query": g.query, "response": text,
                         "kind": kind, "source": "generated",
                         "split": "held_out" if i % 3 == 2 else "tune"})
    return hand + rows


def build_pairs() -> list[dict]:
    hand = [r for r in _read(OUT / "principle_pairs.jsonl") if r["source"] == "hand"]
    rng = random.Random(SEED + 1)
    rows, seen = [], set()
    for kind in PAIR_KINDS:
        n = 0
        while n < 12:
            pair = template_pair(kind, rng)
            if (pair["query"], pair["bad"]) in seen:
                continue
            seen.add((pair["query"], pair["bad"]))
            n += 1
            rows.append({"id": f"pt-{kind}-{n:02d}", **pair, "source": "template",
                         "split": "final"})
    return hand + rows


def main() -> None:
    deg, pairs = build_degenerate(), build_pairs()
    _write(OUT / "degenerate.jsonl", deg)
    _write(OUT / "principle_pairs.jsonl", pairs)
    print(f"degenerate.jsonl: {len(deg)} rows; principle_pairs.jsonl: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
