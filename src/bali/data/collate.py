"""Batch assembly: MLM masking, mention index, subgraph sampling and deduplicated name matrix.

Everything is vectorised numpy over the whole batch and keyed randomness (see
:mod:`bali.data.masking`): a batch is a pure function of (seed, epoch, the items' dataset indices).
Because DataLoader workers hold a copy of the collator, call :meth:`BaliCollator.set_epoch` before
creating each epoch's iterator (as with ``DistributedSampler``); with ``persistent_workers=True``
the workers would keep the epoch they were started with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol

import numpy as np
import torch

from bali.data import layout
from bali.data.batch import BaliBatch, BaliItem
from bali.data.labels import entity_labels
from bali.data.layout import exclusive_cumsum
from bali.data.masking import STREAM_NAME, STREAM_RELATION, base_key, mask_tokens
from bali.data.subgraph import gather_sequences, linearise, pick_from_rows, sample_neighbours
from bali.errors import BadInputError

GraphFormat = Literal["star", "linear"]


class HasDatasetFiles(Protocol):
    """What the collator needs of a dataset (``BaliDataset`` or any view of a dataset directory)."""

    files: layout.DatasetFiles


class BaliCollator:
    """Turns a list of :class:`~bali.data.batch.BaliItem` into a :class:`BaliBatch`."""

    def __init__(
        self,
        files: layout.DatasetFiles,
        neighbours: int = 3,
        mlm_probability: float = 0.15,
        graph_format: GraphFormat = "star",
        seed: int = 29,
        linear_max_length: int = 128,
    ) -> None:
        if graph_format not in ("star", "linear"):
            raise BadInputError(f"graph_format must be 'star' or 'linear', got '{graph_format}'")
        if neighbours < 0 or not 0.0 <= mlm_probability <= 1.0 or linear_max_length < 4:
            raise BadInputError(
                "need neighbours >= 0, 0 <= mlm_probability <= 1 and linear_max_length >= 4, got "
                f"{neighbours}, {mlm_probability}, {linear_max_length}"
            )
        self.files = files
        self.neighbours = neighbours
        self.mlm_probability = mlm_probability
        self.graph_format = graph_format
        self.seed = seed
        self.linear_max_length = linear_max_length
        self.epoch = 0
        special = files.special
        self.pad_id = int(special["pad_token_id"])
        self.mask_id = int(special["mask_token_id"])
        self.cls_id = int(special["cls_token_id"])
        self.sep_id = int(special["sep_token_id"])
        self.vocab_size = int(special["vocab_size"])
        self.special_ids = np.asarray(special["special_ids"], dtype=np.int64)
        self.name_prefix = len(special["prefix"])
        self.name_suffix = len(special["suffix"])

    @classmethod
    def from_dataset(
        cls,
        dataset: HasDatasetFiles,
        neighbours: int = 3,
        mlm_probability: float = 0.15,
        graph_format: GraphFormat = "star",
        seed: int = 29,
        linear_max_length: int = 128,
    ) -> BaliCollator:
        return cls(dataset.files, neighbours, mlm_probability, graph_format, seed, linear_max_length)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose masks and subgraphs the next batches get."""
        self.epoch = int(epoch)

    def __call__(self, items: Sequence[BaliItem]) -> BaliBatch:
        base = base_key(self.seed, self.epoch)
        keys = np.fromiter((it.index for it in items), dtype=np.int64, count=len(items))
        corrupted, attention, labels = self._sentences(items, base, keys)
        mention_index, targets, entity_keys, entity_slots = _entities(items, keys, attention.shape[1])
        graph = self._subgraph(targets, base, entity_keys, entity_slots)
        num_entities = len(targets)
        contrastive = entity_labels(
            mention_index, graph.node_ids[:num_entities], graph.node_ids[num_entities:]
        )
        batch = BaliBatch(
            input_ids=torch.from_numpy(corrupted),
            attention_mask=torch.from_numpy(attention),
            mlm_labels=torch.from_numpy(labels),
            mention_token_index=torch.from_numpy(mention_index.astype(np.int64)),
            entity_node_ids=torch.from_numpy(graph.node_ids[:num_entities]),
            name_input_ids=torch.from_numpy(graph.name_ids),
            name_attention_mask=torch.from_numpy(graph.name_mask),
            graph_node_names=torch.from_numpy(graph.node_names.astype(np.int64)),
            graph_edge_index=torch.from_numpy(
                np.stack([num_entities + np.arange(len(graph.owner), dtype=np.int64), graph.owner])
            ),
            graph_edge_relations=torch.from_numpy(graph.relations),
            neighbour_node_ids=torch.from_numpy(graph.node_ids[num_entities:]),
            entity_labels=torch.from_numpy(contrastive.entity),
            neighbour_labels=torch.from_numpy(contrastive.neighbour),
            text_distinct=torch.from_numpy(contrastive.text_distinct),
        )
        if self.graph_format == "linear":
            ids, mask = self._linearise(graph, num_entities)
            batch.linear_input_ids = torch.from_numpy(ids)
            batch.linear_attention_mask = torch.from_numpy(mask)
        return batch

    def _sentences(
        self, items: Sequence[BaliItem], base: np.ndarray, keys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pad the sentences, then MLM-mask them: (corrupted ids, attention mask, labels), all [B, L].

        Special tokens (incl. [UNK], as in HF's MLM collator) and padding are never selected.
        """
        batch_size = len(items)
        lengths = np.fromiter((len(it.input_ids) for it in items), dtype=np.int64, count=batch_size)
        width = int(lengths.max(initial=0))
        rows = np.repeat(np.arange(batch_size), lengths)
        cols = np.arange(int(lengths.sum())) - np.repeat(exclusive_cumsum(lengths)[:-1], lengths)
        input_ids = np.full((batch_size, width), self.pad_id, dtype=np.int64)
        input_ids[rows, cols] = _cat([it.input_ids for it in items])
        attention = np.zeros((batch_size, width), dtype=np.int64)
        attention[rows, cols] = 1
        maskable = attention.astype(bool) & ~np.isin(input_ids, self.special_ids)
        corrupted, labels = mask_tokens(
            input_ids, maskable, base, keys, self.mlm_probability, self.mask_id, self.vocab_size
        )
        return corrupted, attention, labels

    def _subgraph(
        self, targets: np.ndarray, base: np.ndarray, entity_keys: np.ndarray, entity_slots: np.ndarray
    ) -> _Subgraph:
        """Up to k distinct neighbours per entity (one random relation each), one random name per node."""
        files = self.files
        owner, pairs = sample_neighbours(
            files.array(layout.GRAPH_INDPTR), targets, self.neighbours, base, entity_keys, entity_slots
        )
        neighbour_nodes = np.asarray(files.array(layout.GRAPH_INDICES)[pairs], dtype=np.int64)
        per_target = np.bincount(owner, minlength=len(targets))
        draw_in_owner = np.arange(len(owner)) - np.repeat(exclusive_cumsum(per_target)[:-1], per_target)
        relations = pick_from_rows(
            files.array(layout.GRAPH_RELATION_OFFSETS),
            files.array(layout.GRAPH_RELATIONS),
            pairs,
            base,
            STREAM_RELATION,
            entity_keys[owner],
            entity_slots[owner],
            draw_in_owner,
        )
        graph_nodes = np.concatenate([targets, neighbour_nodes])
        name_rows = pick_from_rows(
            files.array(layout.NODE_NAMES_INDPTR),
            files.array(layout.NODE_NAME_ROWS),
            graph_nodes,
            base,
            STREAM_NAME,
            np.concatenate([entity_keys, entity_keys[owner]]),
            np.concatenate([entity_slots, entity_slots[owner]]),
            np.concatenate([np.zeros(len(targets), np.int64), 1 + draw_in_owner]),
        )
        distinct, graph_node_names = np.unique(name_rows, return_inverse=True)
        name_ids, name_mask = gather_sequences(
            files.array(layout.NAME_INPUT_IDS), files.array(layout.NAME_OFFSETS), distinct, self.pad_id
        )
        node_ids = np.asarray(files.array(layout.NODES)[graph_nodes], dtype=np.int64)
        return _Subgraph(owner, draw_in_owner, relations, node_ids, graph_node_names, name_ids, name_mask)

    def _linearise(self, graph: _Subgraph, num_entities: int) -> tuple[np.ndarray, np.ndarray]:
        """The linear-graph sequences of the sampled subgraph (see :func:`linearise`)."""
        return linearise(
            graph.name_ids,
            graph.name_mask.sum(axis=1),
            (self.name_prefix, self.name_suffix),
            graph.node_names,
            num_entities,
            graph.owner,
            graph.draw_in_owner,
            graph.relations,
            self.files.array(layout.RELATION_INPUT_IDS),
            self.files.array(layout.RELATION_OFFSETS),
            (self.cls_id, self.sep_id, self.pad_id),
            self.linear_max_length,
        )


class _Subgraph(NamedTuple):
    """The sampled star subgraphs of a batch: N targets, then one graph node per sampled edge."""

    owner: np.ndarray  # [N_nb] target (entity index) of each sampled edge, grouped by target
    draw_in_owner: np.ndarray  # [N_nb] rank of the edge among its target's draws
    relations: np.ndarray  # [N_nb] relation id of each edge
    node_ids: np.ndarray  # [N + N_nb] KG node id of each graph node
    node_names: np.ndarray  # [N + N_nb] row of the name matrix of each graph node
    name_ids: np.ndarray  # [U, Lc] distinct names
    name_mask: np.ndarray  # [U, Lc]


def _entities(
    items: Sequence[BaliItem], keys: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mention tokens -> batch entity index (one entity per (sentence, concept)).

    Returns the [2, E] mention index (flat token position, entity), the entities' node ids and, per
    entity, its sample key and slot within its sentence (what its random draws are keyed by).
    """
    batch_size = len(items)
    mention_counts = np.fromiter((len(it.mention_positions) for it in items), np.int64, batch_size)
    entity_counts = np.fromiter((len(it.entity_nodes) for it in items), np.int64, batch_size)
    entity_offsets = exclusive_cumsum(entity_counts)
    positions = _cat([it.mention_positions for it in items])
    mention_owner = np.repeat(np.arange(batch_size), mention_counts)
    mention_index = np.stack(
        [
            mention_owner * width + positions,
            _cat([it.mention_entities for it in items]) + entity_offsets[mention_owner],
        ]
    )
    targets = _cat([it.entity_nodes for it in items])
    entity_keys = np.repeat(keys, entity_counts)
    entity_slots = np.arange(len(targets), dtype=np.int64) - np.repeat(entity_offsets[:-1], entity_counts)
    return mention_index, targets, entity_keys, entity_slots


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenate int arrays as int64 (an empty list gives an empty array)."""
    return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, dtype=np.int64)
