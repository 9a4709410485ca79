"""The retrieval agent: top-k good exemplar greetings for a query.

Two kinds, chosen by :class:`~zhufu.pipeline.config.RetrievalConfig`:

* ``bm25`` (default) — BM25 (``bm25s``) over jieba word tokens of each exemplar's query and
  text, so ``送给同学的生日祝福语`` finds birthday greetings for classmates.
* ``dense`` — cosine similarity of sentence-transformers embeddings (a model from a local
  path) in a faiss inner-product index. Both packages are optional; without them this kind
  raises :class:`RetrievalUnavailable` naming the package to install.

An index is built once per exemplar set and cached on disk under a key hashed from the kind,
the model and every exemplar, so a restart (or a second stage over the same exemplars) loads
it instead of rebuilding. Retrieval is deterministic and makes no LLM call.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zhufu.pipeline.config import RetrievalConfig
from zhufu.pipeline.errors import ConfigError, DataError

_WORD = re.compile(r"\w", re.UNICODE)


class RetrievalUnavailable(ConfigError):
    """Dense retrieval was asked for but a package it needs is not installed."""


@dataclass(frozen=True)
class Exemplar:
    """A known-good greeting and the query it answers (the query may be empty)."""

    query: str
    text: str


@dataclass(frozen=True)
class Hit:
    query: str
    text: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        """``dataclasses.asdict``'s dict, written out: its recursive copy was a third of the
        look-ups before a curation run's first call (profiled, 1,068 candidates)."""
        return {"query": self.query, "text": self.text, "score": self.score}


class Retriever(Protocol):
    kind: str

    def search(self, query: str, k: int) -> list[Hit]: ...

    def search_many(self, queries: list[str], k: int) -> list[list[Hit]]:
        """``search`` of each query, in order (one batch where the kind allows)."""
        ...


def tokenize(text: str) -> list[str]:
    """jieba words (the analyser's tokenizer), punctuation dropped.

    ``'生日快乐！'`` → ``['生日快乐']``
    """
    from zhufu.pipeline.analysis.text import tokens

    return [w for w in tokens(text) if _WORD.search(w)]


def index_key(kind: str, model: str | None, exemplars: list[Exemplar]) -> str:
    """Hash of everything an index depends on; names its cache folder."""
    h = hashlib.sha256(f"{kind}\0{model or ''}\0".encode())
    for ex in exemplars:
        h.update(f"{ex.query}\0{ex.text}\n".encode())
    return h.hexdigest()[:20]


class NoRetriever:
    """The ablation: no exemplars at all."""

    kind = "none"

    def search(self, query: str, k: int) -> list[Hit]:
        return []

    def search_many(self, queries: list[str], k: int) -> list[list[Hit]]:
        return [[] for _ in queries]


