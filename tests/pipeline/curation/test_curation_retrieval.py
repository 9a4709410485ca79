"""The retrieval agent: BM25 over jieba tokens, index cached by content hash, dense optional."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from zhufu.pipeline.config import RetrievalConfig
from zhufu.pipeline.curation.retrieval import (
    BM25Retriever,
    Exemplar,
    RetrievalUnavailable,
    build_retriever,
    index_key,
)

EXEMPLARS = [
    Exemplar("同学生日祝福语", "同窗情谊深，愿你生日快乐，前程似锦！"),
    Exemplar("新婚祝福语", "愿你们百年好合，永结同心，白头偕老。"),
    Exemplar("春节祝福", "新春快乐，愿您阖家幸福，万事如意！"),
    Exemplar("老师教师节祝福", "老师您辛苦了，桃李满天下，节日快乐！"),
    Exemplar("妈妈生日祝福语", "妈妈，生日快乐！愿您身体健康，笑口常开。"),
]


def test_bm25_finds_exemplars_for_the_occasion(tmp_path: Path) -> None:
    r = BM25Retriever(EXEMPLARS, tmp_path)
    hits = r.search("送给同学的生日祝福语", 2)
    assert [h.query for h in hits][0] == "同学生日祝福语"
    assert all(h.score > 0 for h in hits) and len(hits) <= 2
    assert r.search("新婚快乐", 1)[0].query == "新婚祝福语"
    assert r.search("zzzz", 3) == []  # no shared word: no exemplar rather than a random one


def test_search_many_is_search_of_each_query(tmp_path: Path) -> None:
    r = BM25Retriever(EXEMPLARS, tmp_path)
    queries = ["送给同学的生日祝福语", "zzzz", "新婚快乐", "春节祝福语", "zzzz", "妈妈生日"]
    many = r.search_many(queries, 3)
    assert many == [r.search(q, 3) for q in queries]
    assert many[1] == [] and many[0][0].query == "同学生日祝福语"
    assert r.search_many([], 3) == [] and r.search_many(["zzzz"], 3) == [[]]
    none = build_retriever(RetrievalConfig(kind="none"), [], tmp_path)
    assert none.search_many(queries, 3) == [[]] * len(queries)


def test_index_is_cached_by_content(tmp_path: Path) -> None:
    first = BM25Retriever(EXEMPLARS, tmp_path)
    second = BM25Retriever(EXEMPLARS, tmp_path)
    assert not first.loaded_from_cache and second.loaded_from_cache
    assert second.search("春节祝福语", 3) == first.search("春节祝福语", 3)
    other = BM25Retriever(EXEMPLARS[:3], tmp_path)
    assert not other.loaded_from_cache
    assert len({p.name for p in tmp_path.iterdir()}) == 2
    assert index_key("bm25", None, EXEMPLARS) != index_key("dense", "m", EXEMPLARS)


def test_none_and_dense_configuration(tmp_path: Path) -> None:
    assert build_retriever(RetrievalConfig(kind="none"), [], tmp_path).search("q", 3) == []
    with pytest.raises(ValueError, match="retrieval.model"):
        build_retriever(RetrievalConfig(kind="dense"), EXEMPLARS, tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("faiss") is not None,
                    reason="faiss is installed: the missing-package error cannot occur")
def test_dense_without_faiss_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(RetrievalUnavailable, match="faiss-cpu"):
        build_retriever(RetrievalConfig(kind="dense", model=str(tmp_path)), EXEMPLARS, tmp_path)
