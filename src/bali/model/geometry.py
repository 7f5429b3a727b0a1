"""Alignment and uniformity (Wang & Isola, ICML 2020) of the embeddings BALI trains.

Logged at every validation so that drift is seen while it happens, not after a linking evaluation:

- ``align_text_graph``: mean squared distance between the unit-normalised mention embedding and the
  graph embedding of the same entity (lower: the two modalities agree);
- ``uniform_text``, ``uniform_graph``: log of the mean of exp(-2 d²) over pairs of different
  entities' mention (graph) embeddings of a batch (lower: spread over the sphere);
- ``uniform_names``: the same over the LM's own pooled encodings of a batch's distinct names (the
  space zero-shot linking searches). When these collapse towards 0, unrelated names drift together,
  as the mean cosine of unrelated names showed in benchmarks/demo.md.

Pairs are taken within a batch; the estimates are sums over batches (and processes) divided by
pair counts, so they do not depend on how the validation split is cut.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bali.model.config import GEOMETRY_KEYS

UNIFORMITY_T = 2.0


def _alignment_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Sum of squared distances between unit rows of ``a`` and ``b``, and the row count."""
    d = F.normalize(a.float(), dim=-1) - F.normalize(b.float(), dim=-1)
    return float(d.pow(2).sum()), float(a.shape[0])


def _uniformity_sum(x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[float, float]:
    """Sum of exp(-t d²) over pairs i < j of unit rows (of different labels, if given), and the count."""
    z = F.normalize(x.float(), dim=-1)
    d2 = torch.cdist(z, z).pow(2)
    pairs = torch.ones_like(d2, dtype=torch.bool).triu(diagonal=1)
    if labels is not None:
        pairs &= labels.unsqueeze(0) != labels.unsqueeze(1)
    return float(torch.exp(-UNIFORMITY_T * d2[pairs]).sum()), float(pairs.sum())


class GeometryMeter:
    """Accumulates the sums behind :data:`GEOMETRY_KEYS` over validation batches."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(2 * len(GEOMETRY_KEYS), dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, model: Any, batch: Any) -> None:
        """Add one batch (``model`` unwrapped from DDP, in eval mode)."""
        if batch.num_entities == 0:
            return
        text, graph, _ = model.embed(batch)
        names = model.encode_names(batch.name_input_ids, batch.name_attention_mask)
        labels = batch.labels
        parts = (
            _alignment_sum(text, graph),
            _uniformity_sum(text, labels),
            _uniformity_sum(graph, labels),
            _uniformity_sum(names),
        )
        self.sums += torch.tensor(
            [v for part in parts for v in part], dtype=torch.float64, device=self.sums.device
        )

    def result(self, reduce: Any) -> dict[str, float]:
        """The estimates after ``reduce`` (a sum over processes, e.g. ``accelerator.reduce``)."""
        totals = reduce(self.sums).tolist()
        out = {}
        for i, key in enumerate(GEOMETRY_KEYS):
            total, count = totals[2 * i], totals[2 * i + 1]
            if count > 0:
                mean = total / count
                out[key] = (
                    mean if key.startswith("align") else float(torch.tensor(mean).clamp(min=1e-30).log())
                )
        return out
