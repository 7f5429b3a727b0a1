"""BioASQ yes/no in BLURB format: ``id<TAB>question<TAB>context<TAB>yes|no`` (no header).

This is BLURB's 7b set with snippet contexts, not BALI's question-only 11b protocol (method.md E.1c).
"""

from __future__ import annotations

from pathlib import Path

from bali.evaluate.tasks.base import (
    Example,
    Recipe,
    TaskData,
    TaskSpec,
    accuracy,
    label_index,
    read_splits,
    read_tsv,
)

LABELS = ["no", "yes"]


def _read(path: Path) -> list[Example]:
    return [
        Example(row[0], row[1], row[2], label_index(LABELS, row[3].strip().lower(), path, line_no))
        for line_no, row in read_tsv(path, 4)
    ]


def read(directory: Path) -> TaskData:
    """train/dev/test.tsv of BLURB's BioASQ."""
    return read_splits(directory, _read)


SPECS = [
    TaskSpec(
        name="bioasq",
        kind="single_label",
        labels=LABELS,
        metric=accuracy,
        metric_description="accuracy (question + snippets, BLURB 7b yes/no)",
        main_metric="accuracy",
        reader=read,
        recipe=Recipe(batch_size=16, lr=2e-5, epochs=20, max_length=512),
    )
]
