"""One label per mention: entities over shared tokens, and every entity of their nodes, share a label."""

from __future__ import annotations

import numpy as np

from bali.data.labels import entity_labels


def _index(pairs: list[tuple[int, int]]) -> np.ndarray:
    return np.asarray(pairs, dtype=np.int64).T.reshape(2, -1)


def test_an_ambiguous_mention_is_one_anchor_with_its_nodes_as_positives() -> None:
    # Sentence 0: tokens 1-2 linked to nodes 7 and 5 (entities 0, 1); token 4 to node 9 (entity 2).
    # Sentence 1 (positions 16+): node 7 alone (entity 3), node 11 (entity 4).
    index = _index([(1, 0), (2, 0), (1, 1), (2, 1), (4, 2), (17, 3), (19, 4)])
    labels = entity_labels(index, np.array([7, 5, 9, 7, 11]), np.array([5, 9, 12, 7]))
    assert labels.entity.tolist() == [5, 5, 9, 5, 11]
    assert labels.neighbour.tolist() == [5, 9, 12, 5]
    assert labels.text_distinct.tolist() == [True, False, True, True, True]


def test_partly_shared_tokens_link_entities_but_keep_both_anchors() -> None:
    # Entity 0 (node 4) covers tokens 1, 2 and 6 (two mentions); entity 1 (node 2) only token 1-2.
    index = _index([(1, 0), (2, 0), (6, 0), (1, 1), (2, 1), (8, 2), (9, 3)])
    labels = entity_labels(index, np.array([4, 2, 6, 3]), np.zeros(0, dtype=np.int64))
    assert labels.entity.tolist() == [2, 2, 6, 3]
    assert labels.text_distinct.tolist() == [True, True, True, True]
    assert labels.neighbour.size == 0


def test_groups_join_transitively_and_unambiguous_batches_keep_node_ids() -> None:
    # 0-1 share token 1, 1-2 share token 5: one group {8, 6, 3} labelled 3.
    index = _index([(1, 0), (1, 1), (5, 1), (5, 2), (9, 3)])
    assert entity_labels(index, np.array([8, 6, 3, 10]), np.array([8])).entity.tolist() == [3, 3, 3, 10]
    plain = entity_labels(_index([(1, 0), (3, 1)]), np.array([4, 2]), np.array([2, 5]))
    assert plain.entity.tolist() == [4, 2] and plain.neighbour.tolist() == [2, 5]
    assert plain.text_distinct.all()
