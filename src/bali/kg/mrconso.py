"""MRCONSO.RRF: the atoms (names) of each concept, its sources and its cross-references.

An atom is kept when its language, source (SAB) and SUPPRESS flag pass the filters; names are
grouped by concept with the preferred atom (TS=P, STT=PF, ISPREF=Y) first, and (SAB, CODE) pairs
become normalised cross-reference keys (``MESH:D012345``), main headings marked preferred.
Semantic errors (an empty name, a CUI that is not ``C`` + 7 digits) are counted with their line
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bali.errors import ErrorBudget
from bali.ids import PREFIX_ALIASES
from bali.kg.config import KGConfig
from bali.kg.rrf import (
    CUI_SPACE,
    RRF,
    Codes,
    concat,
    cui_ints,
    group_lists,
    member,
    not_suppressed,
)

MRCONSO_COLUMNS = ["CUI", "LAT", "TS", "STT", "ISPREF", "SAB", "TTY", "CODE", "STR", "SUPPRESS"]
# Atoms whose code is the main heading / preferred term of their source: MeSH descriptors (MH),
# supplementary concepts (NM), and the preferred term of other sources (PT). Real MRCONSO marks
# MeSH MH atoms ISPREF=N (see the scispaCy fixture), so ISPREF is not required here.
MAIN_HEADING_TTYS = ("MH", "NM", "PT")

# Sources whose CODE is already a CURIE (``HP:0001250``, ``GO:0008150``): the code is the key.
CURIE_CODE_SABS = ("HPO", "GO", "CHEBI", "MONDO", "DOID")


def _xref_prefix(sab: str) -> str:
    """Normalised id prefix for a SAB's codes: MSH -> MESH, NCBI -> NCBITAXON, ... ("" = CURIE codes)."""
    if sab.upper() in CURIE_CODE_SABS:
        return ""
    return PREFIX_ALIASES.get(sab.upper(), sab.upper())


@dataclass
class Atoms:
    """Kept MRCONSO atoms, accumulated block by block as arrays; ``known`` marks every CUI seen."""

    config: KGConfig
    budget: ErrorBudget
    rrf: RRF
    sabs: Codes = field(default_factory=Codes)
    parts: dict[str, list[Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.parts = {k: [] for k in ("cui", "rank", "name", "sab", "code", "main")}
        self.known = np.zeros(CUI_SPACE, dtype=bool)
        self.counts = {"atoms": 0, "atoms_kept": 0}

    def __call__(self, start: int, batch: pa.RecordBatch) -> None:
        cfg = self.config
        n = batch.num_rows
        cui, valid = cui_ints(batch.column("CUI"), self.rrf, start, self.budget, "CUI")
        self.known[cui[valid]] = True
        names = batch.column("STR")
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(names)), 0).to_numpy(zero_copy_only=False)
        for row in np.nonzero(empty & valid)[0]:
            self.budget.record(
                "empty_name",
                "expected a non-empty STR (column 15)",
                self.rrf.path,
                self.rrf.line(start + int(row)),
            )
        keep = valid & ~empty
        if cfg.languages:
            keep &= pc.is_in(batch.column("LAT"), value_set=pa.array(cfg.languages)).to_numpy(
                zero_copy_only=False
            )
        sab_mask = member(batch.column("SAB"), cfg.sab_include, cfg.sab_exclude)
        if sab_mask is not None:
            keep &= sab_mask
        if not cfg.keep_suppressed:
            keep &= not_suppressed(batch)
        self.counts["atoms"] += n
        rows = np.flatnonzero(keep)
        self.counts["atoms_kept"] += rows.size
        if rows.size == 0:
            return
        taken = batch.select(["TS", "STT", "ISPREF", "SAB", "TTY", "CODE", "STR"]).filter(pa.array(keep))
        rank = (
            pc.equal(taken.column("TS"), "P").to_numpy(zero_copy_only=False).astype(np.int8) * 4
            + pc.equal(taken.column("STT"), "PF").to_numpy(zero_copy_only=False).astype(np.int8) * 2
            + pc.equal(taken.column("ISPREF"), "Y").to_numpy(zero_copy_only=False).astype(np.int8)
        )
        self.parts["cui"].append(cui[rows])
        self.parts["rank"].append(rank)
        self.parts["name"].append(taken.column("STR"))
        self.parts["sab"].append(self.sabs.encode(taken.column("SAB")))
        self.parts["code"].append(taken.column("CODE"))
        self.parts["main"].append(
            pc.is_in(taken.column("TTY"), value_set=pa.array(MAIN_HEADING_TTYS)).to_numpy(
                zero_copy_only=False
            )
        )


def names_by_node(
    atoms: Atoms, atom_node: np.ndarray, atom_kept: np.ndarray, num_nodes: int
) -> tuple[pa.Array, np.ndarray, pa.Array, pa.Array]:
    """Names of the kept atoms grouped by node, preferred atom (TS=P, STT=PF, ISPREF=Y) first, then
    file order.

    ``atom_node`` is the (new) node of each kept atom. Returns the names, the node of each, the atom
    row of each (to take other atom columns in the same order) and each node's preferred name.
    """
    rank = concat(atoms.parts["rank"], np.int8)[atom_kept]
    # One int64 key (node, 7 - rank); a stable sort keeps file order within equal keys. MRCONSO is
    # sorted by CUI, so the key is nearly sorted and the (tim)sort is close to linear.
    order = np.argsort(atom_node.astype(np.int64) * 8 + (7 - rank), kind="stable")
    kept_idx = pa.array(np.nonzero(atom_kept)[0][order])
    names = pa.chunked_array(atoms.parts["name"], pa.string()).combine_chunks().take(kept_idx)
    name_nodes = atom_node[order]
    firsts = np.searchsorted(name_nodes, np.arange(num_nodes))
    preferred = pc.utf8_trim_whitespace(names.take(pa.array(firsts)))
    return names, name_nodes, kept_idx, preferred


def node_sources(sabs: list[str], name_nodes: np.ndarray, sab_codes: np.ndarray, num_nodes: int) -> pa.Array:
    """list<string> of the distinct SABs of each node's names, in SAB code order."""
    sab_names = pa.array(sabs, pa.string())
    pair = np.sort(name_nodes.astype(np.int64) * (len(sabs) + 1) + sab_codes)
    pair = pair[np.concatenate(([True], pair[1:] != pair[:-1]))] if pair.size else pair
    src_nodes = pair // (len(sabs) + 1)
    return group_lists(src_nodes, sab_names.take(pa.array(pair % (len(sabs) + 1))), num_nodes)


def xref_table(atoms: Atoms, kept_idx: pa.Array, sab_codes: np.ndarray, name_nodes: np.ndarray) -> pa.Table:
    """Cross-references: (SAB, CODE) -> CUI, one row per (key, node), main-heading atoms marked preferred."""
    codes = pa.chunked_array(atoms.parts["code"], pa.string()).combine_chunks().take(kept_idx)
    prefixes = pa.array([_xref_prefix(sab) for sab in atoms.sabs.values], pa.string())
    atom_prefix = prefixes.take(pa.array(sab_codes))
    keys = pc.if_else(pc.equal(atom_prefix, ""), codes, pc.binary_join_element_wise(atom_prefix, codes, ":"))
    has_code = pc.and_(pc.not_equal(codes, ""), pc.not_equal(codes, "NOCODE"))
    main = concat(atoms.parts["main"], bool)[kept_idx.to_numpy()]
    # One row per (key, node); preferred when any of its atoms is a main heading.
    with_code = np.flatnonzero(has_code.to_numpy(zero_copy_only=False))
    encoded = pc.dictionary_encode(keys.take(pa.array(with_code)))
    key_ids = encoded.indices.to_numpy().astype(np.int64)
    xref_nodes = name_nodes[with_code].astype(np.int64)
    xref_main = main[with_code]
    # Sorted by (node, key, main heading first): nodes are already in order, so the sort is cheap.
    pair = xref_nodes * (int(key_ids.max(initial=0)) + 1) + key_ids
    order = np.argsort(pair * 2 + ~xref_main, kind="stable")
    sorted_pair = pair[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = sorted_pair[1:] != sorted_pair[:-1]
    rows = order[first]
    return pa.table(
        {
            "key": encoded.dictionary.take(pa.array(key_ids[rows])),
            "node_id": pa.array(xref_nodes[rows].astype(np.int32)),
            "preferred": pa.array(xref_main[rows]),
        }
    )
