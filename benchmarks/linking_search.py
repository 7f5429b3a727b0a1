"""Exact nearest-name search over a synthetic on-disk dictionary, as the linking evaluation runs it.

Usage (numbers in benchmarks/linking.md):

    .venv/bin/python benchmarks/linking_search.py --names 10000000 --dim 384 --dtype float16 \
        --store /tmp/names.npy --queries 256

The dictionary is random L2-normalised vectors written block by block into a .npy file (so building
it never holds more than one block), laid out as a cache entry's ``vectors.npy``. Search is
:class:`bali.evaluate.search.ExactIndex` over :class:`bali.evaluate.cache.DiskVectors` (blocks read
with plain file I/O, per-block top-k merged), retrieving ``--k`` names per query (128 is what
``rank_concepts`` asks for at MRR depth 64). Reported: wall and process-CPU time per query, and the
process's peak RSS (``ru_maxrss``) after generation and after search. With ``--approx ivf`` the
faiss IVF index is built too and its recall@10 against exact search reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from bali.evaluate.cache import DiskVectors
from bali.evaluate.search import ApproxIndex, ExactIndex, recall_at_k


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def normalised(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def write_store(path: Path, names: int, dim: int, dtype: str, block: int = 262144) -> None:
    """Random unit vectors into a .npy file, one block at a time."""
    rng = np.random.default_rng(0)
    header = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(names, dim))
    del header
    with path.open("r+b") as handle:
        handle.seek(0, 2)
        offset = handle.tell() - names * dim * np.dtype(dtype).itemsize
        for begin in range(0, names, block):
            n = min(block, names - begin)
            handle.seek(offset + begin * dim * np.dtype(dtype).itemsize)
            handle.write(normalised(rng, n, dim).astype(dtype).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    parser.add_argument("--store", type=Path, required=True, help=".npy to create (reused if its size fits)")
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--block-rows", type=int, default=65536)
    parser.add_argument("--approx", choices=("ivf", "hnsw"))
    args = parser.parse_args()

    t0 = time.perf_counter()
    expected = args.names * args.dim * np.dtype(args.dtype).itemsize
    if not (args.store.is_file() and args.store.stat().st_size >= expected):
        write_store(args.store, args.names, args.dim, args.dtype)
    generate_s = time.perf_counter() - t0
    rss_after_generation = peak_rss_gb()
    store = DiskVectors(args.store, np.arange(args.names, dtype=np.int64), args.dim, args.dtype)
    queries = normalised(np.random.default_rng(1), args.queries, args.dim)
    index = ExactIndex(store, block_rows=args.block_rows)
    wall, cpu = time.perf_counter(), time.process_time()
    _, ids = index.search(queries, args.k)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {
        "names": args.names,
        "dim": args.dim,
        "dtype": args.dtype,
        "store_gb": round(expected / 1024**3, 2),
        "queries": args.queries,
        "k": args.k,
        "block_rows": args.block_rows,
        "generate_s": round(generate_s, 1),
        "peak_rss_gb_after_generation": round(rss_after_generation, 3),
        "search_s": round(wall, 1),
        "ms_per_query": round(1000 * wall / args.queries, 2),
        "cpu_ms_per_query": round(1000 * cpu / args.queries, 2),
        "peak_rss_gb_after_search": round(peak_rss_gb(), 3),
        "all_found": bool((ids >= 0).all()),
    }
    if args.approx:
        t0 = time.perf_counter()
        approx = ApproxIndex(store, args.approx)
        result["approx_build_s"] = round(time.perf_counter() - t0, 1)
        result["approx"] = approx.describe()
        result["approx_recall"] = recall_at_k(index, approx, queries, k=10)
        result["peak_rss_gb_after_approx"] = round(peak_rss_gb(), 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
