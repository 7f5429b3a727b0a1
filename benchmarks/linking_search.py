"""Exact nearest-name search over 1M random 384-d names, as the linking evaluation runs it.

Usage (numbers in benchmarks/linking.md):

    .venv/bin/python benchmarks/linking_search.py --names 1000000 --dim 384 --queries 2000

Vectors are random, L2-normalised float32 (what ``encode_texts`` returns). Timed, per query, with
queries in batches of ``--batch``: (1) ``knn`` = the evaluation's exact search (faiss
``IndexFlatIP`` top ``--k`` names plus the deterministic tie re-ordering); (2) ``rank_concepts`` =
the full concept ranking of the evaluation (one concept per name here, depth 64, i.e. 128 names
retrieved); (3) for reference a chunked torch matrix product + ``topk``. Wall and process-CPU seconds are
reported because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bali.evaluate.dictionary import Dictionary
from bali.evaluate.linking import knn, rank_concepts


def normalised(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def torch_topk(queries: np.ndarray, vectors: torch.Tensor, k: int, chunk: int = 262144) -> np.ndarray:
    """Chunked exact top-k by matrix product (the alternative to faiss)."""
    q = torch.from_numpy(queries)
    best_s = torch.empty(len(q), 0)
    best_i = torch.empty(len(q), 0, dtype=torch.int64)
    with torch.inference_mode():
        for start in range(0, vectors.shape[0], chunk):
            top_s, top_i = (q @ vectors[start : start + chunk].T).topk(k, dim=1)
            merged_s, merged_i = torch.cat([best_s, top_s], 1), torch.cat([best_i, top_i + start], 1)
            best_s, pos = merged_s.topk(k, dim=1)
            best_i = merged_i.gather(1, pos)
    return best_i.numpy()


def per_query(fn, queries: np.ndarray, batch: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    for b in range(0, len(queries), batch):
        fn(queries[b : b + batch])
    n = len(queries)
    return 1000 * (time.perf_counter() - wall) / n, 1000 * (time.process_time() - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--k", type=int, default=128)
    args = parser.parse_args()

    import faiss

    rng = np.random.default_rng(0)
    vectors = normalised(rng, args.names, args.dim)
    queries = normalised(rng, args.queries, args.dim)
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(args.dim)
    index.add(vectors)
    build_s = time.perf_counter() - t0
    dictionary = Dictionary(
        source="random",
        concept_ids=[[str(i)] for i in range(args.names)],
        strings=[str(i) for i in range(args.names)],
        string_indptr=np.arange(args.names + 1, dtype=np.int64),
        string_concepts=np.arange(args.names, dtype=np.int64),
        num_names=args.names,
    )
    knn(queries[:16], vectors, args.k, index)  # warm-up
    knn_ms, knn_cpu = per_query(lambda q: knn(q, vectors, args.k, index), queries, args.batch)
    rank_ms, rank_cpu = per_query(
        lambda q: rank_concepts(q, vectors, dictionary, 64, args.batch, index), queries, args.batch
    )
    tv = torch.from_numpy(vectors)
    torch_ms, torch_cpu = per_query(lambda q: torch_topk(q, tv, args.k), queries, args.batch)
    print(
        json.dumps(
            {
                "names": args.names,
                "dim": args.dim,
                "queries": args.queries,
                "batch": args.batch,
                "k": args.k,
                "faiss_threads": faiss.omp_get_max_threads(),
                "index_build_s": round(build_s, 3),
                "knn_ms_per_query": round(knn_ms, 3),
                "knn_cpu_ms_per_query": round(knn_cpu, 3),
                "rank_concepts_ms_per_query": round(rank_ms, 3),
                "rank_concepts_cpu_ms_per_query": round(rank_cpu, 3),
                "torch_topk_ms_per_query": round(torch_ms, 3),
                "torch_topk_cpu_ms_per_query": round(torch_cpu, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
