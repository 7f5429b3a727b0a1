"""OBO and TSV sources, synonym scopes, merging, held-out synonyms and their bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bali.cli import main
from bali.errors import BadInputError
from bali.kg.build import build_kg
from bali.kg.config import KGConfig
from bali.kg.graph import KnowledgeGraph

OBO_A = """\
format-version: 1.2
ontology: test

[Term]
id: TST:0000001
name: Phenotypic abnormality
def: "A \\"deviation\\" from normal." [HPO:probinson]

[Term]
id: TST:0000002
name: Seizure
synonym: "Epileptic seizure" EXACT []
synonym: "Seizures" EXACT plural_form []
synonym: "Fits" RELATED layperson []
synonym: "Convulsive disorder" BROAD []
xref: UMLS:C0036572
xref: MSH:D012640 "Seizures"
is_a: TST:0000001 ! Phenotypic abnormality
relationship: part_of TST:0000004 ! Nervous system

[Term]
id: TST:0000003
name: Old term
is_obsolete: true

[Term]
id: TST:0000005
name: Absence seizure
is_a: TST:0000002
is_a: TST:0000003 ! obsolete parent: dropped and counted

[Typedef]
id: part_of
name: part of
"""

OBO_B = """\
[Term]
id: TST:0000004
name: Nervous system
alt_id: TST:0000099

