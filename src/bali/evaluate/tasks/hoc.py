"""HoC (Hallmarks of Cancer) in BLURB format: ``labels<TAB>sentence<TAB>index`` with a header.

``labels`` is ``0_0,1_1,...`` (hallmark ``k`` present when ``k_1``); ``index`` is ``PMID_sN``, so
the BLURB metric can aggregate sentences into documents.
"""

from __future__ import annotations

from pathlib import Path

from bali.errors import BadInputError
from bali.evaluate.tasks.base import (
    Example,
    Recipe,
    TaskData,
    TaskSpec,
    hoc_document_f1,
    read_splits,
    read_tsv,
)

NUM_LABELS = 10


def _read(path: Path) -> list[Example]:
    examples = []
    for line_no, (labels, sentence, index) in read_tsv(path, 3, ("labels", "sentence", "index")):
        present = []
        for item in labels.split(","):
            k, _, v = item.strip().partition("_")
            if not k.isdigit() or v not in ("0", "1") or int(k) >= NUM_LABELS:
                raise BadInputError(
                    f"bad HoC label '{item}' (expected k_0 or k_1, k < {NUM_LABELS})", path, line_no
                )
            if v == "1":
                present.append(int(k))
        examples.append(Example(index, sentence, None, sorted(present)))
    return examples


def read(directory: Path) -> TaskData:
    """train/dev/test.tsv of BLURB's HoC."""
    return read_splits(directory, _read)


SPECS = [
    TaskSpec(
        name="hoc",
        kind="multi_label",
        labels=[str(k) for k in range(NUM_LABELS)],
        metric=hoc_document_f1,
        metric_description="BLURB document-level F1: sentence labels united per PMID, example-based P/R/F1 "
        "averaged over documents (sigmoid > 0.5)",
        main_metric="f1",
        reader=read,
        recipe=Recipe(batch_size=32, lr=4e-5, epochs=40, max_length=512),
    )
]
