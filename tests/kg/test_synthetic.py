"""The synthetic UMLS generator writes real RRF formats, and ingestion matches a plain-Python reading."""

from __future__ import annotations

from pathlib import Path

from bali.kg.build import build_kg
from bali.kg.config import KGConfig
from bali.kg.graph import KnowledgeGraph
from bali.kg.synthetic_umls import write_synthetic_umls


def _reference(release: Path) -> tuple[set[str], set[tuple[str, str, str]]]:
    """Concepts and edges by the default filters, read line by line (the slow obvious way)."""
    concepts = set()
    for line in (release / "MRCONSO.RRF").read_text(encoding="utf-8").splitlines():
        f = line.split("|")
        if f[1] == "ENG" and f[16] not in ("O", "E", "Y"):
            concepts.add(f[0])
    edges = set()
    for line in (release / "MRREL.RRF").read_text(encoding="utf-8").splitlines():
        f = line.split("|")
        if f[14] not in ("O", "E", "Y") and f[0] in concepts and f[4] in concepts:
            edges.add((f[0], f[4], f[7] or f[3]))
    return concepts, edges


def test_synthetic_release_round_trip(tmp_path: Path) -> None:
    info = write_synthetic_umls(tmp_path / "umls", 400, seed=7)
    rows = info["rows"]
    assert 3.0 < rows["MRCONSO.RRF"] / 400 < 4.0 and rows["MRREL.RRF"] == 4000
    assert (tmp_path / "umls" / "MRFILES.RRF").read_text().startswith("MRCONSO.RRF|")
    conso = (tmp_path / "umls" / "MRCONSO.RRF").read_text(encoding="utf-8")
    assert '"' in conso and "'" in conso and "|FRE|" in conso + "|SPA|"

    manifest = build_kg(KGConfig(source="umls", umls_dir=str(tmp_path / "umls")), tmp_path / "kg")
    kg = KnowledgeGraph.load(tmp_path / "kg")
    concepts, expected = _reference(tmp_path / "umls")
    assert set(kg.source_ids) == concepts
    got = set()
    for node in range(kg.num_nodes):
        for nbr, rel in zip(*kg.neighbours(node), strict=True):
            got.add((kg.source_ids[node], kg.source_ids[int(nbr)], kg.relation_names[int(rel)]))
    assert got == expected
    assert manifest["counts"]["definitions"] > 0 and all(kg.semantic_types)
    assert any(r == "isa" for r in kg.relation_names) and any(r == "CHD" for r in kg.relation_names)
