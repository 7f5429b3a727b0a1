"""The synthetic UMLS generator writes real RRF formats, and ingestion matches a plain-Python reading."""

from __future__ import annotations

import re
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


def test_synthetic_release_has_the_sources_the_paper_path_needs(tmp_path: Path) -> None:
    """MeSH descriptors and supplementary concepts, OMIM, NCBI Taxonomy, code-less MTH-only concepts,
    suppressed atoms, REL/RELA, distinct semantic types; the KG reaches them through xrefs."""
    write_synthetic_umls(tmp_path / "umls", 300, seed=3)
    rows = [line.split("|") for line in (tmp_path / "umls" / "MRCONSO.RRF").read_text().splitlines()]
    codes: dict[tuple[str, str], set[str]] = {}
    sabs_of: dict[str, set[str]] = {}
    for r in rows:
        codes.setdefault((r[11], r[12]), set()).add(r[13])
        sabs_of.setdefault(r[0], set()).add(r[11])
    assert all(re.fullmatch(r"D\d{6}", c) for c in codes[("MSH", "MH")])
    assert all(re.fullmatch(r"C\d{6}|C\d{9}", c) for c in codes[("MSH", "NM")])
    assert {len(c) for c in codes[("MSH", "NM")]} == {7, 10}  # old and new supplementary codes
    assert all(re.fullmatch(r"[1-9]\d{0,4}", c) for c in codes[("NCBI", "SCN")])
    assert all(re.fullmatch(r"\d{6}", c) for tty in ("PT", "SY") for c in codes[("OMIM", tty)])
    assert codes[("MTH", "PT")] == {"NOCODE"} and sum(s == {"MTH"} for s in sabs_of.values()) >= 5
    assert {r[16] for r in rows} == {"N", "O", "E", "Y"}
    rels = {
        tuple(line.split("|")[3:8:4]) for line in (tmp_path / "umls" / "MRREL.RRF").read_text().splitlines()
    }
    assert ("CHD", "isa") in rels and ("RO", "") in rels
    sty = [tuple(line.split("|")[:2]) for line in (tmp_path / "umls" / "MRSTY.RRF").read_text().splitlines()]
    assert len(sty) == len(set(sty)) > 300

    build_kg(KGConfig(source="umls", umls_dir=str(tmp_path / "umls")), tmp_path / "kg")
    kg = KnowledgeGraph.load(tmp_path / "kg")
    by_code = {
        (r[11], r[13]): r[0] for r in rows if r[1] == "ENG" and r[16] == "N" and r[12] in ("NM", "SCN")
    }
    for (sab, code), cui in by_code.items():
        key = f"MESH:{code}" if sab == "MSH" else f"NCBITaxon:{code}"
        assert kg.node_id(cui) in kg.lookup_xref(key)
