"""MRREL.RRF: the edges between concepts and the relation vocabulary.

Direction: MRREL's REL/RELA read "CUI2 RELA CUI1" (``CUI1 ... CHD ... CUI2 ... isa``: CUI2 is a child
of CUI1, CUI2 isa CUI1), so the CSR row of CUI1 lists CUI2 and the relation phrase reads
"neighbour PHRASE target". Relation name = RELA when present, else REL.

MRREL is read while MRCONSO is still being read, so rows keep their CUIs until MRCONSO has said
which CUIs are nodes. A row (passing the REL/RELA/SAB/SUPPRESS filters) naming a CUI absent from
MRCONSO is bad input; a second walk over MRREL, made only when there are such rows, finds their
line numbers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bali.errors import ErrorBudget
from bali.kg.config import KGConfig
from bali.kg.graph import Relation
from bali.kg.relation_phrases import phrase_for
from bali.kg.rrf import (
    RRF,
    Codes,
    CuiIndex,
    FileBudget,
    concat,
    cui_ints,
    member,
    not_suppressed,
    scan,
)

MRREL_COLUMNS = ["CUI1", "REL", "CUI2", "RELA", "SAB", "SUPPRESS"]


@dataclass
class Edges:
    """MRREL rows passing the filters as (CUI1, CUI2, relation code), accumulated block by block.

    CUIs stay CUIs here (int32) so that MRREL can be read while MRCONSO is still being read; they
    become node ids in :meth:`resolve`. With ``report_unknown`` set, the accumulator instead walks
    the file only to report rows naming CUIs absent from MRCONSO, with their line numbers.
    """

    config: KGConfig
    budget: ErrorBudget
    rrf: RRF
    report_unknown: CuiIndex | None = None
    unknown_budget: ErrorBudget | None = None
    names: Codes = field(default_factory=Codes)
    rel_of_name: dict[int, tuple[str, str]] = field(default_factory=dict)
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.parts = {"cui1": [], "cui2": [], "rel": []}
        self.counts = {"mrrel_rows": 0, "mrrel_filtered_out": 0}

    def __call__(self, start: int, batch: pa.RecordBatch) -> None:
        cfg = self.config
        self.counts["mrrel_rows"] += batch.num_rows
        cui1, ok1 = cui_ints(batch.column("CUI1"), self.rrf, start, self.budget, "CUI1")
        cui2, ok2 = cui_ints(batch.column("CUI2"), self.rrf, start, self.budget, "CUI2")
        valid = ok1 & ok2
        keep = valid.copy()
        for mask in (
            member(batch.column("REL"), cfg.rel_include, cfg.rel_exclude),
            member(batch.column("RELA"), cfg.rela_include, cfg.rela_exclude),
            member(batch.column("SAB"), cfg.sab_include, cfg.sab_exclude),
        ):
            if mask is not None:
                keep &= mask
        if not cfg.keep_suppressed:
            keep &= not_suppressed(batch)
        if self.report_unknown is not None:
            self._report(start, cui1, cui2, keep)
            return
        self.counts["mrrel_filtered_out"] += int(np.count_nonzero(valid & ~keep))
        if not keep.any():
            return
        mask = pa.array(keep)
        rel = batch.column("REL").filter(mask)
        rela = batch.column("RELA").filter(mask)
        name = pc.if_else(pc.equal(rela, ""), rel, rela)
        codes = self.names.encode(name)
        new = [c for c in np.flatnonzero(np.bincount(codes)).tolist() if c not in self.rel_of_name]
        for code in new:
            first = int(np.argmax(codes == code))
            self.rel_of_name[code] = (rel[first].as_py(), rela[first].as_py())
        self.parts["cui1"].append(cui1[keep].astype(np.int32))
        self.parts["cui2"].append(cui2[keep].astype(np.int32))
        self.parts["rel"].append(codes)

    def _report(self, start: int, cui1: np.ndarray, cui2: np.ndarray, keep: np.ndarray) -> None:
        index, budget = self.report_unknown, self.unknown_budget
        assert index is not None and budget is not None
        unknown1 = index.node_of[cui1] == CuiIndex.UNKNOWN
        unknown2 = index.node_of[cui2] == CuiIndex.UNKNOWN
        for row in np.flatnonzero(keep & (unknown1 | unknown2)):
            which, value = ("CUI1", cui1[row]) if unknown1[row] else ("CUI2", cui2[row])
            budget.record(
                "unknown_concept",
                f"{which} C{value:07d} is not a concept of MRCONSO.RRF (expected an edge between known CUIs)",
                self.rrf.path,
                self.rrf.line(start + int(row)),
            )

    def resolve(
        self, index: CuiIndex, needed: list[str], scratch: Path
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(CUI1 node, CUI2 node, relation) of the kept rows whose two CUIs are nodes.

        Rows naming a CUI absent from MRCONSO are bad input; finding their line numbers needs a
        second walk over the file, done only when there are some.
        """
        cui1 = concat(self.parts["cui1"], np.int32)
        cui2 = concat(self.parts["cui2"], np.int32)
        rel = concat(self.parts["rel"], np.int32)
        self.parts.clear()  # the per-block arrays would double the edge memory from here on
        src = index.node_of[cui1]
        dst = index.node_of[cui2]
        del cui1, cui2
        unknown = (src == CuiIndex.UNKNOWN) | (dst == CuiIndex.UNKNOWN)
        if unknown.any():
            # Malformed lines and bad CUIs were counted by the first walk: count them silently now.
            quiet = FileBudget(ErrorBudget(2**62), threading.Lock())
            reporter = Edges(self.config, quiet, self.rrf, report_unknown=index, unknown_budget=self.budget)
            scan(self.rrf, needed, quiet, scratch, reporter)
        keep = (src >= 0) & (dst >= 0)
        self.counts["mrrel_endpoint_not_kept"] = int(np.count_nonzero(~keep & ~unknown))
        return src[keep], dst[keep], rel[keep]


def relation_vocabulary(edges: Edges) -> list[Relation]:
    """The relation vocabulary: one entry per relation name met in MRREL, in code order."""
    relations = []
    for code, name in enumerate(edges.names.values):
        rel_code, rela = edges.rel_of_name[code]
        relations.append(Relation(name, rel=rel_code, rela=rela, phrase=phrase_for(rela, rel_code)))
    return relations
