"""Milliseconds to assemble one batch of 256 sentences: item reads, subgraph sampling, MLM masking,
name deduplication and collation into a BaliBatch (star and linear graph formats).

The dataset is built by ``bali data build`` from BC5CDR sentences mapped onto a synthetic KG of
realistic shape (see ``data_build.py``). Each timed batch draws 256 random sentence indices, fetches
the items from the memory-mapped shards and calls the collator, as one DataLoader worker would.

    .venv/bin/python benchmarks/batch_assembly.py --batches 60
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bali.data.config import DataConfig
from bali.data.dataset import BaliCollator, BaliDataset
from bali.data.encode import build_dataset
from data_build import write_inputs


def time_batches(dataset: BaliDataset, collator: BaliCollator, batches: int, size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    times, entities, names, nodes = [], [], [], []
    for step in range(batches + 3):
        indices = rng.choice(len(dataset), size, replace=False)
        collator.set_epoch(step)
        start = time.perf_counter()
        batch = collator([dataset[int(i)] for i in indices])
        elapsed = time.perf_counter() - start
        if step >= 3:  # warm-up: page cache and first-use memory maps
            times.append(elapsed * 1000)
            entities.append(batch.num_entities)
            names.append(batch.name_input_ids.shape[0])
            nodes.append(batch.graph_node_names.shape[0])
    times.sort()
    return {
        "min_ms": round(times[0], 2),
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
        "entities_per_batch": round(statistics.mean(entities), 1),
        "graph_nodes_per_batch": round(statistics.mean(nodes), 1),
        "distinct_names_per_batch": round(statistics.mean(names), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--neighbours", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument("--degree", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", type=Path, help="time an existing `bali data build` directory instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dataset
        if directory is None:
            root = Path(tmp)
            write_inputs(root, 1, args.nodes, args.degree, args.seed)
            build_dataset(root / "kg", root / "corpus", "builtin", root / "ds", DataConfig())
            directory = root / "ds"
        dataset = BaliDataset(directory)
        results: dict = {"sentences": len(dataset), "batch_size": args.batch_size}
        for graph_format in ("star", "linear"):
            collator = BaliCollator.from_dataset(
                dataset, neighbours=args.neighbours, graph_format=graph_format
            )
            results[graph_format] = time_batches(dataset, collator, args.batches, args.batch_size, args.seed)
    results["load_average_1min"] = round(os.getloadavg()[0], 2)  # other work on this shared machine
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
