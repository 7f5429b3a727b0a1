"""Write a KG artefact from a few literal nodes, names and edges (shared by the test folders)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.kg.graph import Relation, write_kg


def write_literal_kg(
    out: Path,
    names: Mapping[int, Sequence[str]],
    edges: Sequence[tuple[int, int, int]],
    relations: Sequence[Relation],
    xrefs: Mapping[int, Sequence[str]] | None = None,
) -> Path:
    """Node ``i`` is ``C{i}``, its first name preferred; ``edges`` are (src, dst, relation) rows;
    ``xrefs`` gives nodes cross-references (e.g. ``MSH:D012640``) besides their own id."""
    concepts = pa.table(
        {"source_id": [f"C{i}" for i in names], "preferred_name": [n[0] for n in names.values()]}
    )
    node_ids = np.array([node for node, node_names in names.items() for _ in node_names])
    all_names = [name for node_names in names.values() for name in node_names]
    src, dst, rel = (np.array(column) for column in zip(*edges, strict=True))
    with atomic_output_dir(out) as tmp:
        counts = write_kg(
            tmp,
            concepts=concepts,
            name_node_ids=node_ids,
            names=all_names,
            edges=(src, dst, rel),
            relations=list(relations),
            xrefs=_xref_table(xrefs or {}),
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {}, {}, counts))
    return out


def _xref_table(xrefs: Mapping[int, Sequence[str]]) -> pa.Table:
    rows = [(key, node) for node, keys in xrefs.items() for key in keys]
    return pa.table(
        {
            "key": pa.array([key for key, _ in rows], pa.string()),
            "node_id": pa.array([node for _, node in rows], pa.int32()),
            "preferred": pa.array([False] * len(rows), pa.bool_()),
        }
    )
