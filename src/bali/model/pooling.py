"""Mean pooling over the real tokens of a padded batch, shared by training and evaluation.

Training (name features, the sentence anchor) and evaluation (linking, probes) must pool the same
way, or an encoder is judged on a representation it was not trained on.
"""

from __future__ import annotations

import torch


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` [B, L, d] over the positions where ``mask`` [B, L] is non-zero, [B, d].

    A row without any real token pools to zeros rather than NaN.
    """
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
