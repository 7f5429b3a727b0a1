"""Fixtures for model tests: a tiny random BERT config and random but well-formed BaliBatches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from bali.data.batch import BaliBatch
from bali.model.config import ModelConfig

CLS, SEP, MASK = 101, 102, 103


def random_batch(
    seed: int = 0,
    sentences: int = 4,
    length: int = 16,
    concepts: int = 6,
    neighbours: int = 2,
    vocab: int = 1000,
    linear: bool = False,
) -> BaliBatch:
    """A batch with 1-2 entities per sentence, star subgraphs and deduplicated names."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1000, 1000 + vocab, (sentences, length), generator=gen)
    input_ids[:, 0], input_ids[:, -1] = CLS, SEP
    labels = torch.full_like(input_ids, -100)
    select = torch.rand(sentences, length, generator=gen) < 0.2
    select[:, 0] = select[:, -1] = False
    labels[select] = input_ids[select]
    input_ids[select] = MASK
    positions, entity_of_token, node_ids = [], [], []
    for b in range(sentences):
        chosen = torch.randperm(concepts, generator=gen)[: 1 + b % 2]
        for j, concept in enumerate(chosen.tolist()):
            start = 1 + 3 * j
            for t in range(start, start + 2):
                positions.append(b * length + t)
                entity_of_token.append(len(node_ids))
            node_ids.append(concept)
    name_rows = torch.arange(concepts)  # name row of concept c is c (one synonym each)
    graph_nodes = [name_rows[c] for c in node_ids]
    edges = [[], []]
    for target, concept in enumerate(node_ids):
        for step in range(1, neighbours + 1):
            edges[0].append(len(graph_nodes))
            edges[1].append(target)
            graph_nodes.append(name_rows[(concept + step) % concepts])
    edge_index = torch.tensor(edges, dtype=torch.long).reshape(2, -1)
    name_len = 6
    names = torch.randint(1000, 1000 + vocab, (concepts, name_len), generator=gen)
    names[:, 0] = CLS
    name_mask = torch.ones_like(names)
    for c in range(concepts):  # names of varying length, padded with 0 after [SEP]
        end = 3 + c % (name_len - 3)
        names[c, end] = SEP
        names[c, end + 1 :] = 0
        name_mask[c, end + 1 :] = 0
    linear_ids = linear_mask = None
    if linear:
        linear_ids = torch.cat(
            [names[torch.tensor(node_ids)], names[(torch.tensor(node_ids) + 1) % concepts]], 1
        )
        linear_mask = (linear_ids != 0).long()
    return BaliBatch(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        mlm_labels=labels,
        mention_token_index=torch.tensor([positions, entity_of_token], dtype=torch.long),
        entity_node_ids=torch.tensor(node_ids, dtype=torch.long),
        name_input_ids=names,
        name_attention_mask=name_mask,
        graph_node_names=torch.stack(graph_nodes).long(),
        graph_edge_index=edge_index,
        graph_edge_relations=torch.zeros(edge_index.shape[1], dtype=torch.long),
        neighbour_node_ids=torch.stack(graph_nodes[len(node_ids) :]).long().reshape(-1),
        linear_input_ids=linear_ids,
        linear_attention_mask=linear_mask,
    )


@pytest.fixture
def make_batch() -> Callable[..., BaliBatch]:
    return random_batch


@pytest.fixture
def tiny_model_config() -> Callable[..., ModelConfig]:
    def build(**overrides: object) -> ModelConfig:
        base = {"gnn_layers": 2, "gnn_heads": 2, "dropout": 0.0, "attention_dropout": 0.0}
        return ModelConfig.model_validate({**base, **overrides})

    return build
