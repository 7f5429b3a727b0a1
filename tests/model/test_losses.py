"""Alignment losses against hand computation and a literal pair-by-pair definition."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bali.model.losses import info_nce_loss, multi_similarity_loss


def _literal_info_nce(z: torch.Tensor, labels: list[int], tau: float, anchors: int | None = None) -> float:
    """pytorch_metric_learning's NTXentLoss semantics, written as loops over ordered pairs.

    Only the first ``anchors`` rows (default: all) are anchors and positives; the rest are negatives.
    """
    z = F.normalize(z, dim=-1)
    s = (z @ z.T).tolist()
    anchors = len(labels) if anchors is None else anchors
    losses = []
    for a in range(anchors):
        negatives = [math.exp(s[a][n] / tau) for n in range(len(labels)) if labels[n] != labels[a]]
        for p in range(anchors):
            if p != a and labels[p] == labels[a]:
                pos = math.exp(s[a][p] / tau)
                losses.append(-math.log(pos / (pos + sum(negatives))))
    return sum(losses) / len(losses)


def test_info_nce_matches_hand_computed_value() -> None:
    # Two concepts, text e and graph g for each: unit vectors at known angles.
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    g = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    tau = 0.5
    loss = info_nce_loss(torch.cat([e, g]), torch.tensor([7, 9, 7, 9]), temperature=tau)
    c = 1 / math.sqrt(2)
    # similarities: e0.e1=0, e0.g0=c, e0.g1=0, e1.g0=c, e1.g1=1, g0.g1=c
    pairs = [  # (s_ap, [s_an ...]) for each ordered positive pair
        (c, [0.0, 0.0]),  # e0 -> g0, negatives e1, g1
        (1.0, [0.0, c]),  # e1 -> g1, negatives e0, g0
        (c, [c, c]),  # g0 -> e0, negatives e1, g1
        (1.0, [0.0, c]),  # g1 -> e1, negatives e0, g0
    ]
    expected = sum(
        -math.log(math.exp(p / tau) / (math.exp(p / tau) + sum(math.exp(n / tau) for n in ns)))
        for p, ns in pairs
    ) / len(pairs)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_with_repeated_concepts_matches_the_literal_definition() -> None:
    torch.manual_seed(0)
    z = torch.randn(10, 8, dtype=torch.float64)
    labels = [1, 2, 1, 3, 2, 1, 2, 1, 3, 4]  # 4 has no positive: it only serves as a negative
    got = info_nce_loss(z, torch.tensor(labels), temperature=0.07).item()
    assert got == pytest.approx(_literal_info_nce(z, labels, 0.07), rel=1e-5)


def test_info_nce_degenerate_cases_are_zero_and_differentiable() -> None:
    z = torch.randn(4, 3, requires_grad=True)
    assert info_nce_loss(z, torch.tensor([0, 1, 2, 3])).item() == 0.0  # no positives
    loss = info_nce_loss(z, torch.tensor([5, 5, 5, 5]))  # no negatives: nothing to push apart
    loss.backward()
    assert loss.item() == 0.0 and z.grad is not None


def test_info_nce_rewards_alignment() -> None:
    aligned = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    crossed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1, 0, 1])
    assert info_nce_loss(aligned, labels) < 1e-3 < info_nce_loss(crossed, labels)


def test_multi_similarity_hand_computed_and_sane() -> None:
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    a, b, lam = 2.0, 50.0, 0.5
    # anchors 0 and 1: one positive at s=1, one negative at s=0; anchor 2: no positive, two negatives at 0.
    pos = math.log(1 + math.exp(-a * (1 - lam))) / a
    neg1 = math.log(1 + math.exp(b * (0 - lam))) / b
    neg2 = math.log(1 + 2 * math.exp(b * (0 - lam))) / b
    expected = (2 * (pos + neg1) + neg2) / 3
    got = multi_similarity_loss(z, labels, a, b, lam).item()
    assert got == pytest.approx(expected, rel=1e-6)
    far = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # positives apart, negatives together
    assert multi_similarity_loss(far, labels).item() > got


def test_info_nce_extra_negatives_only_join_the_denominators_of_other_concepts() -> None:
    torch.manual_seed(0)
    z = torch.randn(6, 4)
    labels = torch.tensor([1, 2, 3, 1, 2, 3])
    extra = torch.randn(3, 4)
    everything = torch.cat([z, extra])
    for extra_labels in ([8, 8, 9], [1, 1, 2]):  # the second: concepts 1 and 2 never see their own names
        got = info_nce_loss(z, labels, 0.1, extra, torch.tensor(extra_labels))
        # The literal definition with the extra rows as negatives that are never anchors or positives.
        literal = _literal_info_nce(everything, [*labels.tolist(), *extra_labels], 0.1, anchors=6)
        assert got.item() == pytest.approx(literal, rel=1e-5)
    plain = info_nce_loss(z, labels, 0.1)
    assert info_nce_loss(z, labels, 0.1, extra, torch.tensor([8, 8, 9])) > plain
    assert info_nce_loss(z, labels, 0.1, extra[:0], torch.tensor([], dtype=torch.long)) == plain
