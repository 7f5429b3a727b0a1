"""Seen and unseen mentions: does a gain hold beyond strings the model saw in training?

Tutubalina et al. (2020, "Fair evaluation in concept normalization") showed that most test mentions
of the common normalisation corpora repeat a training mention's string, so a score mostly measures
memorised strings. ``bali eval linking --train-mentions FILE`` splits every row into mentions whose
normalised string is a gold mention of the training corpus (seen) and the rest (unseen).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bali.corpus.linker import normalise_name
from bali.evaluate.linking import load_mentions
from bali.evaluate.mentions import Mention

SEEN, UNSEEN = "seen in training", "unseen in training"


def training_strings(paths: Sequence[str | Path], mention_format: str = "pubtator") -> set[str]:
    """Normalised strings of every gold mention (any type) in the training mention files."""
    strings: set[str] = set()
    for path in paths:
        mentions, _ = load_mentions(path, mention_format)
        strings.update(normalise_name(m.text) for m in mentions)
    return strings


def seen_subsets(strings: set[str]) -> dict[str, Callable[[Mention], bool]]:
    """Row filters for ``evaluate_linking(subsets=...)``: seen and unseen mention strings."""

    def seen(mention: Mention) -> bool:
        return normalise_name(mention.text) in strings

    return {SEEN: seen, UNSEEN: lambda mention: not seen(mention)}
