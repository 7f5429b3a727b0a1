"""Nearest-name search over dictionary vectors that need not fit in memory.

Exact search reads the vectors block by block (from a cache entry on disk, or an in-memory array),
scores every query against the block with one matrix product and keeps a running top-k per query,
so resident memory is one block of vectors plus one block of scores, whatever the dictionary size.
Results are ordered by score, then by ascending name index: equal scores (case variants that an
uncased model maps to the same vector) come out in dictionary order, and which of several tied
names makes the cut at k is decided the same way, so results do not depend on the block size or the
storage order.

An approximate faiss index (IVF or HNSW over 8-bit scalar-quantised vectors, about a quarter of
float32's memory) is there for dictionaries too large to search exactly in the time available;
:func:`recall_at_k` measures what it loses against exact search on a sample of the queries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

INDEXES = ("exact", "ivf", "hnsw")


class VectorBlocks(Protocol):
    """Vectors of ``rows`` names, readable in blocks with the name index of each row."""

    rows: int
    dim: int

    def blocks(self, block_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


class ArrayVectors:
    """An in-memory ``[names, dim]`` array in name order, as :class:`VectorBlocks`."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.rows, self.dim = vectors.shape

    def blocks(self, block_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for begin in range(0, self.rows, block_rows):
            end = min(begin + block_rows, self.rows)
            yield np.asarray(self.vectors[begin:end], dtype=np.float32), np.arange(begin, end)


def select_top_k(
    rows: np.ndarray, ids: np.ndarray, scores: np.ndarray, num_queries: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` (score desc, id asc) of candidate triples per query; -inf / -1 pad short rows."""
    order = np.lexsort((ids, -scores, rows))
    rows, ids, scores = rows[order], ids[order], scores[order]
    first = np.searchsorted(rows, np.arange(num_queries))
    rank = np.arange(len(rows)) - first[rows]
    keep = rank < k
    out_scores = np.full((num_queries, k), -np.inf, dtype=np.float32)
    out_ids = np.full((num_queries, k), -1, dtype=np.int64)
    out_scores[rows[keep], rank[keep]] = scores[keep]
    out_ids[rows[keep], rank[keep]] = ids[keep]
    return out_scores, out_ids


def _block_candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(query row, column) of every score at least the query's k-th best in the block (ties included)."""
    if scores.shape[1] > k:
        kth = np.partition(scores, scores.shape[1] - k, axis=1)[:, scores.shape[1] - k]
        return np.nonzero(scores >= kth[:, None])
    return np.nonzero(np.ones_like(scores, dtype=bool))


class ExactIndex:
    """Exact inner-product top-k over :class:`VectorBlocks`, merging per-block top-k."""

    exact = True

    def __init__(self, vectors: VectorBlocks, block_rows: int = 65536, query_batch: int = 1024) -> None:
        self.vectors, self.block_rows, self.query_batch = vectors, block_rows, query_batch
        self.ntotal = vectors.rows

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, name indices) ``[len(queries), min(k, ntotal)]``, best first, ties by index."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.ntotal)
        best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
        best_i = np.full((len(queries), k), -1, dtype=np.int64)
        for block, names in self.vectors.blocks(self.block_rows):
            for begin in range(0, len(queries), self.query_batch):
                end = min(begin + self.query_batch, len(queries))
                scores = queries[begin:end] @ block.T
                q_rows, cols = _block_candidates(scores, k)
                held = best_i[begin:end] >= 0
                h_rows = np.nonzero(held)[0]
                best_s[begin:end], best_i[begin:end] = select_top_k(
                    np.concatenate([h_rows, q_rows]),
                    np.concatenate([best_i[begin:end][held], names[cols]]),
                    np.concatenate([best_s[begin:end][held], scores[q_rows, cols]]),
                    end - begin,
                    k,
                )
        return best_s, best_i


class ApproxIndex:
    """A faiss IVF or HNSW index over 8-bit scalar-quantised vectors, filled block by block."""

    exact = False
    NPROBE, EF_SEARCH = 64, 128

    def __init__(
        self,
        vectors: VectorBlocks,
        kind: str,
        train_size: int = 100_000,
        block_rows: int = 65536,
        seed: int = 0,
    ) -> None:
        import faiss

        if kind not in INDEXES[1:]:
            raise ValueError(f"unknown approximate index '{kind}' (expected one of {INDEXES[1:]})")
        self.kind, self.ntotal = kind, vectors.rows
        # faiss wants >= 39 training points per IVF list; 4 sqrt(n) lists is its usual starting point.
        self.nlist = max(1, min(65536, int(4 * np.sqrt(vectors.rows)), vectors.rows // 39))
        factory = f"IVF{self.nlist},SQ8" if kind == "ivf" else "HNSW32,SQ8"
        index = faiss.index_factory(vectors.dim, factory, faiss.METRIC_INNER_PRODUCT)
        index.train(_training_sample(vectors, max(train_size, 40 * self.nlist), block_rows, seed))
        if kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = min(self.nlist, self.NPROBE)
        else:
            index.hnsw.efSearch = self.EF_SEARCH
        self.index = faiss.IndexIDMap(index)
        for block, names in vectors.blocks(block_rows):
            self.index.add_with_ids(block, names.astype(np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, name indices) best first, ties by index; -1 where fewer than k were found."""
        k = min(k, self.ntotal)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        found = ids >= 0
        rows = np.nonzero(found)[0]
        return select_top_k(rows, ids[found], scores[found], len(queries), k)

    def describe(self) -> str:
        """The index and its search setting, for the protocol text."""
        if self.kind == "ivf":
            return f"faiss IVF{self.nlist},SQ8 (nprobe {min(self.nlist, self.NPROBE)}), inner product"
        return f"faiss HNSW32,SQ8 (efSearch {self.EF_SEARCH}), inner product"


def _training_sample(vectors: VectorBlocks, size: int, block_rows: int, seed: int) -> np.ndarray:
    """An evenly spread random sample of the vectors (one pass, a share of every block)."""
    rng = np.random.default_rng(seed)
    share = min(1.0, size / max(1, vectors.rows))
    parts = [block[rng.random(len(block)) < share] for block, _ in vectors.blocks(block_rows)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def build_index(vectors: VectorBlocks, kind: str = "exact") -> ExactIndex | ApproxIndex:
    """The search index of one pooling's dictionary vectors."""
    return ExactIndex(vectors) if kind == "exact" else ApproxIndex(vectors, kind)


def recall_at_k(
    exact: ExactIndex, approx: Any, queries: np.ndarray, k: int = 10, sample: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean share of the exact top-k names the approximate index also returns, on a query sample."""
    if len(queries) > sample:
        queries = queries[np.sort(np.random.default_rng(seed).choice(len(queries), sample, replace=False))]
    _, truth = exact.search(queries, k)
    _, found = approx.search(queries, k)
    overlap = [len(set(t.tolist()) & set(f.tolist())) / len(t) for t, f in zip(truth, found, strict=True)]
    return {
        "k": int(truth.shape[1]),
        "queries": len(queries),
        "recall": float(np.mean(overlap)) if overlap else 1.0,
    }
