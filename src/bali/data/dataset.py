"""The torch Dataset over a built training dataset (see docs/architecture.md, "Training dataset").

Items are slices of memory-mapped shard arrays: nothing is loaded up front, so many DataLoader
workers can read a corpus of any size. Batches are made by :class:`BaliCollator` (re-exported here
together with :class:`BaliBatch`, the names the trainer imports).
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from bali.data import layout
from bali.data.batch import BaliBatch, BaliItem
from bali.data.collate import BaliCollator
from bali.errors import BadInputError

__all__ = ["BaliBatch", "BaliCollator", "BaliDataset", "BaliItem"]


class BaliDataset(Dataset):
    """Sentences of one split of a dataset built by ``bali data build``."""

    def __init__(self, dataset_dir: str | Path, split: str = "train") -> None:
        if split not in layout.SPLIT_FILES:
            raise BadInputError(f"unknown split '{split}'; expected one of {sorted(layout.SPLIT_FILES)}")
        self.files = layout.DatasetFiles(dataset_dir)
        self.split = split
        self.indices = np.load(self.files.directory / layout.SPLIT_FILES[split], mmap_mode="r")

    @property
    def manifest(self) -> dict[str, Any]:
        return self.files.manifest

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        return {"files": self.files, "split": self.split}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.files = state["files"]
        self.split = state["split"]
        self.indices = np.load(self.files.directory / layout.SPLIT_FILES[self.split], mmap_mode="r")

    def __getitem__(self, i: int) -> BaliItem:
        index = int(self.indices[i])  # IndexError past the end, as a Sequence should
        shard = bisect_right(self.files.shard_start_list, index) - 1
        row = index - self.files.shard_start_list[shard]
        arrays = self.files.shard(shard)
        tokens = arrays[layout.INPUT_OFFSETS]
        mentions = arrays[layout.MENTION_OFFSETS]
        entities = arrays[layout.ENTITY_OFFSETS]
        t0, t1 = int(tokens[row]), int(tokens[row + 1])
        m0, m1 = int(mentions[row]), int(mentions[row + 1])
        e0, e1 = int(entities[row]), int(entities[row + 1])
        return BaliItem(
            index=index,
            input_ids=arrays[layout.INPUT_IDS][t0:t1],
            mention_positions=arrays[layout.MENTION_POSITIONS][m0:m1],
            mention_entities=arrays[layout.MENTION_ENTITIES][m0:m1],
            entity_nodes=arrays[layout.ENTITY_NODES][e0:e1],
        )
