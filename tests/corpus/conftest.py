"""Tiny KGs written with :func:`bali.kg.graph.write_kg`, shared by the corpus tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.kg.graph import Relation, write_kg

# node id: (source_id, names (preferred first), xrefs; "~KEY" is a non-preferred xref)
DISEASES: list[tuple[str, list[str], list[str]]] = [
    ("MONDO:0004979", ["asthma", "bronchial asthma"], ["MESH:D001249"]),
    ("MONDO:0005275", ["lung disease", "pulmonary disease"], ["MESH:D008171"]),
    ("HP:0012735", ["cough"], ["MESH:D003371"]),
    ("MONDO:0004967", ["acute lymphoblastic leukemia", "ALL"], ["MESH:D054198"]),
    ("MONDO:0010518", ["Wiskott-Aldrich syndrome", "WAS"], ["OMIM:301000"]),
    ("MONDO:0004975", ["Alzheimer disease", "Alzheimer's disease"], ["MESH:D000544"]),
    ("MONDO:0004994", ["cardiomyopathy"], ["MESH:D009202"]),
    ("MONDO:0005267", ["heart disease", "cold"], ["MESH:D006331"]),
    ("MONDO:0005709", ["common cold", "cold"], ["MESH:D003139"]),
    ("MONDO:0004996", ["autosomal dominant polycystic kidney disease"], ["OMIM:173900"]),
    ("MONDO:0004995", ["lung cancer"], ["MESH:D008175"]),
    ("MONDO:0021063", ["cancer"], ["MESH:D009369"]),
]

KGFactory = Callable[..., Path]


def write_tiny_kg(
    out: Path,
    entries: Sequence[tuple[str, list[str], list[str]]] = DISEASES,
    definitions: dict[int, str] | None = None,
) -> Path:
    """Write a KG artefact with the given concepts, names and cross-references."""
    concepts = pa.table({"source_id": [e[0] for e in entries], "preferred_name": [e[1][0] for e in entries]})
    name_nodes = [i for i, e in enumerate(entries) for _ in e[1]]
    names = [n for e in entries for n in e[1]]
    xref_nodes = [i for i, e in enumerate(entries) for _ in e[2]]
    xref_keys = [k.lstrip("~") for e in entries for k in e[2]]
    preferred = [not k.startswith("~") for e in entries for k in e[2]]
    defs = definitions or {}
    with atomic_output_dir(out, overwrite=True) as tmp:
        counts = write_kg(
            tmp,
            concepts=concepts,
            name_node_ids=np.array(name_nodes),
            names=names,
            edges=(np.array([0]), np.array([1]), np.array([0])),
            relations=[Relation("is_a")],
            xrefs=pa.table({"key": xref_keys, "node_id": xref_nodes, "preferred": preferred}),
            definitions=pa.table(
                {"node_id": pa.array(list(defs), pa.int32()), "text": pa.array(list(defs.values()))}
            ),
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {}, {}, counts))
    return out


@pytest.fixture
def tiny_kg(tmp_path: Path) -> KGFactory:
    """Factory: ``tiny_kg(definitions={node: text}, entries=...)`` writes a KG under ``tmp_path``."""

    def make(
        definitions: dict[int, str] | None = None,
        name: str = "kg",
        entries: Sequence[tuple[str, list[str], list[str]]] = DISEASES,
    ) -> Path:
        return write_tiny_kg(tmp_path / name, entries, definitions)

    return make
