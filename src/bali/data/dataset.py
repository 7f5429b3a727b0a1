"""The torch Dataset over a built training dataset (see docs/architecture.md, "Training dataset").

Items are slices of memory-mapped shard arrays: nothing is loaded up front, so many DataLoader
workers can read a corpus of any size. Batches are made by :class:`BaliCollator` (re-exported here
together with :class:`BaliBatch`, the names the trainer imports).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from bali.data import layout
from bali.data.batch import BaliBatch
from bali.data.collate import BaliCollator
from bali.errors import BadInputError

__all__ = ["BaliBatch", "BaliCollator", "BaliDataset", "BaliItem"]


@dataclass(frozen=True, slots=True)
class BaliItem:
    """One sentence: token ids with [CLS]/[SEP], (position, entity) pairs and its entities.

    ``index`` is the sentence's position in the whole dataset (both splits); the collator keys all
    randomness of this sample on it, so an item is corrupted and sampled the same way whichever
    worker or batch it lands in.
    """

    index: int
    input_ids: np.ndarray  # [L] int32
    mention_positions: np.ndarray  # [E] int32 token positions
    mention_entities: np.ndarray  # [E] int32 sentence-local entity index
    entity_nodes: np.ndarray  # [N] int32 dataset-local node ids (see layout.NODES)


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
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} sentences")
        index = int(self.indices[i])
        starts = self.files.shard_starts
        shard = int(np.searchsorted(starts, index, side="right")) - 1
        row = index - int(starts[shard])
        arrays = self.files.shard(shard)

        def piece(values: str, offsets: str) -> np.ndarray:
            bounds = arrays[offsets]
            return np.asarray(arrays[values][int(bounds[row]) : int(bounds[row + 1])])

        return BaliItem(
            index=index,
            input_ids=piece(layout.INPUT_IDS, layout.INPUT_OFFSETS),
            mention_positions=piece(layout.MENTION_POSITIONS, layout.MENTION_OFFSETS),
            mention_entities=piece(layout.MENTION_ENTITIES, layout.MENTION_OFFSETS),
            entity_nodes=piece(layout.ENTITY_NODES, layout.ENTITY_OFFSETS),
        )
