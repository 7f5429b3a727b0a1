"""Alignment and uniformity estimates (Wang & Isola 2020) logged at validation."""

from __future__ import annotations

import math

import pytest
import torch

from bali.model.geometry import GeometryMeter, _alignment_sum, _uniformity_sum


def test_alignment_is_the_mean_squared_distance_of_unit_rows() -> None:
    a = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    assert _alignment_sum(a, a * 5) == (0.0, 2.0)
    total, count = _alignment_sum(a, torch.tensor([[0.0, 1.0], [0.0, -1.0]]))
    assert count == 2 and total == pytest.approx(2.0 + 4.0)  # orthogonal: |d|² = 2; opposite: 4


def test_uniformity_counts_pairs_of_different_labels_only() -> None:
    eye = torch.eye(3)
    total, count = _uniformity_sum(eye)
    assert count == 3 and total == pytest.approx(3 * math.exp(-4.0))  # orthogonal pairs: d² = 2
    total, count = _uniformity_sum(torch.cat([eye[:1], eye]), torch.tensor([7, 7, 8, 9]))
    assert count == 5  # the identical pair shares a label and is left out
    collapsed, _ = _uniformity_sum(torch.ones(3, 2))
    assert collapsed == pytest.approx(3.0)  # all rows equal: exp(0) per pair, log-mean 0


def test_meter_reduces_sums_into_log_means() -> None:
    meter = GeometryMeter(torch.device("cpu"))
    meter.sums += torch.tensor([1.0, 2.0, 3 * math.exp(-4.0), 3.0, 0.0, 0.0, 2.0, 2.0], dtype=torch.float64)
    result = meter.result(lambda t: t * 2)  # as if two processes had the same sums
    assert result["align_text_graph"] == pytest.approx(0.5)
    assert result["uniform_text"] == pytest.approx(-4.0)
    assert result["uniform_names"] == pytest.approx(0.0)
    assert "uniform_graph" not in result  # no pairs: no estimate rather than a made-up one
