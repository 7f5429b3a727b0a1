"""MRSTY.RRF and MRDEF.RRF: (CUI, text) side tables of the kept concepts.

MRSTY gives each node its semantic type names, MRDEF its definitions (same SAB and SUPPRESS filters
as the atoms). Both are optional; a row naming a CUI absent from MRCONSO is bad input.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bali.errors import ErrorBudget
from bali.kg.config import KGConfig
from bali.kg.rrf import (
    RRF,
    CuiIndex,
    FileBudget,
    concat,
    cui_ints,
    group_lists,
    member,
    not_suppressed,
    scan,
)


@dataclass
class Pairs:
    """(CUI, text) rows of MRSTY/MRDEF restricted to kept nodes; unknown CUIs are bad input."""

    budget: ErrorBudget
    rrf: RRF
    index: CuiIndex
    text_column: str
    config: KGConfig | None = None
    parts: dict[str, list[Any]] = field(default_factory=dict)

    def reset(self) -> None:
        self.parts = {"node": [], "text": []}

    def __call__(self, start: int, batch: pa.RecordBatch) -> None:
        cui, valid = cui_ints(batch.column("CUI"), self.rrf, start, self.budget, "CUI")
        pos = self.index.node_of[cui]
        known = (pos != CuiIndex.UNKNOWN) & valid
        for row in np.nonzero(valid & ~known)[0]:
            self.budget.record(
                "unknown_concept",
                f"CUI C{cui[row]:07d} is not a concept of MRCONSO.RRF",
                self.rrf.path,
                self.rrf.line(start + int(row)),
            )
        keep = valid & (pos >= 0)
        if self.config is not None:
            sab_mask = member(batch.column("SAB"), self.config.sab_include, self.config.sab_exclude)
            if sab_mask is not None:
                keep &= sab_mask
            if not self.config.keep_suppressed:
                keep &= not_suppressed(batch)
        rows = np.nonzero(keep)[0]
        self.parts["node"].append(pos[rows])
        self.parts["text"].append(batch.column(self.text_column).take(pa.array(rows)))


def read_semantic_types(
    budget: ErrorBudget,
    directory: Path,
    layout: dict[str, list[str]],
    scratch: Path,
    index: CuiIndex,
) -> tuple[pa.Array, dict[str, int]]:
    """list<string> of STY names per node (empty lists when the release has no MRSTY.RRF)."""
    path = directory / "MRSTY.RRF"
    if not path.is_file():
        return pa.array([[]] * index.node_cuis.size, pa.list_(pa.string())), {"mrsty_missing": 1}
    rrf = RRF(path, layout["MRSTY.RRF"])
    file_budget = FileBudget(budget, threading.Lock())
    pairs = Pairs(file_budget, rrf, index, "STY")
    scan(rrf, ["CUI", "STY"], file_budget, scratch, pairs)
    nodes = concat(pairs.parts["node"], np.int64)
    texts = pa.chunked_array(pairs.parts["text"], pa.string()).combine_chunks()
    return group_lists(nodes, texts, index.node_cuis.size), {"semantic_type_rows": int(nodes.size)}


def read_definitions(
    config: KGConfig,
    budget: ErrorBudget,
    directory: Path,
    layout: dict[str, list[str]],
    scratch: Path,
    index: CuiIndex,
) -> pa.Table:
    """MRDEF definitions of kept nodes (same SAB and SUPPRESS filters as the atoms)."""
    path = directory / "MRDEF.RRF"
    if not path.is_file():
        return pa.table({"node_id": pa.array([], pa.int32()), "text": pa.array([], pa.string())})
    rrf = RRF(path, layout["MRDEF.RRF"])
    file_budget = FileBudget(budget, threading.Lock())
    pairs = Pairs(file_budget, rrf, index, "DEF", config)
    scan(rrf, ["CUI", "SAB", "DEF", "SUPPRESS"], file_budget, scratch, pairs)
    nodes = concat(pairs.parts["node"], np.int64)
    texts = pa.chunked_array(pairs.parts["text"], pa.string()).combine_chunks()
    order = np.argsort(nodes, kind="stable")
    return pa.table({"node_id": pa.array(nodes[order].astype(np.int32)), "text": texts.take(pa.array(order))})
