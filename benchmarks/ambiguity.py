"""How often a mention is linked to several nodes, and a node pair related several times (issue 25).

Usage:

    .venv/bin/python benchmarks/ambiguity.py --kg runs/demo/kg [--corpus runs/demo/corpus] \
        [--data runs/demo/data --batch-size 16]

Prints, for the KG, the (node, neighbour) pairs and how many carry several relations (what distinct
neighbour sampling changes); for a linked corpus, the mentions linked to more than one node (what
one-label-per-mention changes); and for a training dataset, over one epoch of batches in training
order, the entities whose contrastive label is shared with another node's entity and the text
anchors dropped as duplicates of a mention already in the batch. Numbers go to benchmarks/fidelity.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from bali.data.dataset import BaliCollator, BaliDataset
from bali.kg.graph import KnowledgeGraph


def kg_pairs(kg_dir: Path) -> None:
    """Distinct (node, neighbour) pairs of the KG and those related more than once."""
    kg = KnowledgeGraph.load(kg_dir)
    source = np.repeat(np.arange(kg.num_nodes, dtype=np.int64), np.diff(np.asarray(kg.indptr)))
    pairs = source * kg.num_nodes + np.asarray(kg.indices, dtype=np.int64)
    _, per_pair = np.unique(pairs, return_counts=True)
    several = int(np.count_nonzero(per_pair > 1))
    print(
        f"KG {kg_dir}: {kg.num_edges:,} edges, {per_pair.size:,} distinct (node, neighbour) pairs, "
        f"{several:,} pairs ({several / max(per_pair.size, 1):.1%}) with several relations, "
        f"{kg.num_edges - per_pair.size:,} edges ({(kg.num_edges - per_pair.size) / max(kg.num_edges, 1):.1%}) "
        "beyond the first per pair"
    )


def corpus_mentions(corpus_dir: Path) -> None:
    """Mentions linked to more than one KG node."""
    counts = pq.read_table(corpus_dir / "mentions.parquet", columns=["node_ids"]).column("node_ids")
    lengths = np.asarray(counts.combine_chunks().value_lengths())
    several = int(np.count_nonzero(lengths > 1))
    print(
        f"corpus {corpus_dir}: {lengths.size:,} mentions, {several:,} ({several / max(lengths.size, 1):.1%}) "
        f"linked to several nodes (max {int(lengths.max(initial=0))})"
    )


def batch_labels(data_dir: Path, batch_size: int) -> None:
    """Over one epoch of training batches: entities sharing a label across nodes, anchors dropped."""
    dataset = BaliDataset(data_dir, "train")
    collator = BaliCollator.from_dataset(dataset)
    entities = merged = dropped = 0
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        labels, nodes = batch.labels.numpy(), batch.entity_node_ids.numpy()
        groups = {label: set(nodes[labels == label].tolist()) for label in np.unique(labels)}
        entities += len(nodes)
        merged += sum(len(groups[label]) > 1 for label in labels.tolist())
        dropped += int((~batch.text_distinct).sum())
    print(
        f"data {data_dir}: {entities:,} entities in batches of {batch_size}; {merged:,} "
        f"({merged / max(entities, 1):.1%}) share their label with another node's entity; {dropped:,} "
        f"({dropped / max(entities, 1):.1%}) text anchors dropped as duplicate tokens of another entity"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kg", type=Path)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    if args.kg:
        kg_pairs(args.kg)
    if args.corpus:
        corpus_mentions(args.corpus)
    if args.data:
        batch_labels(args.data, args.batch_size)


if __name__ == "__main__":
    main()
