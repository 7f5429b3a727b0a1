"""`kg build --dictionary-concepts`: a linking dictionary's uncovered concepts become isolated nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bali.cli import main
from bali.evaluate.seen import kg_covers
from bali.kg.graph import KnowledgeGraph

CONCEPTS = (
    "id\tname\tsynonyms\txrefs\tdefinition\nDOID:1\tfever\tpyrexia\tMSH:D005334\t\nDOID:2\tcough\t\t\t\n"
)
EDGES = "source\trelation\ttarget\nDOID:1\tis_a\tDOID:2\n"
# Covered through a node's xref, covered through a node's own id (an alternative id), not covered.
MEDIC = (
    "MESH:D005334||Fever|Hyperthermia\n"
    "MESH:D003371|DOID:2||Cough syndrome\n"
    "MESH:D056486|OMIM:100100||Drug-Induced Liver Injury|Hepatotoxicity\n"
)


def _build(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict, str]:
    """Exit status, the printed manifest (on success) and stderr of ``kg build`` on the fixture KG."""
    (tmp_path / "c.tsv").write_text(CONCEPTS, encoding="utf-8")
    (tmp_path / "e.tsv").write_text(EDGES, encoding="utf-8")
    args = ["kg", "build", "--tsv", str(tmp_path / "c.tsv"), str(tmp_path / "e.tsv")]
    code = main([*args, "--out", str(tmp_path / "kg"), "--json", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else {}, captured.err


def test_only_uncovered_concepts_are_added_as_isolated_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "medic.tsv").write_text(MEDIC, encoding="utf-8")
    code, manifest, _ = _build(tmp_path, capsys, "--dictionary-concepts", str(tmp_path / "medic.tsv"))
    assert code == 0
    assert manifest["counts"]["source_details"]["dictionary_concepts_added"] == 1
    assert manifest["inputs"]["dictionary_concepts"]["path"] == str(tmp_path / "medic.tsv")
    kg = KnowledgeGraph.load(tmp_path / "kg")
    assert kg.source_ids == ["DOID:1", "DOID:2", "MESH:D056486"]
    assert kg.names(0) == ["fever", "pyrexia"] and kg.names(1) == ["cough"]  # existing nodes unchanged
    assert kg.names(2) == ["Drug-Induced Liver Injury", "Hepatotoxicity"]
    assert kg.neighbours(2)[0].size == 0 and kg.neighbours(0)[0].tolist() == [1]
    covers = kg_covers(tmp_path / "kg", ["MESH:D056486", "OMIM:100100", "MESH:D999999"])
    assert covers([["OMIM:100100"]]) and covers([["MESH:D056486"]]) and not covers([["MESH:D999999"]])


def test_without_the_option_nothing_is_added(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, manifest, _ = _build(tmp_path, capsys)
    assert code == 0 and "dictionary_concepts" not in manifest["inputs"]
    assert KnowledgeGraph.load(tmp_path / "kg").source_ids == ["DOID:1", "DOID:2"]


def test_a_bad_dictionary_line_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "medic.tsv").write_text(MEDIC + "MESH:D000001 Headache\n", encoding="utf-8")
    code, _, err = _build(tmp_path, capsys, "--dictionary-concepts", str(tmp_path / "medic.tsv"))
    assert code == 2
    assert "medic.tsv:4" in err and "||" in err
    assert not (tmp_path / "kg").exists()
