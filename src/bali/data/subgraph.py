"""Per-entity 1-hop subgraph sampling, name selection and linear-graph sequences (vectorised).

BALI samples, for every entity, up to k neighbours uniformly *without replacement* from the set of
the target's neighbour ids, one random synonym per node (the target too), and draws edges
neighbour -> target. Where two nodes are related several times, the edge gets one of their
relations, drawn uniformly. Here every draw is keyed by (sample index, entity slot, draw number),
see :mod:`bali.data.masking`.
"""

from __future__ import annotations

import numpy as np

from bali.data.layout import exclusive_cumsum, ragged_arange
from bali.data.masking import STREAM_NEIGHBOUR, keyed_integers


def sample_neighbours(
    indptr: np.ndarray,
    targets: np.ndarray,
    k: int,
    base: np.ndarray,
    sample_keys: np.ndarray,
    entity_slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw min(k, degree) distinct CSR entries (neighbour pairs) per target.

    Draw i picks the r-th (r uniform in [0, degree - i)) of the edges not drawn yet; shifting r past
    the already drawn positions in ascending order maps it to that edge. That is exact uniform
    sampling without replacement in O(k^2) vector operations, whatever the degree (UMLS hubs have
    tens of thousands of neighbours, so materialising all candidates per batch would not scale).

    Returns (owner: entity index of each sampled edge, edge: CSR position), grouped by owner.
    """
    starts = np.asarray(indptr[targets], dtype=np.int64)
    degree = np.asarray(indptr[targets + 1], dtype=np.int64) - starts
    take = np.minimum(degree, k)
    chosen = np.full((len(targets), max(k, 0)), -1, dtype=np.int64)
    for i in range(k):
        active = take > i
        if not active.any():
            break
        draw = keyed_integers(base, np.maximum(degree - i, 1), STREAM_NEIGHBOUR, sample_keys, entity_slots, i)
        previous = np.sort(chosen[:, :i], axis=1)
        for j in range(i):
            draw += draw >= previous[:, j]
        chosen[active, i] = draw[active]
    owner = np.repeat(np.arange(len(targets), dtype=np.int64), take)
    picked = chosen[chosen >= 0]  # row-major: grouped by owner, in draw order
    return owner, starts[owner] + picked


def pick_from_rows(
    offsets: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    base: np.ndarray,
    stream: int,
    sample_keys: np.ndarray,
    entity_slots: np.ndarray,
    draw_slots: np.ndarray,
) -> np.ndarray:
    """One uniformly random value of each CSR row in ``rows``, keyed by (stream, sample, entity, draw).

    Used for a graph node's name (``STREAM_NAME``, rows of the name table) and a sampled pair's
    relation (``STREAM_RELATION``).
    """
    starts = np.asarray(offsets[rows], dtype=np.int64)
    counts = np.asarray(offsets[rows + 1], dtype=np.int64) - starts
    draw = keyed_integers(base, np.maximum(counts, 1), stream, sample_keys, entity_slots, draw_slots)
    return np.asarray(values[starts + draw], dtype=np.int64)


def gather_sequences(
    flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pad the token sequences ``rows`` of a flat+offsets table into ([R, Lmax] ids, mask)."""
    starts = np.asarray(offsets[rows], dtype=np.int64)
    lengths = np.asarray(offsets[rows + 1], dtype=np.int64) - starts
    width = int(lengths.max(initial=0))
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    if len(rows):
        owner = np.repeat(np.arange(len(rows)), lengths)
        column = np.arange(int(lengths.sum())) - np.repeat(exclusive_cumsum(lengths)[:-1], lengths)
        ids[owner, column] = flat[ragged_arange(starts, lengths)]
        mask[owner, column] = 1
    return ids, mask


def linearise(
    name_ids: np.ndarray,
    name_lengths: np.ndarray,
    name_specials: tuple[int, int],
    graph_node_names: np.ndarray,
    num_entities: int,
    edge_owner: np.ndarray,
    edge_rank: np.ndarray,
    edge_relations: np.ndarray,
    relation_flat: np.ndarray,
    relation_offsets: np.ndarray,
    special_ids: tuple[int, int, int],
    max_length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """BALI's v1 linear graph: ``[CLS] c [SEP] n1 r1 c [SEP] n2 r2 c [SEP] ...`` per target.

    Built from the same sampled names and edges as the star graph. Names are taken without their
    special tokens (``name_specials`` = how many lead and trail each row of ``name_ids``); relation
    phrases read "neighbour PHRASE target". Every sequence is a list of segments (a name, a phrase,
    one special token) pointing into one token pool, so the whole batch is gathered at once. A
    sequence longer than ``max_length`` is cut and ends with [SEP], so the encoder still sees a
    closed segment. ``special_ids`` = (cls, sep, pad).
    """
    cls_id, sep_id, pad_id = special_ids
    rows, width = name_ids.shape
    lead, trail = name_specials
    pool = np.concatenate([name_ids.ravel(), np.asarray(relation_flat, dtype=np.int64), [cls_id, sep_id]])
    cls_at, sep_at = len(pool) - 2, len(pool) - 1
    name_start = np.arange(rows, dtype=np.int64) * width + lead
    name_length = np.maximum(name_lengths - lead - trail, 0)
    target_rows = graph_node_names[:num_entities]
    neighbour_rows = graph_node_names[num_entities:]
    target_start, target_length = name_start[target_rows], name_length[target_rows]
    relation_offsets = np.asarray(relation_offsets, dtype=np.int64)
    relation_start, relation_length = rows * width + relation_offsets[:-1], np.diff(relation_offsets)
    ones_n = np.ones(num_entities, dtype=np.int64)
    ones_e = np.ones(len(edge_owner), dtype=np.int64)
    # Segments: 3 per target ([CLS] c [SEP]), 4 per edge (n r c [SEP]), each a (start, length) in pool.
    head_start, head_length = _segment_columns(
        [(ones_n * cls_at, ones_n), (target_start, target_length), (ones_n * sep_at, ones_n)]
    )
    edge_start, edge_length = _segment_columns(
        [
            (name_start[neighbour_rows], name_length[neighbour_rows]),
            (relation_start[edge_relations], relation_length[edge_relations]),
            (target_start[edge_owner], target_length[edge_owner]),
            (ones_e * sep_at, ones_e),
        ]
    )
    order, owner = _segment_order(num_entities, edge_owner, edge_rank)
    lengths = np.concatenate([head_length, edge_length])[order]
    tokens = pool[ragged_arange(np.concatenate([head_start, edge_start])[order], lengths)]
    return _pack_rows(tokens, np.repeat(owner, lengths), num_entities, max_length, sep_id, pad_id)


def _segment_columns(columns: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Flatten per-row segment columns, each (pool start, length), into row-major start and length."""
    starts = np.stack([start for start, _ in columns], axis=1).ravel()
    lengths = np.stack([length for _, length in columns], axis=1).ravel()
    return starts, lengths


def _segment_order(
    num_entities: int, edge_owner: np.ndarray, edge_rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sort the segments (3 per target, then 4 per edge) by (target, slot in the target's sequence).

    Returns the permutation and the target of each segment in that order.
    """
    seg_owner = np.concatenate([np.repeat(np.arange(num_entities), 3), np.repeat(edge_owner, 4)])
    seg_slot = np.concatenate(
        [np.tile(np.arange(3), num_entities), ((3 + 4 * edge_rank)[:, None] + np.arange(4)).ravel()]
    )
    order = np.lexsort((seg_slot, seg_owner))
    return order, seg_owner[order]


def _pack_rows(
    tokens: np.ndarray, token_owner: np.ndarray, num_entities: int, max_length: int, sep_id: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lay the tokens (grouped by target) out as padded rows, cutting at ``max_length`` with [SEP]."""
    per_target = np.bincount(token_owner, minlength=num_entities)
    position = np.arange(len(tokens)) - np.repeat(exclusive_cumsum(per_target)[:-1], per_target)
    keep = position < max_length
    out_length = np.minimum(per_target, max_length)
    ids = np.full((num_entities, int(out_length.max(initial=0))), pad_id, dtype=np.int64)
    ids[token_owner[keep], position[keep]] = tokens[keep]
    truncated = per_target > max_length
    if truncated.any():
        ids[truncated, max_length - 1] = sep_id
    mask = (np.arange(ids.shape[1])[None, :] < out_length[:, None]).astype(np.int64)
    return ids, mask
