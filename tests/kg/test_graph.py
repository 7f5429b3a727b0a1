"""The KG artefact writer and reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.errors import BadInputError
from bali.kg.graph import KnowledgeGraph, Relation, build_csr, write_kg


def _write(tmp_path: Path, keep_self_loops: bool = True) -> KnowledgeGraph:
    out = tmp_path / "kg"
    concepts = pa.table(
        {"source_id": ["C1", "C2", "C3"], "preferred_name": ["Aspirin", "Headache", "Fever"]},
    )
    with atomic_output_dir(out) as tmp:
        counts = write_kg(
            tmp,
            concepts=concepts,
            name_node_ids=np.array([0, 1, 0, 0, 2, 1]),
            names=["Aspirin", "Headache", "acetylsalicylic acid", "ASPIRIN", "Fever", "cephalgia"],
            edges=(np.array([0, 1, 0, 0, 2]), np.array([1, 0, 1, 0, 0]), np.array([0, 1, 0, 2, 1])),
            relations=[
                Relation("may_treat", "RO", "may_treat"),
                Relation("may_be_treated_by"),
                Relation("SY"),
            ],
            xrefs=pa.table(
                {"key": ["D001241", "MSH:D006261"], "node_id": [0, 1], "preferred": [True, False]}
            ),
            keep_self_loops=keep_self_loops,
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {}, {}, counts))
    return KnowledgeGraph.load(out)


def test_names_are_grouped_deduplicated_preferred_first(tmp_path: Path) -> None:
    kg = _write(tmp_path)
    assert kg.names(0) == ["Aspirin", "acetylsalicylic acid"]
    assert kg.names(1) == ["Headache", "cephalgia"]
    names, nodes = kg.all_names()
    assert len(names) == 5 and nodes.tolist() == [0, 0, 1, 1, 2]


def test_csr_neighbours_are_exact(tmp_path: Path) -> None:
    kg = _write(tmp_path)
    nbrs, rels = kg.neighbours(0)
    assert sorted(zip(nbrs.tolist(), rels.tolist(), strict=True)) == [
        (0, 2),
        (1, 0),
    ]  # duplicate edge removed
    assert kg.neighbours(2)[0].tolist() == [0]
    assert kg.num_edges == 4
    assert isinstance(kg.indices, np.memmap)
    no_loops = _write(tmp_path / "b", keep_self_loops=False)
    assert no_loops.neighbours(0)[0].tolist() == [1]


def test_xrefs_are_normalised(tmp_path: Path) -> None:
    kg = _write(tmp_path)
    assert kg.lookup_xref("MESH:D001241") == [0]
    assert kg.lookup_xref("D006261") == [1]
    assert kg.lookup_xref("C3") == [2]
    assert kg.node_id("C2") == 1 and kg.node_id("nope") is None


def test_build_csr_sorted_and_counts() -> None:
    indptr, indices, rels = build_csr(4, np.array([3, 0, 3]), np.array([1, 2, 0]), np.array([0, 0, 1]))
    assert indptr.tolist() == [0, 1, 1, 1, 3]
    assert indices.tolist() == [2, 0, 1] and rels.tolist() == [0, 1, 0]


def test_empty_graph_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="empty"):
        write_kg(
            tmp_path,
            concepts=pa.table(
                {"source_id": pa.array([], pa.string()), "preferred_name": pa.array([], pa.string())}
            ),
            name_node_ids=np.array([], dtype=np.int64),
            names=[],
            edges=(np.array([]), np.array([]), np.array([])),
            relations=[],
        )
