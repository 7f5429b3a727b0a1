"""Batches: contract shapes, sampling without replacement, determinism, masking, names, linear graphs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_data import EDGES, NAMES
from torch.utils.data import DataLoader

from bali.data import layout
from bali.data.dataset import BaliBatch, BaliCollator, BaliDataset
from bali.data.masking import base_key, mask_tokens
from bali.data.subgraph import sample_neighbours
from bali.lm import load_tokenizer

NEIGHBOURS = {}
for _src, _dst, _rel in EDGES:
    NEIGHBOURS.setdefault(_src, set()).add((_dst, _rel))


@pytest.fixture(scope="module")
def dataset(tiny_dataset: Path) -> BaliDataset:
    return BaliDataset(tiny_dataset)


def _batch(dataset: BaliDataset, indices, epoch: int = 0, **kwargs) -> BaliBatch:
    collator = BaliCollator.from_dataset(dataset, **kwargs)
    collator.set_epoch(epoch)
    return collator([dataset[i] for i in indices])


def _equal(a: BaliBatch, b: BaliBatch) -> bool:
    return all(
        (x is None and y is None) or torch.equal(x, y)
        for x, y in zip(a.__dict__.values(), b.__dict__.values(), strict=True)
    )


def test_batch_follows_the_contract(dataset: BaliDataset) -> None:
    items = [dataset[i] for i in range(8)]
    batch = _batch(dataset, range(8))
    B, L = batch.input_ids.shape
    assert B == 8 and max(len(it.input_ids) for it in items) == L
    assert batch.attention_mask.sum().item() == sum(len(it.input_ids) for it in items)
    n = sum(len(it.entity_nodes) for it in items)
    assert batch.num_entities == n
    nodes = np.asarray(dataset.files.array(layout.NODES))
    assert batch.entity_node_ids.tolist() == [int(nodes[v]) for it in items for v in it.entity_nodes]
    # Mention index: flat position b * L + t, entity index offset by the previous sentences' entities.
    expected, offset = [], 0
    for b, it in enumerate(items):
        expected += [
            (b * L + p, offset + e) for p, e in zip(it.mention_positions, it.mention_entities, strict=True)
        ]
        offset += len(it.entity_nodes)
    assert list(map(tuple, batch.mention_token_index.T.tolist())) == expected
    n_nb = batch.graph_edge_index.shape[1]
    assert batch.graph_node_names.shape == (n + n_nb,)
    assert batch.graph_edge_index[0].tolist() == list(range(n, n + n_nb))
    assert batch.graph_edge_index[1].max() < n and batch.graph_edge_relations.shape == (n_nb,)
    assert batch.name_input_ids.shape == batch.name_attention_mask.shape
    assert batch.linear_input_ids is None
    for tensor in (batch.input_ids, batch.mlm_labels, batch.mention_token_index, batch.graph_edge_index):
        assert tensor.dtype == torch.int64


def test_edges_are_kg_edges_and_names_belong_to_their_nodes(dataset: BaliDataset) -> None:
    tokenizer = load_tokenizer("builtin")
    names = {v: {n.lower() for n in ns} for v, ns in NAMES.items()}
    batch = _batch(dataset, range(len(dataset)))
    n = batch.num_entities
    files = dataset.files
    # Recover each graph node's KG id: targets are entities, neighbours come from their edges.
    node_of = batch.entity_node_ids.tolist()
    for target, relation in zip(
        batch.graph_edge_index[1].tolist(), batch.graph_edge_relations.tolist(), strict=True
    ):
        candidates = {d for d, r in NEIGHBOURS[node_of[target]] if r == relation}
        assert candidates
    decoded = [
        tokenizer.decode(row[mask.bool()][1:-1])
        for row, mask in zip(batch.name_input_ids, batch.name_attention_mask, strict=True)
    ]
    for g, row in enumerate(batch.graph_node_names.tolist()[:n]):
        assert decoded[row] in names[node_of[g]]
    neighbour_ids = batch.neighbour_node_ids.tolist()
    for j, (src, tgt) in enumerate(batch.graph_edge_index.T.tolist()):
        relation = batch.graph_edge_relations[j].item()
        name = decoded[batch.graph_node_names[src].item()]
        assert (neighbour_ids[j], relation) in NEIGHBOURS[node_of[tgt]]
        assert name in names[neighbour_ids[j]]
    assert files.array(layout.GRAPH_INDPTR).shape[0] == files.manifest["counts"]["target_nodes"] + 1


def test_name_rows_are_deduplicated(dataset: BaliDataset) -> None:
    batch = _batch(dataset, range(len(dataset)))
    rows = [
        tuple(r[m.bool()].tolist())
        for r, m in zip(batch.name_input_ids, batch.name_attention_mask, strict=True)
    ]
    assert len(rows) == len(set(rows))
    assert batch.name_input_ids.shape[0] < batch.graph_node_names.shape[0]  # shared rows are encoded once
    assert sorted(set(batch.graph_node_names.tolist())) == list(range(len(rows)))


def test_sampling_without_replacement_is_uniform() -> None:
    # One target of degree 5 with k = 3, another of degree 2: drawn over many keys.
    indptr = np.array([0, 5, 7])
    counts: Counter = Counter()
    base = base_key(29, 0)
    keys = np.arange(6000)
    targets = np.zeros(6000, dtype=np.int64)
    owner, edges = sample_neighbours(indptr, targets, 3, base, keys, np.zeros(6000, np.int64))
    assert np.array_equal(np.bincount(owner), np.full(6000, 3))
    per_target = edges.reshape(6000, 3)
    assert all(len(set(row)) == 3 for row in per_target.tolist())
    counts.update(edges.tolist())
    assert set(counts) == set(range(5))
    for edge in range(5):
        assert abs(counts[edge] / 6000 - 3 / 5) < 0.03
    owner, edges = sample_neighbours(
        indptr, np.array([1, 1]), 3, base, np.array([0, 1]), np.zeros(2, np.int64)
    )
    assert owner.tolist() == [0, 0, 1, 1] and sorted(edges.tolist()[:2]) == [5, 6]
    owner, edges = sample_neighbours(indptr, np.array([0]), 0, base, np.array([0]), np.zeros(1, np.int64))
    assert owner.size == 0 and edges.size == 0


def test_batches_are_deterministic_and_layout_independent(dataset: BaliDataset) -> None:
    first = _batch(dataset, [3, 7, 11], epoch=2, graph_format="linear")
    assert _equal(first, _batch(dataset, [3, 7, 11], epoch=2, graph_format="linear"))
    assert not _equal(first, _batch(dataset, [3, 7, 11], epoch=3, graph_format="linear"))
    assert not _equal(first, _batch(dataset, [3, 7, 11], epoch=2, seed=30, graph_format="linear"))
    # Sample 7 gets the same masking whichever batch it lands in.
    alone = _batch(dataset, [7], epoch=2)
    length = int(alone.attention_mask.sum())
    assert torch.equal(alone.input_ids[0, :length], first.input_ids[1, :length])
    assert torch.equal(alone.mlm_labels[0, :length], first.mlm_labels[1, :length])


def test_dataloader_workers_give_identical_batches(dataset: BaliDataset) -> None:
    collator = BaliCollator.from_dataset(dataset)
    collator.set_epoch(1)
    runs = []
    for workers in (0, 2):
        loader = DataLoader(dataset, batch_size=16, shuffle=False, num_workers=workers, collate_fn=collator)
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) > 1
    assert all(_equal(a, b) for a, b in zip(*runs, strict=True))


def test_masking_proportions() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(400, 128))
    maskable = np.ones_like(ids, dtype=bool)
    maskable[:, 0] = maskable[:, -1] = False  # [CLS] / [SEP]
    maskable[:, 100:] = False  # padding
    corrupted, labels = mask_tokens(ids, maskable, base_key(1, 0), np.arange(400), 0.15, 103, 30522)
    selected = labels != -100
    assert not selected[~maskable].any() and np.array_equal(corrupted[~maskable], ids[~maskable])
    assert abs(selected.sum() / maskable.sum() - 0.15) < 0.01
    assert np.array_equal(labels[selected], ids[selected])
    masked = (corrupted == 103) & selected
    kept = (corrupted == ids) & selected
    assert abs(masked.sum() / selected.sum() - 0.8) < 0.02
    assert abs(kept.sum() / selected.sum() - 0.1) < 0.02  # a random draw may equal the original: rare
    assert np.array_equal(corrupted[~selected], ids[~selected])


def test_batch_masking_skips_special_tokens(dataset: BaliDataset) -> None:
    batch = _batch(dataset, range(len(dataset)), mlm_probability=1.0)
    special = set(dataset.files.special["special_ids"])
    selected = batch.mlm_labels != -100
    original = torch.where(selected, batch.mlm_labels, batch.input_ids)
    assert not any(t in special for t in batch.mlm_labels[selected].tolist())
    assert int(selected.sum()) == sum(
        1 for t in original[batch.attention_mask.bool()].tolist() if t not in special
    )
    assert not selected[batch.attention_mask == 0].any()
    assert _batch(dataset, range(4), mlm_probability=0.0).mlm_labels.eq(-100).all()


def test_linear_graph_sequences(dataset: BaliDataset) -> None:
    tokenizer = load_tokenizer("builtin")
    batch = _batch(dataset, range(6), graph_format="linear")
    n = batch.num_entities
    assert batch.linear_input_ids.shape[0] == n
    names = [
        tokenizer.decode(row[mask.bool()][1:-1])
        for row, mask in zip(batch.name_input_ids, batch.name_attention_mask, strict=True)
    ]
    phrases = [r["phrase"].lower() for r in dataset.files.relations]
    for e in range(n):
        target = names[batch.graph_node_names[e]]
        expected = f"[CLS] {target} [SEP]"
        for j in (batch.graph_edge_index[1] == e).nonzero().flatten().tolist():
            neighbour = names[batch.graph_node_names[n + j]]
            expected += f" {neighbour} {phrases[batch.graph_edge_relations[j]]} {target} [SEP]"
        row = batch.linear_input_ids[e][batch.linear_attention_mask[e].bool()]
        assert tokenizer.decode(row) == expected
    short = _batch(dataset, range(6), graph_format="linear", linear_max_length=8)
    assert short.linear_input_ids.shape[1] <= 8
    lengths = short.linear_attention_mask.sum(1)
    assert all(short.linear_input_ids[i, lengths[i] - 1] == tokenizer.sep_token_id for i in range(n))


def test_dataset_and_collator_pickle_as_paths(dataset: BaliDataset) -> None:
    import pickle

    collator = BaliCollator.from_dataset(dataset, graph_format="linear")
    collator.set_epoch(4)
    expected = collator([dataset[i] for i in range(5)])
    dataset_copy, collator_copy = pickle.loads(pickle.dumps((dataset, collator)))
    assert len(pickle.dumps(dataset)) < 20_000  # memory maps are reopened, never copied
    assert _equal(expected, collator_copy([dataset_copy[i] for i in range(5)]))


def test_neighbours_are_distinct_nodes_sampled_uniformly_with_one_of_their_relations(
    dataset: BaliDataset,
) -> None:
    # Aspirin (node 0) has 5 distinct neighbours over 6 edges (headache under two relations): with
    # k = 3 every neighbour id is drawn with probability 3/5, whatever its number of relations, and
    # the headache edge carries each of its two relations about half the time.
    aspirin = [
        i for i in range(len(dataset)) if 0 in dataset.files.array(layout.NODES)[dataset[i].entity_nodes]
    ]
    drawn: Counter = Counter()
    headache_relations: Counter = Counter()
    targets = 0
    for epoch in range(40):
        batch = _batch(dataset, aspirin, epoch=epoch)
        owners = batch.graph_edge_index[1].tolist()
        for target, node in enumerate(batch.entity_node_ids.tolist()):
            picked = [j for j, owner in enumerate(owners) if owner == target]
            neighbours = batch.neighbour_node_ids[picked].tolist()
            assert len(neighbours) == len(set(neighbours))  # no target's neighbours repeat a node
            if node == 0:
                targets += 1
                assert len(neighbours) == 3
                drawn.update(neighbours)
                headache_relations.update(
                    batch.graph_edge_relations[j].item() for j in picked if batch.neighbour_node_ids[j] == 1
                )
    assert set(drawn) == {0, 1, 2, 3, 4}
    for node in range(5):
        assert abs(drawn[node] / targets - 3 / 5) < 0.06
    assert set(headache_relations) == {0, 2}
    assert abs(headache_relations[0] / sum(headache_relations.values()) - 0.5) < 0.1
    counts = dataset.files.manifest["counts"]
    assert counts["neighbour_pairs_with_several_relations"] == 1
    assert counts["edges"] - counts["neighbour_pairs"] == 1


def test_tokens_of_one_mention_never_carry_labels_that_are_each_others_negatives(
    dataset: BaliDataset,
) -> None:
    # "Paracetamol" is linked to two nodes (3 and 0): two entities over the same tokens.
    batch = _batch(dataset, range(len(dataset)))
    positions, entities = batch.mention_token_index.tolist()
    tokens: dict[int, set[int]] = {}
    for position, entity in zip(positions, entities, strict=True):
        tokens.setdefault(entity, set()).add(position)
    labels = batch.entity_labels.tolist()
    shared = 0
    for a in tokens:
        for b in tokens:
            if a < b and tokens[a] & tokens[b]:
                shared += 1
                assert labels[a] == labels[b]
                assert not (tokens[a] == tokens[b] and batch.text_distinct[b])  # one anchor per mention
    assert shared > 0
    nodes = batch.entity_node_ids.tolist()
    assert {labels[e] for e in range(len(nodes)) if nodes[e] in (0, 3)} == {0}  # the group's smallest id
    assert all(label == node for label, node in zip(labels, nodes, strict=True) if node not in (0, 3))
    neighbour_labels = batch.neighbour_labels.tolist()
    for node, label in zip(batch.neighbour_node_ids.tolist(), neighbour_labels, strict=True):
        assert label == (0 if node in (0, 3) else node)
