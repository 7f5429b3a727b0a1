"""Paired comparison of two models' hits: discordant mentions and the exact McNemar p-value."""

from __future__ import annotations

import numpy as np
import pytest

from bali.evaluate.paired import first_of_each, mcnemar_exact_p, paired_comparisons


def test_paired_comparison_counts_discordant_mentions_and_their_exact_p() -> None:
    assert mcnemar_exact_p(5, 0) == pytest.approx(2 / 32)  # 5 coin flips all one way, two-sided
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(27, 18) == pytest.approx(0.2327, abs=1e-4)  # binomial(45, 1/2) tail
    base = np.array([True, True, False, False, True])
    hits = {
        ("base", "bc5", "mean", "zero-shot"): base,
        ("bali", "bc5", "mean", "zero-shot"): np.array([True, False, True, True, True]),
        ("bali", "bc5", "cls", "zero-shot"): base,  # no base row for cls: nothing to pair with
        ("bali", "ncbi", "mean", "zero-shot"): base,  # nor for another benchmark
    }
    (row,) = paired_comparisons(hits)
    assert (row["model"], row["against"], row["won"], row["lost"]) == ("bali", "base", 2, 1)
    assert row["p_value"] == 1.0
    assert row["benchmark"] == "bc5"
    assert (
        paired_comparisons({}) == [] and paired_comparisons({("base", "b", "mean", "zero-shot"): base}) == []
    )


def test_paired_comparison_over_distinct_pairs_counts_a_recurring_string_once() -> None:
    # mentions 0-2 are one string (one context-free decision, won three times); 3 won, 4 lost
    base = np.array([False, False, False, False, True])
    bali = np.array([True, True, True, True, False])
    hits = {
        ("base", "bc5", "mean", "zero-shot"): base,
        ("bali", "bc5", "mean", "zero-shot"): bali,
        ("base", "bc5", "mean", "in-context"): base,  # each occurrence its own decision: no mask
        ("bali", "bc5", "mean", "in-context"): bali,
    }
    first_of_pair = {("bc5", "zero-shot"): first_of_each(["a", "a", "a", "b", "c"])}
    assert first_of_pair["bc5", "zero-shot"].tolist() == [True, False, False, True, True]
    row, in_context = paired_comparisons(hits, first_of_pair)
    assert (row["won"], row["lost"]) == (4, 1)
    assert (row["distinct_won"], row["distinct_lost"]) == (2, 1)
    assert row["distinct_p_value"] == pytest.approx(mcnemar_exact_p(2, 1)) and row["distinct_p_value"] == 1.0
    assert (in_context["won"], in_context["lost"]) == (4, 1) and "distinct_won" not in in_context
