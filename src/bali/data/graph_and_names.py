"""The KG's part of the training dataset: the neighbour CSR, node names and relation phrases.

Only the nodes that the corpus mentions and their neighbours are kept, in local ids, so the collator
never touches the KG. Names and relation phrases are lower-cased when ``DataConfig.lowercase`` is
set, as BALI's README does; for an uncased tokenizer both choices coincide.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from bali.data import layout
from bali.data.config import DataConfig
from bali.data.layout import exclusive_cumsum, ragged_arange
from bali.data.tokenizer import backend_tokenizer
from bali.kg.graph import CONCEPTS, KnowledgeGraph
from bali.kg.graph import NAMES as KG_NAMES
from bali.kg.graph import RELATIONS as KG_RELATIONS

NAME_BLOCK = 16384
RELATION_MAX_LENGTH = 16


def tokenise_texts(
    tokenizer: Any, texts: list[str], max_length: int, special: bool, desc: str
) -> list[list[int]]:
    """Batch-tokenise short texts (names, relation phrases), truncated to ``max_length`` tokens."""
    backend = backend_tokenizer(tokenizer, max_length)
    out: list[list[int]] = []
    for start in tqdm(range(0, len(texts), NAME_BLOCK), desc=desc, unit="block", disable=None):
        # No offsets needed here: the fast path skips computing them (about 2x faster).
        encodings = backend.encode_batch_fast(texts[start : start + NAME_BLOCK], add_special_tokens=special)
        out.extend(e.ids for e in encodings)
    return out


def write_sequences(out: Path, ids_name: str, offsets_name: str, sequences: list[list[int]]) -> None:
    """Store a list of token sequences as one flat int32 array plus int64 offsets."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
    np.save(out / ids_name, flat)
    np.save(out / offsets_name, exclusive_cumsum(lengths))


def node_name_texts(kg: KnowledgeGraph, kg_dir: Path, nodes: np.ndarray) -> tuple[list[str], np.ndarray, int]:
    """Names of ``nodes`` grouped by node (preferred first) and per-node counts.

    A node without any name falls back to its preferred name, else its source id, so that every
    graph node has something to encode; how many did is returned.
    """
    indptr = np.asarray(kg.names_indptr)
    counts = indptr[nodes + 1] - indptr[nodes]
    column = pq.read_table(kg_dir / KG_NAMES, columns=["name"]).column("name")
    texts = np.array(column.take(pa.array(ragged_arange(indptr[nodes], counts))).to_pylist(), dtype=object)
    missing = np.nonzero(counts == 0)[0]
    if missing.size:
        concepts = pq.read_table(kg_dir / CONCEPTS, columns=["source_id", "preferred_name"])
        preferred = concepts.column("preferred_name").take(pa.array(nodes[missing])).to_pylist()
        source = concepts.column("source_id").take(pa.array(nodes[missing])).to_pylist()
        filled = counts.copy()
        filled[missing] = 1
        starts = exclusive_cumsum(filled)
        full = np.empty(int(starts[-1]), dtype=object)
        have = np.nonzero(counts)[0]
        full[ragged_arange(starts[have], counts[have])] = texts
        full[starts[missing]] = [(p or "").strip() or s for p, s in zip(preferred, source, strict=True)]
        texts, counts = full, filled
    return texts.tolist(), counts, int(missing.size)


def write_graph_and_names(
    kg: KnowledgeGraph, kg_dir: Path, out: Path, mentioned: np.ndarray, tokenizer: Any, config: DataConfig
) -> tuple[np.ndarray, dict[str, int]]:
    """Neighbour CSR of the mentioned nodes and the tokenised names of every node that can appear.

    Returns the sorted KG ids of the mentioned nodes (local ids 0..M-1) and counts. Neighbour-only
    nodes follow as local ids M.., so the collator never touches the KG.
    """
    targets = np.nonzero(mentioned)[0].astype(np.int64)
    nodes, graph_counts = _write_graph(kg, out, targets)
    name_counts = _write_names(kg, kg_dir, out, nodes, tokenizer, config)
    _write_relations(kg, kg_dir, out, tokenizer, config)
    return targets, {**graph_counts, **name_counts}


