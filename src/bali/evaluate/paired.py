"""Two models' predictions on the same mentions, compared mention by mention.

Two Acc@1 a few mentions apart are usually not different: what tells is how many mentions only one
of the models gets right, and how likely so uneven a split of them is by chance (the two-sided
exact McNemar test). The linking evaluation pairs every model with the first; the benchmark scripts
pair their own runs.

A string that recurs in a benchmark (one disease named in many abstracts) gets the same context-free
prediction every time, so a mention-level test counts one decision once per occurrence and its p
looks smaller than the evidence is. Given a mask of each distinct (searched string, gold) pair's
first mention (:func:`first_of_each`, the deduplication of the refined test sets of Tutubalina et
al. 2020), the same test is repeated over those pairs. It is meant for context-free protocols only:
in context every occurrence is its own decision.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np


def mcnemar_exact_p(won: int, lost: int) -> float:
    """Two-sided exact McNemar p-value: P(a split at least this uneven | each discordant pair is a coin flip)."""
    n = won + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(won, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def won_lost(hit: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    """Mentions only ``hit`` gets right, and mentions only ``reference`` gets right."""
    return int((hit & ~reference).sum()), int((reference & ~hit).sum())


def first_of_each(keys: Sequence[Hashable]) -> np.ndarray:
    """Bool mask of the position where each distinct key first occurs."""
    firsts: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        firsts.setdefault(key, i)
    mask = np.zeros(len(keys), dtype=bool)
    mask[list(firsts.values())] = True
    return mask


def paired_comparisons(
    hits: Mapping[tuple[str, str, str, str], np.ndarray],
    first_of_pair: Mapping[tuple[str, str], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Each model against the first one, per (benchmark, pooling, protocol): Acc@1 wins, losses, McNemar p.

    ``hits`` maps (model, benchmark, pooling, protocol) to the hit@1 vector over the same mentions,
    in the order the models were evaluated. ``first_of_pair`` maps (benchmark, protocol) to the mask
    of its distinct (string, gold) pairs' first mentions; where one is given, ``distinct_won``,
    ``distinct_lost`` and ``distinct_p_value`` count those pairs only.
    """
    if not hits:
        return []
    first = next(iter(hits))[0]
    rows = []
    for (model, benchmark, pooling, protocol), hit in hits.items():
        reference = hits.get((first, benchmark, pooling, protocol))
        if model == first or reference is None:
            continue
        won, lost = won_lost(hit, reference)
        row: dict[str, Any] = {
            "model": model,
            "against": first,
            "benchmark": benchmark,
            "pooling": pooling,
            "protocol": protocol,
            "won": won,
            "lost": lost,
            "p_value": mcnemar_exact_p(won, lost),
        }
        firsts = (first_of_pair or {}).get((benchmark, protocol))
        if firsts is not None:
            won, lost = won_lost(hit[firsts], reference[firsts])
            row |= {
                "distinct_won": won,
                "distinct_lost": lost,
                "distinct_p_value": mcnemar_exact_p(won, lost),
            }
        rows.append(row)
    return rows
