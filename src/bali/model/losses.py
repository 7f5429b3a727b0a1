"""Cross-modal alignment losses over text and graph embeddings labelled with concept ids.

Both losses follow ``pytorch_metric_learning`` (v2.3, what the reference used) with cosine
similarity: every ordered pair ``(a, p)``, ``a != p``, with the same label is a positive (within and
across modalities), every pair with different labels a negative. They are reimplemented here in a
few lines so the dependency is not needed and the semantics are pinned by tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive (same label, not the diagonal) and negative (different label) masks, [M, M]."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.numel(), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def info_nce_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 0.07,
    extra_negatives: torch.Tensor | None = None,
    extra_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """NT-Xent / InfoNCE with several positives per anchor, averaged over positive pairs.

    For a positive pair (a, p): ``-log(exp(s_ap/t) / (exp(s_ap/t) + sum_n exp(s_an/t)))`` where n runs
    over the anchor's negatives only; the anchor's other positives are *not* in the denominator.
    Computed as ``softplus(logsumexp_n(s_an/t) - s_ap/t)``, which is the same quantity without
    overflow. No positive pairs (or no negatives at all) gives zero, as in pytorch_metric_learning.
    ``extra_negatives`` [K, d] (labelled ``extra_labels``) only join the denominators, as negatives of
    the anchors whose label differs; they are never anchors or positives themselves.
    """
    z = F.normalize(embeddings.float(), dim=-1)
    logits = z @ z.T / temperature
    positive, negative = _pair_masks(labels)
    if not bool(positive.any()):
        return logits.sum() * 0.0
    if extra_negatives is not None and extra_labels is not None and extra_labels.numel():
        extra = F.normalize(extra_negatives.float(), dim=-1)
        logits = torch.cat([logits, z @ extra.T / temperature], dim=1)
        negative = torch.cat([negative, labels.unsqueeze(1) != extra_labels.unsqueeze(0)], dim=1)
    neg_lse = torch.logsumexp(logits.masked_fill(~negative, float("-inf")), dim=1)  # [M], -inf if none
    anchor, other = positive.nonzero(as_tuple=True)
    return F.softplus(neg_lse[anchor] - logits[anchor, other]).mean()


def multi_similarity_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
) -> torch.Tensor:
    """Multi-Similarity loss (Wang et al. 2019) without mining, averaged over all anchors.

    ``(1/alpha) log(1 + sum_p exp(-alpha (s_ap - base))) + (1/beta) log(1 + sum_n exp(beta (s_an - base)))``;
    an anchor without positives (or negatives) contributes zero for that term.
    """
    z = F.normalize(embeddings.float(), dim=-1)
    sim = z @ z.T
    positive, negative = _pair_masks(labels)
    zero = sim.new_zeros(sim.shape[0], 1)  # the "1 +" inside the log, as log(exp(0))
    pos_terms = (-alpha * (sim - base)).masked_fill(~positive, float("-inf"))
    neg_terms = (beta * (sim - base)).masked_fill(~negative, float("-inf"))
    pos_loss = torch.logsumexp(torch.cat([zero, pos_terms], dim=1), dim=1) / alpha
    neg_loss = torch.logsumexp(torch.cat([zero, neg_terms], dim=1), dim=1) / beta
    return (pos_loss + neg_loss).mean()
