"""A small labelled curation set built from the paper's pairs (read from ../shared).

For ``n`` queries of ``reward_data_train.json`` (half of them picked among pairs whose two
answers are within 15% in length) the chosen answer becomes a candidate labelled 1 and the
rejected one a candidate labelled 0. Exemplars are the chosen answers of other queries, so
retrieval can never hand the judge the very answer it is judging.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class CurationSet:
    labelled: Path
    exemplars: Path
    queries: list[str]


def build_set(shared: Path, out: Path, n: int, n_exemplars: int, seed: int = 0) -> CurationSet:
    rows = json.loads((shared / "reward_data_train.json").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)

    def near_same(i: int) -> bool:
        a, b = len(rows[i]["chosen"]["value"]), len(rows[i]["rejected"]["value"])
        return abs(a - b) <= 0.15 * max(a, b)

    same = [i for i in order if near_same(i)][: n // 2]
    rest = [i for i in order if i not in set(same)][: n - len(same)]
    picked = same + rest
    seen_queries = {rows[i]["conversations"][0]["value"] for i in picked}
    ex_ids = [i for i in order if rows[i]["conversations"][0]["value"] not in seen_queries
              and i not in set(picked)][:n_exemplars]
    out.mkdir(parents=True, exist_ok=True)
    labelled, exemplars = out / "labelled.jsonl", out / "exemplars.jsonl"
    queries = []
    with labelled.open("w", encoding="utf-8") as fh:
        for i in picked:
            q = rows[i]["conversations"][0]["value"]
            queries.append(q)
            for key, label in (("chosen", 1), ("rejected", 0)):
                fh.write(json.dumps({"query": q, "response": rows[i][key]["value"],
                                     "label": label}, ensure_ascii=False) + "\n")
    with exemplars.open("w", encoding="utf-8") as fh:
        for i in ex_ids:
            fh.write(json.dumps({"query": rows[i]["conversations"][0]["value"],
                                 "response": rows[i]["chosen"]["value"], "label": 1},
                                ensure_ascii=False) + "\n")
    return CurationSet(labelled, exemplars, queries)


@pytest.fixture(scope="session")
def curation_set(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> CurationSet:
    return build_set(shared_data, tmp_path_factory.mktemp("curation-set"), n=6, n_exemplars=200)


@pytest.fixture(autouse=True)
def _zhufu_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                ) -> None:
    """Keep index caches and local MLflow stores out of the working tree."""
    monkeypatch.setenv("ZHUFU_HOME", str(tmp_path_factory.getbasetemp() / "zhufu-home"))