class BM25Retriever:
    """BM25 over jieba tokens; the ``bm25s`` index is saved in ``cache_dir/<key>``."""

    kind = "bm25"

    def __init__(self, exemplars: list[Exemplar], cache_dir: Path | None = None) -> None:
        import bm25s

        if not exemplars:
            raise DataError("exemplars", None, None, "bm25 retrieval needs at least one exemplar")
        self.exemplars = exemplars
        self.key = index_key(self.kind, None, exemplars)
        self.loaded_from_cache = False
        folder = Path(cache_dir) / f"bm25-{self.key}" if cache_dir else None
        if folder is not None and (folder / "done").exists():
            self.bm25 = bm25s.BM25.load(str(folder))
            self.vocab = json.loads((folder / "zhufu_vocab.json").read_text(encoding="utf-8"))
            self.loaded_from_cache = True
            return
        docs = [tokenize(f"{ex.query} {ex.text}") for ex in exemplars]
        self.vocab = {}
        for doc in docs:
            for w in doc:
                self.vocab.setdefault(w, len(self.vocab))
        ids = [[self.vocab[w] for w in doc] for doc in docs]
        self.bm25 = bm25s.BM25()
        self.bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=self.vocab),
                        show_progress=False)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.bm25.save(str(folder))
            (folder / "zhufu_vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False),
                                                     encoding="utf-8")
            (folder / "done").write_text(str(len(exemplars)))

    def search(self, query: str, k: int) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: list[str], k: int) -> list[list[Hit]]:
        """The hits of each query; the queries sharing a word with the exemplars go to
        ``bm25s`` in one ``retrieve`` call (its fixed cost per call, about a millisecond,
        was most of a query's retrieval), the others get no hit."""
        ids = [[self.vocab[w] for w in tokenize(q) if w in self.vocab] for q in queries]
        asked = [i for i, q in enumerate(ids) if q]
        out: list[list[Hit]] = [[] for _ in queries]
        if not asked:
            return out
        k = min(k, len(self.exemplars))
        docs, scores = self.bm25.retrieve([ids[i] for i in asked], k=k, show_progress=False)
        for i, row_docs, row_scores in zip(asked, docs.tolist(), scores.tolist(), strict=True):
            out[i] = [Hit(self.exemplars[int(doc)].query, self.exemplars[int(doc)].text,
                          round(float(score), 6))
                      for doc, score in zip(row_docs, row_scores, strict=True) if score > 0]
        return out


class DenseRetriever:
    """sentence-transformers embeddings (local model path) in a faiss inner-product index."""

    kind = "dense"

    def __init__(self, exemplars: list[Exemplar], model: str | None,
                 cache_dir: Path | None = None) -> None:
        if not model:
            raise ConfigError("retrieval.kind 'dense' needs retrieval.model (a local "
                              "sentence-transformers folder)")
        try:
            import faiss
        except ImportError as e:
            raise RetrievalUnavailable(
                "dense retrieval needs the 'faiss-cpu' package (pip install faiss-cpu)") from e
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise RetrievalUnavailable(
                "dense retrieval needs the 'sentence-transformers' package "
                "(pip install sentence-transformers)") from e
        if not exemplars:
            raise DataError("exemplars", None, None, "dense retrieval needs at least one exemplar")
        self.exemplars = exemplars
        self.encoder = SentenceTransformer(model, device="cpu")
        self.key = index_key(self.kind, model, exemplars)
        self.loaded_from_cache = False
        path = Path(cache_dir) / f"dense-{self.key}.faiss" if cache_dir else None
        if path is not None and path.exists():
            self.index = faiss.read_index(str(path))
            self.loaded_from_cache = True
            return
        vectors = self.encoder.encode([f"{ex.query} {ex.text}" for ex in exemplars],
                                      normalize_embeddings=True, convert_to_numpy=True)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors.astype("float32"))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            faiss.write_index(self.index, str(tmp))
            tmp.replace(path)

    def search(self, query: str, k: int) -> list[Hit]:
        vector = self.encoder.encode([query], normalize_embeddings=True, convert_to_numpy=True)
        scores, docs = self.index.search(vector.astype("float32"), min(k, len(self.exemplars)))
        return [Hit(self.exemplars[int(d)].query, self.exemplars[int(d)].text,
                    round(float(s), 6))
                for d, s in zip(docs[0].tolist(), scores[0].tolist(), strict=True) if d >= 0]

    def search_many(self, queries: list[str], k: int) -> list[list[Hit]]:
        """One query at a time: a batch pads the queries to one length, which may move the
        embeddings in the last digits and so the hits."""
        return [self.search(q, k) for q in queries]


def build_retriever(cfg: RetrievalConfig, exemplars: list[Exemplar],
                    cache_dir: Path | None = None) -> Retriever:
    """The retriever ``cfg`` names, its index loaded from ``cache_dir`` when cached."""
    if cfg.kind == "none":
        return NoRetriever()
    if cfg.kind == "dense":
        return DenseRetriever(exemplars, cfg.model, cache_dir)
    return BM25Retriever(exemplars, cache_dir)