def _write_graph(kg: KnowledgeGraph, out: Path, targets: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Write the targets' neighbour CSR in local node ids; return the KG ids of all local nodes and counts.

    A KG may relate the same two nodes several times (UMLS: PAR/CHD, RB/RN, SIB and the RELAs of
    several sources). Each (target, neighbour) pair is stored once with the list of its distinct
    relations, so sampling k neighbours draws k distinct nodes.
    """
    kg_indptr = np.asarray(kg.indptr)
    degree = kg_indptr[targets + 1] - kg_indptr[targets]
    edges = ragged_arange(kg_indptr[targets], degree)
    neighbour_kg = np.asarray(kg.indices[edges], dtype=np.int64)
    others = np.setdiff1d(np.unique(neighbour_kg), targets)
    nodes = np.concatenate([targets, others])
    neighbour_local = np.where(
        np.isin(neighbour_kg, targets),
        np.searchsorted(targets, neighbour_kg),
        len(targets) + np.searchsorted(others, neighbour_kg),
    )
    # One int64 key per (target, neighbour, relation): a 1-d unique sorts them by pair, then relation.
    relation_count = max(len(kg.relation_names), 1)
    pair_keys = np.repeat(np.arange(len(targets), dtype=np.int64), degree) * len(nodes) + neighbour_local
    triples = np.unique(pair_keys * relation_count + np.asarray(kg.relations[edges], dtype=np.int64))
    pairs, relations_per_pair = np.unique(triples // relation_count, return_counts=True)
    np.save(out / layout.NODES, nodes.astype(np.int32))
    np.save(
        out / layout.GRAPH_INDPTR, exclusive_cumsum(np.bincount(pairs // len(nodes), minlength=len(targets)))
    )
    np.save(out / layout.GRAPH_INDICES, (pairs % len(nodes)).astype(np.int32))
    np.save(out / layout.GRAPH_RELATION_OFFSETS, exclusive_cumsum(relations_per_pair))
    np.save(out / layout.GRAPH_RELATIONS, (triples % relation_count).astype(np.int32))
    return nodes, {
        "nodes": len(nodes),
        "target_nodes": len(targets),
        "neighbour_only_nodes": len(others),
        "edges": len(edges),
        "neighbour_pairs": len(pairs),
        "neighbour_pairs_with_several_relations": int(np.count_nonzero(relations_per_pair > 1)),
        "targets_without_neighbours": int(np.count_nonzero(degree == 0)),
    }


def _write_names(
    kg: KnowledgeGraph, kg_dir: Path, out: Path, nodes: np.ndarray, tokenizer: Any, config: DataConfig
) -> dict[str, int]:
    """Tokenise every name of ``nodes``, store each distinct sequence once and each node's rows into them."""
    texts, name_counts, fallback = node_name_texts(kg, kg_dir, nodes)
    if config.lowercase:
        texts = [t.lower() for t in texts]
    sequences = tokenise_texts(tokenizer, texts, config.name_max_length, True, "tokenising names")
    distinct: dict[tuple[int, ...], int] = {}
    rows = np.fromiter(
        (distinct.setdefault(tuple(s), len(distinct)) for s in sequences),
        dtype=np.int32,
        count=len(sequences),
    )
    write_sequences(out, layout.NAME_INPUT_IDS, layout.NAME_OFFSETS, [list(k) for k in distinct])
    np.save(out / layout.NODE_NAMES_INDPTR, exclusive_cumsum(name_counts))
    np.save(out / layout.NODE_NAME_ROWS, rows)
    return {
        "names": len(sequences),
        "distinct_name_sequences": len(distinct),
        "names_at_max_length": int(sum(len(s) >= config.name_max_length for s in sequences)),
        "nodes_named_by_fallback": fallback,
    }


def _write_relations(kg: KnowledgeGraph, kg_dir: Path, out: Path, tokenizer: Any, config: DataConfig) -> None:
    """Copy the KG's relation table and store the tokenised relation phrases (no special tokens)."""
    phrases = list(kg.relation_phrases)
    (out / layout.RELATIONS).write_bytes((kg_dir / KG_RELATIONS).read_bytes())
    if config.lowercase:
        phrases = [p.lower() for p in phrases]
    write_sequences(
        out,
        layout.RELATION_INPUT_IDS,
        layout.RELATION_OFFSETS,
        tokenise_texts(tokenizer, phrases, RELATION_MAX_LENGTH, False, "tokenising relation phrases"),
    )
