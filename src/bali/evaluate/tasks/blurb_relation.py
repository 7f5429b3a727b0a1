"""BLURB relation/classification TSVs: GAD (``index<TAB>sentence<TAB>label`` with a header), ChemProt
and DDI (``id<TAB>sentence<TAB>label``, no header). Entities are already masked (``@GENE$``, ...).

Scored with micro P/R/F1 over every class but the named negative one (``0``, ``false``, ``DDI-false``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from bali.evaluate.tasks.base import (
    Example,
    Recipe,
    TaskData,
    TaskSpec,
    label_index,
    micro_prf_without,
    read_splits,
    read_tsv,
)


def _read(path: Path, labels: Sequence[str], header: Sequence[str] | None) -> list[Example]:
    return [
        Example(row[0], row[1], None, label_index(labels, row[2].strip(), path, line_no))
        for line_no, row in read_tsv(path, 3, header)
    ]


def read(directory: Path, labels: Sequence[str], header: Sequence[str] | None) -> TaskData:
    """train/dev/test.tsv of one task."""
    return read_splits(directory, lambda path: _read(path, labels, header))


def _spec(name: str, labels: list[str], header: Sequence[str] | None, recipe: Recipe) -> TaskSpec:
    return TaskSpec(
        name=name,
        kind="single_label",
        labels=labels,
        metric=micro_prf_without(0),
        metric_description=f"micro P/R/F1 over all classes except the negative class '{labels[0]}'",
        main_metric="f1",
        reader=partial(read, labels=labels, header=header),
        recipe=recipe,
    )


SPECS = [
    _spec("gad", ["0", "1"], ("index", "sentence", "label"), Recipe(32, 3e-5, 10, 256)),
    _spec(
        "chemprot", ["false", "CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"], None, Recipe(32, 3e-5, 10, 256)
    ),
    _spec(
        "ddi",
        ["DDI-false", "DDI-mechanism", "DDI-effect", "DDI-advise", "DDI-int"],
        None,
        Recipe(32, 2e-5, 5, 256),
    ),
]
