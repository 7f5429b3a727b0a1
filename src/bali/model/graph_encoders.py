"""Graph encoders that turn name features of a 1-hop star subgraph into a concept's graph embedding.

Nodes are the N targets followed by their sampled neighbours; edges go neighbour -> target. Both
encoders stack message-passing layers with dropout then GELU between them (the reference order) and
finish with an output head Linear -> LayerNorm(eps 1e-12) -> Dropout applied to the target rows only.
The linear-graph variant has no module here: the LM itself reads the linearised subgraph.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv, SAGEConv

from bali.errors import BadInputError
from bali.model.config import ModelConfig


class OutputHead(nn.Sequential):
    """Linear -> LayerNorm(eps 1e-12) -> Dropout, as in the reference's graph-encoder head."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__(nn.Linear(width, width), nn.LayerNorm(width, eps=1e-12), nn.Dropout(dropout))


class GraphEncoder(nn.Module):
    """Shared layer schedule of the GNN encoders; subclasses only choose the convolution."""

    kind = "gnn"

    def __init__(self, width: int, hidden: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.width = width
        self.hidden = hidden
        self.num_layers = num_layers
        sizes = [width] + [hidden] * (num_layers - 1) + [width]
        self.convs = nn.ModuleList(self.make_conv(i, o) for i, o in itertools.pairwise(sizes))
        self.dropout = nn.Dropout(dropout)
        self.act = nn.GELU()
        self.head = OutputHead(width, dropout)

    def make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, num_targets: int) -> torch.Tensor:
        """Node features [N + N_nb, width] and edges [2, N_nb] -> graph embeddings of the targets [N, width]."""
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = self.act(self.dropout(x))
        return self.head(x[:num_targets])

    def describe(self) -> dict[str, Any]:
        """What an exported ``graph_encoder_config.json`` needs to rebuild this module."""
        return {
            "kind": self.kind,
            "width": self.width,
            "hidden": self.hidden,
            "num_layers": self.num_layers,
            "dropout": self.dropout.p,
        }


class GATv2Encoder(GraphEncoder):
    """GATv2 layers (PyG ``GATv2Conv``): concatenated heads, shared source/target weights, self-loops.

    No ``edge_dim``: the reference passed one but never gave edge attributes, leaving an unused
    ``lin_edge`` matrix per layer that trips DDP's unused-parameter check.
    """

    kind = "gat"

    def __init__(
        self, width: int, hidden: int, num_layers: int, heads: int, dropout: float, attention_dropout: float
    ) -> None:
        self.heads = heads
        self.attention_dropout = attention_dropout
        super().__init__(width, hidden, num_layers, dropout)

    def make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return GATv2Conv(
            in_channels,
            out_channels // self.heads,
            heads=self.heads,
            concat=True,
            dropout=self.attention_dropout,
            add_self_loops=True,
            share_weights=True,
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "heads": self.heads, "attention_dropout": self.attention_dropout}


class GraphSAGEEncoder(GraphEncoder):
    """GraphSAGE layers (PyG ``SAGEConv``, mean aggregation, root weight): x_i' = W1 x_i + W2 mean_j x_j."""

    kind = "sage"

    def make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return SAGEConv(in_channels, out_channels, aggr="mean")


def build_graph_encoder(config: ModelConfig, width: int) -> GraphEncoder | None:
    """The encoder selected by ``config.graph_encoder`` for an LM of hidden size ``width``.

    Returns None for the linear graph (the LM is the encoder). Impossible shapes are bad input, so
    they surface before training instead of as a PyG shape error mid-step.
    """
    if config.graph_encoder == "linear":
        return None
    hidden = config.gnn_hidden or width
    if config.graph_encoder == "gat":
        for name, size in (("model.gnn_hidden", hidden), ("the LM width", width)):
            if size % config.gnn_heads:
                raise BadInputError(
                    f"model.gnn_heads={config.gnn_heads} does not divide {name} ({size}); "
                    "GATv2 heads are concatenated, so every layer width must be a multiple of the head count"
                )
        return GATv2Encoder(
            width, hidden, config.gnn_layers, config.gnn_heads, config.dropout, config.attention_dropout
        )
    return GraphSAGEEncoder(width, hidden, config.gnn_layers, config.dropout)