[Term]
id: TST:0000002
name: Seizure
synonym: "Epileptic fit" EXACT []
"""


def _obo(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.obo", tmp_path / "b.obo"
    a.write_text(OBO_A, encoding="utf-8")
    b.write_text(OBO_B, encoding="utf-8")
    return a, b


def _edges(kg: KnowledgeGraph) -> set[tuple[str, str, str]]:
    return {
        (kg.source_ids[n], kg.source_ids[int(m)], kg.relation_names[int(r)])
        for n in range(kg.num_nodes)
        for m, r in zip(*kg.neighbours(n), strict=True)
    }


def test_obo_merge_scopes_edges_xrefs(tmp_path: Path) -> None:
    a, b = _obo(tmp_path)
    manifest = build_kg(KGConfig(source="obo", obo_files=[str(a), str(b)]), tmp_path / "kg")
    kg = KnowledgeGraph.load(tmp_path / "kg")
    assert sorted(kg.source_ids) == ["TST:0000001", "TST:0000002", "TST:0000004", "TST:0000005"]
    seizure = kg.node_id("TST:0000002")
    assert kg.names(seizure) == ["Seizure", "Epileptic seizure", "Seizures", "Fits", "Epileptic fit"]
    assert _edges(kg) == {
        ("TST:0000001", "TST:0000002", "is_a"),
        ("TST:0000002", "TST:0000001", "has_subclass"),
        ("TST:0000004", "TST:0000002", "part_of"),
        ("TST:0000002", "TST:0000004", "has_part"),
        ("TST:0000002", "TST:0000005", "is_a"),
        ("TST:0000005", "TST:0000002", "has_subclass"),
    }
    phrases = dict(zip(kg.relation_names, kg.relation_phrases, strict=True))
    assert phrases["has_subclass"] == "has subclass" and phrases["part_of"] == "is part of"
    assert kg.lookup_xref("MESH:D012640") == [seizure] and kg.lookup_xref("UMLS:C0036572") == [seizure]
    assert kg.lookup_xref("TST:0000099") == [kg.node_id("TST:0000004")]
    assert dict(kg.definitions()) == {kg.node_id("TST:0000001"): 'A "deviation" from normal.'}
    details = manifest["counts"]["source_details"]
    assert details["obsolete_terms"] == 1 and details["dangling_statements_dropped"] == 1
    scopes = pq.read_table(tmp_path / "kg" / "obo_synonyms.parquet").to_pylist()
    assert {"node_id": seizure, "name": "Convulsive disorder", "scope": "BROAD", "type": ""} in scopes

    build_kg(
        KGConfig(source="obo", obo_files=[str(a)], obo_name_scopes=["EXACT"], keep_self_loops=False),
        tmp_path / "exact",
    )
    assert KnowledgeGraph.load(tmp_path / "exact").names(seizure) == [
        "Seizure",
        "Epileptic seizure",
        "Seizures",
    ]


def test_holdout_synonyms_do_not_leak(tmp_path: Path) -> None:
    concepts = tmp_path / "c.tsv"
    concepts.write_text(
        "id\tname\tsynonyms\txrefs\tdefinition\n"
        "X1\tHeadache\tHEADACHE!|head-ache|cephalgia\tMSH:D006261\tPain in the head.\n"
        "X2\tFever\tfever.\t\t\n"
        "X3\tAspirin\tASA|acetylsalicylic acid\tMESH:D001241|CHEBI:15365\t\n"
        "X4\tAcid\tacetylsalicylic-acid\t\t\n",
        encoding="utf-8",
    )
    edges = tmp_path / "e.tsv"
    edges.write_text("source\trelation\ttarget\nX3\tmay_treat\tX1\nX3\tmay_treat\tX2\n", encoding="utf-8")
    manifest = build_kg(
        KGConfig(source="tsv", tsv_concepts=str(concepts), tsv_edges=str(edges)),
        tmp_path / "kg",
        holdout_synonyms=5,
        holdout_seed=1,
    )
    kg = KnowledgeGraph.load(tmp_path / "kg")
    held = (tmp_path / "kg" / "heldout_synonyms.tsv").read_text(encoding="utf-8").splitlines()
    # X1: only "cephalgia" is not a variant of a kept name; X2 has only a variant; X3: "acetylsalicylic
    # acid" is a variant of X4's name, so only "ASA" qualifies.
    assert held == ["node_id\tsource_id\tname", "0\tX1\tcephalgia", "2\tX3\tASA"]
    names = {n.lower() for n in kg.all_names()[0]}
    assert "cephalgia" not in names and "asa" not in names
    assert manifest["counts"]["heldout_synonyms"] == {
        "requested": {"test": 5, "dev": 0},
        "eligible_concepts": 2,
        "held_out": {"test": 2, "dev": 0},
        "files": {"test": "heldout_synonyms.tsv"},
    }
    assert not (tmp_path / "kg" / "heldout_synonyms.dev.tsv").exists()
    assert kg.names(0) == ["Headache", "HEADACHE!", "head-ache"]
    assert ("X1", "X3", "may_treat") in _edges(kg) and ("X3", "X1", "inverse_of_may_treat") in _edges(kg)
    assert kg.lookup_xref("MESH:D006261") == [0] and kg.lookup_xref("CHEBI:15365") == [2]
    assert dict(kg.definitions()) == {0: "Pain in the head."}
    again = build_kg(
        KGConfig(source="tsv", tsv_concepts=str(concepts), tsv_edges=str(edges)),
        tmp_path / "kg",
        overwrite=True,
        holdout_synonyms=1,
        holdout_seed=1,
    )
    assert again["counts"]["heldout_synonyms"]["held_out"] == {"test": 1, "dev": 0}


def _synonym_tsv(tmp_path: Path, concepts: int) -> tuple[Path, Path]:
    """``concepts`` concepts, each with two synonyms no other concept shares."""
    path = tmp_path / "many.tsv"
    rows = [f"C{i}\tconcept {i}\tsynonym {i} a|synonym {i} b\t\t" for i in range(concepts)]
    path.write_text("id\tname\tsynonyms\txrefs\tdefinition\n" + "\n".join(rows) + "\n", encoding="utf-8")
    edges = tmp_path / "many_edges.tsv"
    edges.write_text("source\trelation\ttarget\nC0\tis_a\tC1\n", encoding="utf-8")
    return path, edges


def test_holdout_dev_and_test_splits_are_disjoint_seeded_and_named_in_the_manifest(tmp_path: Path) -> None:
    concepts, edges = _synonym_tsv(tmp_path, 60)
    config = KGConfig(source="tsv", tsv_concepts=str(concepts), tsv_edges=str(edges))

    def build(name: str, test: int, dev: int, seed: int) -> tuple[dict, dict[str, list[str]]]:
        manifest = build_kg(
            config, tmp_path / name, holdout_synonyms=test, holdout_dev_synonyms=dev, holdout_seed=seed
        )
        files = manifest["counts"]["heldout_synonyms"]["files"]
        rows = {
            split: (tmp_path / name / file).read_text(encoding="utf-8").splitlines()[1:]
            for split, file in files.items()
        }
        return manifest, rows

    manifest, rows = build("kg", 10, 15, 4)
    assert manifest["counts"]["heldout_synonyms"]["files"] == {
        "test": "heldout_synonyms.tsv",
        "dev": "heldout_synonyms.dev.tsv",
    }
    assert (
        manifest["settings"]["holdout_dev_synonyms"] == 15 and manifest["settings"]["holdout_synonyms"] == 10
    )
    assert len(rows["test"]) == 10 and len(rows["dev"]) == 15
    test_nodes = {line.split("\t")[0] for line in rows["test"]}
    dev_nodes = {line.split("\t")[0] for line in rows["dev"]}
    assert not test_nodes & dev_nodes
    kept = set(KnowledgeGraph.load(tmp_path / "kg").all_names()[0])
    assert not kept & {line.split("\t")[2] for line in rows["test"] + rows["dev"]}
    assert build("again", 10, 15, 4)[1] == rows  # seeded
    assert build("other", 10, 15, 5)[1]["test"] != rows["test"]
    with pytest.raises(BadInputError, match="dev held-out size"):
        build("bad", 1, -1, 0)


@pytest.mark.parametrize(
    ("concepts", "edges", "where", "message"),
    [
        ("A\tAlpha\nB\n", "", "c.tsv:2", "expected 2-5"),
        ("A\tAlpha\nB\t \n", "", "c.tsv:2", "expected a name"),
        ("A\tAlpha\n", "source\trelation\ttarget\nA\tis_a\tZ\n", "e.tsv:2", "unknown concept 'Z'"),
        ("A\tAlpha\n", "A\tis_a\n", "e.tsv:1", "expected 3"),
        (b"A\tAl\xffpha\n", "", "c.tsv:1", "UTF-8"),
    ],
)
def test_tsv_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    concepts: str | bytes,
    edges: str,
    where: str,
    message: str,
) -> None:
    c, e = tmp_path / "c.tsv", tmp_path / "e.tsv"
    c.write_bytes(concepts if isinstance(concepts, bytes) else concepts.encode())
    e.write_text(edges, encoding="utf-8")
    assert main(["kg", "build", "--tsv", str(c), str(e), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert where in err and message in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("[Term]\nid: T:1\nname: One\nbroken line\n", "x.obo:4", "tag: value"),
        ("[Term]\nid: T:1\n\n[Term]\nid: T:2\nname: Two\n", "x.obo:1", "has no name"),
        ("[Term]\nid: T:1\nname: One\nsynonym: unquoted EXACT\n", "x.obo:4", "synonym"),
        ("[Term]\nname: One\n\n[Term]\nid: T:2\nname: Two\n", "x.obo:1", "without 'id:'"),
    ],
)
def test_obo_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, message: str
) -> None:
    path = tmp_path / "x.obo"
    path.write_text(text, encoding="utf-8")
    assert main(["kg", "build", "--obo", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert where in err and message in err
    assert (
        main(["kg", "build", "--obo", str(path), "--out", str(tmp_path / "o"), "--max-errors", "1", "--json"])
        == 0
    )
    assert sum(json.loads(capsys.readouterr().out)["counts"]["skipped_lines"].values()) == 1


def test_missing_obo_and_bad_scope(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kg", "build", "--obo", str(tmp_path / "none.obo"), "--out", str(tmp_path / "o")]) == 2
    assert "OBO file not found" in capsys.readouterr().err
    a, _ = _obo(tmp_path)
    assert main(["kg", "build", "--obo", str(a), "--out", str(tmp_path / "o"), "--obo-scopes", "WIDE"]) == 2
    assert "obo_name_scopes" in capsys.readouterr().err
    assert main(["kg", "info", str(tmp_path)]) == 2
    assert "not a bali artefact directory" in capsys.readouterr().err
