"""The item the dataset yields, and the batch the collator makes of items and the model consumes.

Both live here, below the dataset and the collator, so that neither module imports the other
(see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass(frozen=True, slots=True)
class BaliItem:
    """One sentence: token ids with [CLS]/[SEP], (position, entity) pairs and its entities.

    ``index`` is the sentence's position in the whole dataset (both splits); the collator keys all
    randomness of this sample on it, so an item is corrupted and sampled the same way whichever
    worker or batch it lands in.
    """

    index: int
    input_ids: np.ndarray  # [L] int32
    mention_positions: np.ndarray  # [E] int32 token positions
    mention_entities: np.ndarray  # [E] int32 sentence-local entity index
    entity_nodes: np.ndarray  # [N] int32 dataset-local node ids (see layout.NODES)


@dataclass
class BaliBatch:
    """One training batch: MLM-corrupted sentences, mention-to-entity index and entity subgraphs.

    For B sentences of padded length L, N entities (one per (sentence, concept)), N_nb sampled
    neighbours and U distinct name sequences. Graph nodes are the N targets followed by the N_nb
    neighbours; each points at a row of the (deduplicated) name matrix, so a name that occurs many
    times in a batch is encoded once.
    """

    input_ids: torch.Tensor  # [B, L] MLM-corrupted token ids
    attention_mask: torch.Tensor  # [B, L]
    mlm_labels: torch.Tensor  # [B, L] original ids at MLM-selected positions, -100 elsewhere
    mention_token_index: torch.Tensor  # [2, E] (flat position b * L + t, entity index)
    entity_node_ids: torch.Tensor  # [N] KG node id of each entity
    name_input_ids: torch.Tensor  # [U, Lc] distinct names, [CLS] name [SEP]
    name_attention_mask: torch.Tensor  # [U, Lc]
    graph_node_names: torch.Tensor  # [N + N_nb] row of the name matrix of each graph node
    graph_edge_index: torch.Tensor  # [2, N_nb] neighbour (N + j) -> target (< N)
    graph_edge_relations: torch.Tensor  # [N_nb] relation id of each edge
    neighbour_node_ids: torch.Tensor  # [N_nb] KG node id of each sampled neighbour
    # Contrastive labels (see bali.data.labels): entities over the same mention tokens share one;
    # None (a hand-built batch) means the node ids.
    entity_labels: torch.Tensor | None = None  # [N]
    neighbour_labels: torch.Tensor | None = None  # [N_nb]
    text_distinct: torch.Tensor | None = None  # [N] bool, False: same tokens as an earlier entity
    linear_input_ids: torch.Tensor | None = None  # [N, Lg] linear-graph mode only
    linear_attention_mask: torch.Tensor | None = None  # [N, Lg]

    @property
    def num_entities(self) -> int:
        return int(self.entity_node_ids.numel())

    @property
    def labels(self) -> torch.Tensor:
        """Contrastive label of each entity (its node id unless ``entity_labels`` is set)."""
        return self.entity_node_ids if self.entity_labels is None else self.entity_labels

    @property
    def negative_labels(self) -> torch.Tensor:
        """Contrastive label of each sampled neighbour (see :attr:`labels`)."""
        return self.neighbour_node_ids if self.neighbour_labels is None else self.neighbour_labels

    @property
    def num_sentences(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> BaliBatch:
        """Move every tensor to ``device`` (non-blocking where possible)."""
        moved = {}
        for field in fields(self):
            value = getattr(self, field.name)
            moved[field.name] = (
                value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
            )
        return BaliBatch(**moved)
