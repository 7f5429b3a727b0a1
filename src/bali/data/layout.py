"""On-disk layout of the training dataset and a lazy, fork/spawn-safe reader of its arrays.

Everything is a flat ``.npy`` array plus offsets, opened with ``mmap_mode="r"``: DataLoader workers
share the page cache instead of each holding a copy, and memory does not grow with corpus size.
Arrays are opened on first use in each process and never pickled (a pickled memmap would copy the
whole array into every worker under the ``spawn`` start method).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from bali.artifacts import read_manifest
from bali.errors import BadInputError

# Per-shard arrays (``shards/00000/...``): kept sentences and their mention-token -> entity pairs.
INPUT_IDS = "input_ids.npy"  # int32, concatenated [CLS] tokens [SEP] of every sentence
INPUT_OFFSETS = "input_offsets.npy"  # int64, S + 1
MENTION_POSITIONS = "mention_positions.npy"  # int32, token position of each (token, entity) pair
MENTION_ENTITIES = "mention_entities.npy"  # int32, sentence-local entity index of each pair
MENTION_OFFSETS = "mention_offsets.npy"  # int64, S + 1
ENTITY_NODES = "entity_nodes.npy"  # int32, dataset-local node index of each (sentence, concept)
ENTITY_OFFSETS = "entity_offsets.npy"  # int64, S + 1
SENTENCE_IDS = "sentence_ids.npy"  # int64, row of the sentence in the linked corpus
SHARD_ARRAYS = (
    INPUT_IDS,
    INPUT_OFFSETS,
    MENTION_POSITIONS,
    MENTION_ENTITIES,
    MENTION_OFFSETS,
    ENTITY_NODES,
    ENTITY_OFFSETS,
    SENTENCE_IDS,
)

# Dataset-wide arrays.
SHARDS = "shards"
SHARD_SIZES = "shard_sizes.npy"  # int64, sentences per shard
SPLIT_FILES = {"train": "train_index.npy", "validation": "validation_index.npy"}
NODES = "nodes.npy"  # int32, KG node id of each local node (mentioned nodes first, sorted)
NODE_NAMES_INDPTR = "node_names_indptr.npy"  # int64, V + 1: names of local node i
NODE_NAME_ROWS = "node_name_rows.npy"  # int32, row of the distinct-name table of each (node, name)
NAME_INPUT_IDS = "name_input_ids.npy"  # int32, concatenated distinct [CLS] name [SEP] sequences
NAME_OFFSETS = "name_offsets.npy"  # int64, U + 1
# Neighbours are stored once per (target, neighbour) pair, whatever the number of relations between
# them, so sampling k neighbours draws k distinct nodes (the reference samples from the set of
# neighbour ids); the pair's relations sit in a second CSR level, of which one is drawn per sample.
GRAPH_INDPTR = "graph_indptr.npy"  # int64, M + 1 (mentioned nodes only: the only sampling targets)
GRAPH_INDICES = "graph_indices.npy"  # int32, local node index of each distinct neighbour (pair)
GRAPH_RELATION_OFFSETS = "graph_relation_offsets.npy"  # int64, P + 1: relations of pair p
GRAPH_RELATIONS = "graph_relations.npy"  # int32, KG relation ids of each pair, grouped by pair
RELATIONS = "relations.json"  # the KG's relation vocabulary (id, name, phrase, ...)
RELATION_INPUT_IDS = "relation_input_ids.npy"  # int32, concatenated phrase tokens (no specials)
RELATION_OFFSETS = "relation_offsets.npy"  # int64, R + 1

DATA_STAGE = "data"
# Version of this layout, recorded in the manifest; 2: neighbours stored once per pair.
LAYOUT_VERSION = 2


def exclusive_cumsum(counts: np.ndarray) -> np.ndarray:
    """Offsets array (length n + 1) of a counts array."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n): the gather index of CSR slices."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.asarray(starts, dtype=np.int64) - exclusive_cumsum(lengths)[:-1]
    return np.repeat(shift, lengths) + np.arange(total, dtype=np.int64)


def _mapped(path: Path) -> np.ndarray:
    """Memory-map an ``.npy`` file as a plain ndarray view.

    Slicing an ``np.memmap`` goes through its Python-level ``__getitem__``/``__array_finalize__``
    (about 10x slower than an ndarray slice, which dominated item reads); the view keeps the map
    alive through its base.
    """
    return np.load(path, mmap_mode="r").view(np.ndarray)


def shard_name(index: int) -> str:
    return f"{index:05d}"


class DatasetFiles:
    """Lazily memory-mapped view of a dataset directory; pickles as its path only."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest: dict[str, Any] = read_manifest(self.directory, DATA_STAGE)
        found = self.manifest.get("layout_version", 1)
        if found != LAYOUT_VERSION:
            raise BadInputError(
                f"training dataset has layout version {found}, this bali reads {LAYOUT_VERSION}; rebuild it "
                "with `bali data build --overwrite` (or `bali run CONFIG --from data`)",
                self.directory / "manifest.json",
            )
        self._arrays: dict[str, np.ndarray] = {}
        self._shards: list[dict[str, np.ndarray]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "manifest": self.manifest}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.directory = state["directory"]
        self.manifest = state["manifest"]
        self._arrays = {}
        self._shards = None

    def array(self, name: str) -> np.ndarray:
        """A dataset-wide array, memory-mapped on first use in this process."""
        found = self._arrays.get(name)
        if found is None:
            found = _mapped(self.directory / name)
            self._arrays[name] = found
        return found

    def shard(self, index: int) -> dict[str, np.ndarray]:
        """The arrays of one shard (memory-mapped on first use in this process)."""
        if self._shards is None:
            self._shards = [{} for _ in range(len(self.shard_starts) - 1)]
        arrays = self._shards[index]
        if not arrays:
            folder = self.directory / SHARDS / shard_name(index)
            arrays.update({name: _mapped(folder / name) for name in SHARD_ARRAYS})
        return arrays

    @cached_property
    def shard_starts(self) -> np.ndarray:
        """First global sentence index of each shard, plus the total."""
        sizes = np.load(self.directory / SHARD_SIZES)
        starts = np.zeros(sizes.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=starts[1:])
        return starts

    @cached_property
    def shard_start_list(self) -> list[int]:
        """:attr:`shard_starts` as Python ints, for ``bisect`` in the per-item hot path."""
        return self.shard_starts.tolist()

    @cached_property
    def relations(self) -> list[dict[str, Any]]:
        return json.loads((self.directory / RELATIONS).read_text(encoding="utf-8"))

    def token_counts(self) -> np.ndarray:
        """How often each vocabulary id occurs in the dataset's sentences, special tokens excluded.

        Streams shard by shard (one ``bincount`` each), so memory stays at one vocabulary-sized array.
        """
        special = self.special
        counts = np.zeros(int(special["vocab_size"]), dtype=np.int64)
        for index in range(len(self.shard_starts) - 1):
            ids = self.shard(index)[INPUT_IDS]
            counts += np.bincount(ids, minlength=counts.size)[: counts.size]
        counts[[i for i in special["special_ids"] if 0 <= i < counts.size]] = 0
        return counts

    @property
    def special(self) -> dict[str, Any]:
        """Special-token ids recorded at build time (the collator must not load the tokenizer)."""
        return self.manifest["special_tokens"]
