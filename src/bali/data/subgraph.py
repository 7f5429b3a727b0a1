"""Per-entity 1-hop subgraph sampling, name selection and linear-graph sequences (vectorised).

BALI samples, for every entity, up to k neighbours uniformly *without replacement* from the target's
adjacency list, one random synonym per node (the target too), and draws edges neighbour -> target.
Here every draw is keyed by (sample index, entity slot, draw number), see :mod:`bali.data.masking`.
"""

from __future__ import annotations

import numpy as np

from bali.data.layout import exclusive_cumsum, ragged_arange
from bali.data.masking import STREAM_NAME, STREAM_NEIGHBOUR, keyed_integers


def sample_neighbours(
    indptr: np.ndarray,
    targets: np.ndarray,
    k: int,
    base: np.ndarray,
    sample_keys: np.ndarray,
    entity_slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw min(k, degree) distinct CSR edges per target.

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


def pick_names(
    names_indptr: np.ndarray,
    name_rows: np.ndarray,
    nodes: np.ndarray,
    base: np.ndarray,
    sample_keys: np.ndarray,
    entity_slots: np.ndarray,
    node_slots: np.ndarray,
) -> np.ndarray:
    """One uniformly random name (a row of the distinct-name table) per graph node."""
    starts = np.asarray(names_indptr[nodes], dtype=np.int64)
    counts = np.asarray(names_indptr[nodes + 1], dtype=np.int64) - starts
    draw = keyed_integers(base, np.maximum(counts, 1), STREAM_NAME, sample_keys, entity_slots, node_slots)
    return np.asarray(name_rows[starts + draw], dtype=np.int64)


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
    target_names: list[list[int]],
    neighbour_names: list[list[int]],
    neighbour_relations: list[list[int]],
    edge_owner: np.ndarray,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    max_length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """BALI's v1 linear graph: ``[CLS] c [SEP] n1 r1 c [SEP] n2 r2 c [SEP] ...`` per target.

    Names come without their special tokens and relation phrases read "neighbour PHRASE target". A
    sequence longer than ``max_length`` is cut and ends with [SEP] so the encoder still sees a
    closed segment.
    """
    sequences = [[cls_id, *name, sep_id] for name in target_names]
    for j, owner in enumerate(edge_owner.tolist()):
        sequences[owner].extend(neighbour_names[j])
        sequences[owner].extend(neighbour_relations[j])
        sequences[owner].extend(target_names[owner])
        sequences[owner].append(sep_id)
    lengths = np.fromiter((min(len(s), max_length) for s in sequences), dtype=np.int64, count=len(sequences))
    ids = np.full((len(sequences), int(lengths.max(initial=0))), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, seq in enumerate(sequences):
        if len(seq) > max_length:
            seq = [*seq[: max_length - 1], sep_id]
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask
