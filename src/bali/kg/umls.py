"""UMLS release directory (MRCONSO, MRREL, MRSTY, optional MRDEF) -> KG pieces, at full-UMLS scale.

UMLS has ~4.5M concepts, ~15M English names and ~100M MRREL rows. This module orchestrates the
readers: MRCONSO atoms (:mod:`bali.kg.mrconso`) and MRREL edges (:mod:`bali.kg.mrrel`) are read in
two threads, nodes are selected (every CUI with a kept atom, or the ``--restrict-to`` neighbourhood
of some), then names, sources, cross-references, semantic types and definitions
(:mod:`bali.kg.mrsty`) are laid out per node. How the RRF files are read, and how bad lines are
counted, is in :mod:`bali.kg.rrf`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bali.artifacts import remove_stale_temporaries
from bali.errors import BadInputError, ErrorBudget
from bali.kg.config import KGConfig
from bali.kg.graph import KGPieces
from bali.kg.mrconso import MRCONSO_COLUMNS, Atoms, names_by_node, node_sources, xref_table
from bali.kg.mrrel import MRREL_COLUMNS, Edges, relation_vocabulary
from bali.kg.mrsty import read_definitions, read_semantic_types
from bali.kg.rrf import CUI_SPACE, RRF, CuiIndex, FileBudget, concat, read_layout, scan

SCRATCH_PREFIX = "bali-umls-"


def load_umls(config: KGConfig, budget: ErrorBudget) -> KGPieces:
    """Read a UMLS release directory into KG pieces, applying the config's filters."""
    if not config.umls_dir:
        raise BadInputError("the UMLS source needs --umls DIR")
    directory = Path(config.umls_dir)
    if not directory.is_dir():
        raise BadInputError("UMLS release directory not found", directory)
    for required in ("MRCONSO.RRF", "MRREL.RRF"):
        if not (directory / required).is_file():
            raise BadInputError(f"{required} not found in the UMLS release directory", directory / required)
    layout = read_layout(directory)
    # Cleaned copies of whole RRF files can be large: a killed run's are removed by the next one.
    remove_stale_temporaries(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        return _load(config, budget, directory, layout, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _load(
    config: KGConfig, budget: ErrorBudget, directory: Path, layout: dict[str, list[str]], scratch: Path
) -> KGPieces:
    """Read the release: atoms and edges, node selection, then names, sources, xrefs and side tables."""
    atoms, edges = _read_atoms_and_edges(config, budget, directory, layout, scratch)
    atom_cui = concat(atoms.parts["cui"], np.int64)
    index = _atom_index(atoms.known, atom_cui)
    counts: dict[str, Any] = dict(atoms.counts)
    counts["mrconso_concepts"] = int(np.count_nonzero(atoms.known))
    edge_arrays = edges.resolve(index, MRREL_COLUMNS, scratch)
    counts.update(edges.counts)

    atom_node = index.node_of[atom_cui]
    keep_node, new_id, edge_arrays = _select_nodes(config, index, edge_arrays, counts)
    atom_kept = keep_node[atom_node]
    node_cuis = index.node_cuis[keep_node]
    num_nodes = int(node_cuis.size)
    index = CuiIndex(index.known, node_cuis)
    if num_nodes == 0:
        raise BadInputError("the knowledge graph is empty after filtering: no concepts left", directory)

    atom_node = new_id[atom_node[atom_kept]]
    names, name_nodes, kept_idx, preferred = names_by_node(atoms, atom_node, atom_kept, num_nodes)
    sab_codes = concat(atoms.parts["sab"], np.int32)[kept_idx.to_numpy()]
    sources = node_sources(atoms.sabs.values, name_nodes, sab_codes, num_nodes)
    xrefs = xref_table(atoms, kept_idx, sab_codes, name_nodes)

    semantic_types, sty_counts = read_semantic_types(budget, directory, layout, scratch, index)
    counts.update(sty_counts)
    definitions = read_definitions(config, budget, directory, layout, scratch, index)
    concepts = pa.table(
        {
            "source_id": pc.binary_join_element_wise(
                pa.scalar("C"), pc.utf8_lpad(pc.cast(pa.array(node_cuis), pa.string()), 7, "0"), ""
            ),
            "preferred_name": preferred,
            "semantic_types": semantic_types,
            "sources": sources,
        }
    )
    counts["concepts_before_restriction"] = int(keep_node.size)
    return KGPieces(
        concepts=concepts,
        name_node_ids=name_nodes,
        names=names,
        edges=edge_arrays,
        relations=relation_vocabulary(edges),
        xrefs=xrefs,
        definitions=definitions,
        xrefs_normalised=True,
        counts=counts,
    )


def _read_atoms_and_edges(
    config: KGConfig, budget: ErrorBudget, directory: Path, layout: dict[str, list[str]], scratch: Path
) -> tuple[Atoms, Edges]:
    """MRCONSO atoms and MRREL edges, read in parallel (pyarrow and numpy release the GIL).

    MRREL rows keep their CUIs until MRCONSO has said which CUIs are nodes.
    """
    lock = threading.Lock()
    conso = RRF(directory / "MRCONSO.RRF", layout["MRCONSO.RRF"])
    conso_budget = FileBudget(budget, lock)
    atoms = Atoms(config, conso_budget, conso)
    mrrel = RRF(directory / "MRREL.RRF", layout["MRREL.RRF"])
    mrrel_budget = FileBudget(budget, lock)
    edges = Edges(config, mrrel_budget, mrrel)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = [
            pool.submit(scan, conso, MRCONSO_COLUMNS, conso_budget, scratch, atoms),
            pool.submit(scan, mrrel, MRREL_COLUMNS, mrrel_budget, scratch, edges),
        ]
        for future in reading:
            future.result()
    return atoms, edges


def _atom_index(known: np.ndarray, atom_cui: np.ndarray) -> CuiIndex:
    """The index whose nodes are the CUIs with at least one kept atom, in CUI order."""
    has_atom = np.zeros(CUI_SPACE, dtype=bool)
    has_atom[atom_cui] = True
    return CuiIndex(known, np.flatnonzero(has_atom))


def _select_nodes(
    config: KGConfig,
    index: CuiIndex,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    counts: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Node selection: every CUI with a kept atom, or the --restrict-to neighbourhood of some of them.

    Returns the mask of kept nodes, the new id of each node of ``index`` and the edges between kept
    nodes, renumbered; the restriction's counts are added to ``counts``.
    """
    src, dst, rel = edges
    keep_node = np.ones(index.node_cuis.size, dtype=bool)
    if config.restrict_to:
        keep_node, restrict_counts = _neighbourhood(config.restrict_to, index, src, dst, config.hops)
        counts.update(restrict_counts)
    new_id = (np.cumsum(keep_node) - 1).astype(np.int32)
    if config.restrict_to:
        edge_kept = keep_node[src] & keep_node[dst]
        src, dst, rel = new_id[src[edge_kept]], new_id[dst[edge_kept]], rel[edge_kept]
    return keep_node, new_id, (src, dst, rel)


def _neighbourhood(
    restrict_file: str, index: CuiIndex, src: np.ndarray, dst: np.ndarray, hops: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of nodes within ``hops`` MRREL edges (either direction) of the CUIs listed in the file."""
    path = Path(restrict_file)
    if not path.is_file():
        raise BadInputError("--restrict-to file not found", path)
    wanted: list[int] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            text = text.split(":", 1)[1] if text.upper().startswith("UMLS:") else text
            if len(text) != 8 or text[0] != "C" or not text[1:].isdecimal():
                raise BadInputError(f"expected one CUI per line (C + 7 digits), got '{text}'", path, number)
            wanted.append(int(text[1:]))
    pos, found = index.nodes(np.asarray(wanted, dtype=np.int64))
    bad = int(np.count_nonzero(~found))
    mask = np.zeros(index.node_cuis.size, dtype=bool)
    mask[pos[found]] = True
    seeds = int(mask.sum())
    for _ in range(hops):
        touched = mask[src] | mask[dst]
        grown = mask.copy()
        grown[src[touched]] = True
        grown[dst[touched]] = True
        if grown.sum() == mask.sum():
            break
        mask = grown
    return mask, {
        "restrict_cuis_listed": len(wanted),
        "restrict_cuis_not_found": bad,
        "restrict_seeds": seeds,
    }
