"""Contrastive labels of a batch's entities: one label per mention, whatever its number of KG nodes.

An entity is one (sentence, concept). A mention linked to several nodes (the dictionary linker's
``ambiguous: all``, or a gold id that several nodes cross-reference, as HPO and MONDO do for one
condition) therefore gives several entities over the same tokens: identical mention embeddings. With
node ids as labels, each of them is the other's negative at cosine 1 and dominates that anchor's
InfoNCE denominator, so the mention is pushed from its own nodes as hard as it is pulled to them.

Here entities that share a mention token, and entities of the same node, get one label (the smallest
node id of the group, so a label never collides with an unrelated node's id): the nodes of an
ambiguous mention are positives of the mention and of each other, never negatives. Entities whose
token sets are identical keep one text embedding between them (``text_distinct``), so an ambiguous
mention is one anchor, not one per node.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class EntityLabels(NamedTuple):
    entity: np.ndarray  # [N] int64 label of each entity
    neighbour: np.ndarray  # [N_nb] int64 label of each sampled neighbour node
    text_distinct: np.ndarray  # [N] bool: False where an earlier entity has the same mention tokens


def entity_labels(mention_index: np.ndarray, nodes: np.ndarray, neighbour_nodes: np.ndarray) -> EntityLabels:
    """Labels of the N entities (``nodes``: their KG ids) and of the sampled neighbours.

    ``mention_index`` is the batch's [2, E] (flat token position, entity) pairs. A neighbour node that
    is also an entity's node takes that entity's label (it stays a negative of other groups only).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    overlap = _shared_token_pairs(mention_index)
    by_node = np.argsort(nodes, kind="stable")
    same_node = nodes[by_node[1:]] == nodes[by_node[:-1]]
    links = np.concatenate([overlap, np.stack([by_node[:-1][same_node], by_node[1:][same_node]])], axis=1)
    labels = _propagate_minimum(nodes.copy(), links)
    distinct_nodes, first = np.unique(nodes, return_index=True)
    neighbour = np.asarray(neighbour_nodes, dtype=np.int64).copy()
    if len(distinct_nodes):
        at = np.minimum(np.searchsorted(distinct_nodes, neighbour), len(distinct_nodes) - 1)
        known = distinct_nodes[at] == neighbour
        neighbour[known] = labels[first[at[known]]]
    return EntityLabels(labels, neighbour, _distinct_token_sets(mention_index, len(nodes), overlap))


def _shared_token_pairs(mention_index: np.ndarray) -> np.ndarray:
    """[2, K] pairs of entities that share a token position (consecutive entities at a position)."""
    positions, entities = np.asarray(mention_index[0]), np.asarray(mention_index[1])
    order = np.lexsort((entities, positions))
    positions, entities = positions[order], entities[order]
    shared = positions[1:] == positions[:-1]
    return np.stack([entities[:-1][shared], entities[1:][shared]]).astype(np.int64)


def _propagate_minimum(labels: np.ndarray, links: np.ndarray) -> np.ndarray:
    """Give every connected group of ``links`` the smallest starting label of the group.

    Each vectorised pass moves the minimum one link further; groups are tiny (a mention's few nodes
    and their other mentions in the batch), so it ends after a few passes.
    """
    src, dst = links
    while src.size:
        low = np.minimum(labels[src], labels[dst])
        updated = labels.copy()
        np.minimum.at(updated, src, low)
        np.minimum.at(updated, dst, low)
        if np.array_equal(updated, labels):
            break
        labels = updated
    return labels


def _distinct_token_sets(mention_index: np.ndarray, num_entities: int, overlap: np.ndarray) -> np.ndarray:
    """False for an entity whose token set equals an earlier entity's (only overlapping ones can)."""
    distinct = np.ones(num_entities, dtype=bool)
    candidates = np.unique(overlap)
    if not candidates.size:
        return distinct
    positions, entities = np.asarray(mention_index[0]), np.asarray(mention_index[1])
    keep = np.isin(entities, candidates)
    order = np.lexsort((positions[keep], entities[keep]))
    grouped_entities, grouped_positions = entities[keep][order], positions[keep][order]
    starts = np.flatnonzero(np.r_[True, grouped_entities[1:] != grouped_entities[:-1]])
    seen: set[tuple[int, ...]] = set()
    for entity, tokens in zip(grouped_entities[starts], np.split(grouped_positions, starts[1:]), strict=True):
        key = tuple(tokens.tolist())
        distinct[entity] = key not in seen
        seen.add(key)
    return distinct
