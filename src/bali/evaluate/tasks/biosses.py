"""BIOSSES sentence similarity in BLURB format: ``pair_id<TAB>sent1<TAB>sent2<TAB>score`` (header)."""

from __future__ import annotations

from pathlib import Path

from bali.errors import BadInputError
from bali.evaluate.tasks.base import Example, Recipe, TaskData, TaskSpec, pearson, read_splits, read_tsv


def _read(path: Path) -> list[Example]:
    examples = []
    for line_no, (pair_id, sent1, sent2, raw) in read_tsv(path, 4, ("pair_id", "sent1", "sent2", "score")):
        try:
            value = float(raw)
        except ValueError:
            raise BadInputError(f"score '{raw}' is not a number", path, line_no) from None
        examples.append(Example(pair_id, sent1, sent2, value))
    return examples


def read(directory: Path) -> TaskData:
    """train/dev/test.tsv of BLURB's BIOSSES."""
    return read_splits(directory, _read)


SPECS = [
    TaskSpec(
        name="biosses",
        kind="regression",
        labels=["score"],
        metric=pearson,
        metric_description="Pearson correlation of predicted and gold similarity (regression head, MSE)",
        main_metric="pearson",
        reader=read,
        recipe=Recipe(batch_size=16, lr=1e-5, epochs=30, max_length=512),
    )
]
