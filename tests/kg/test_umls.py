"""UMLS ingestion on a hand-written release: filters, CSR neighbours, xrefs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bali.cli import main
from bali.errors import BadInputError
from bali.kg.build import build_kg
from bali.kg.config import KGConfig
from bali.kg.graph import KnowledgeGraph

MRFILES = """\
MRCONSO.RRF|Concept names and sources|CUI,LAT,TS,LUI,STT,SUI,ISPREF,AUI,SAUI,SCUI,SDUI,SAB,TTY,CODE,STR,SRL,SUPPRESS,CVF|18|19|2000|
MRREL.RRF|Related Concepts|CUI1,AUI1,STYPE1,REL,CUI2,AUI2,STYPE2,RELA,RUI,SRUI,SAB,SL,RG,DIR,SUPPRESS,CVF|16|10|1000|
MRSTY.RRF|Semantic Types|STY,CUI,TUI,STN,ATUI,CVF|6|3|200|
"""


def atom(
    cui: str,
    string: str,
    sab: str = "MSH",
    tty: str = "MH",
    code: str = "D000001",
    *,
    lat: str = "ENG",
    ts: str = "S",
    stt: str = "PF",
    ispref: str = "Y",
    suppress: str = "N",
) -> str:
    return f"{cui}|{lat}|{ts}|L1|{stt}|S1|{ispref}|A1||||{sab}|{tty}|{code}|{string}|0|{suppress}|256|"


CONSO = [
    atom("C0000001", "Aspirin", code="D001241", ts="P"),
    atom("C0000001", "ASPIRIN", sab="RXNORM", tty="PT", code="1191"),
    atom("C0000001", 'Acetylsalicylic "ASA" acid', sab="SNOMEDCT_US", tty="PT", code="387458008"),
    atom("C0000001", "Aspirine", lat="FRE", sab="MSHFRE", code="D001241"),
    atom("C0000001", "Aspirin [obsolete]", sab="RXNORM", tty="PT", code="1191", suppress="O"),
    atom("C0000002", "Headache", code="D006261", ts="P"),
    atom("C0000002", "Cephalgia", tty="ET", code="D006261"),
    atom("C0000002", "Cefalea", lat="SPA", sab="MSHSPA", code="D006261"),
    atom("C0000003", "Fever", sab="NCI", tty="PT", code="C3038", ts="P"),
    atom("C0000003", "Pyrexia", tty="ET", code="D005334"),
    atom("C0000004", "Migraine variant", tty="ET", code="D999999", ts="P"),
    atom("C0000005", "Migraine Disorders", tty="MH", code="D999999", ts="P", ispref="N"),
    atom("C0000005", "Migraine", sab="OMIM", tty="PT", code="157300"),
    atom("C0000006", "Chose", lat="FRE", sab="MSHFRE", code="D000006"),
    atom("C0000007", "Old thing", sab="RXNORM", tty="PT", code="7", suppress="E"),
    atom("C0000008", "flu", sab="SNOMEDCT_US", tty="SY", code="6142004", stt="VO", ispref="N"),
    atom("C0000008", "Influenza", sab="SNOMEDCT_US", tty="PT", code="6142004", ts="P"),
    atom("C0000009", "Homo sapiens", sab="NCBI", tty="SCN", code="9606", ts="P"),
    atom("C0000009", "human's", sab="NCBI", tty="GC", code="9606"),
]


def rel(cui1: str, rel_: str, cui2: str, rela: str = "", sab: str = "MSH", suppress: str = "N") -> str:
    return f"{cui1}|A1|CUI|{rel_}|{cui2}|A2|CUI|{rela}|R1||{sab}|{sab}|||{suppress}||"


MRREL = [
    rel("C0000002", "RO", "C0000001", "may_treat"),
    rel("C0000001", "RO", "C0000002", "may_be_treated_by"),
    rel("C0000005", "CHD", "C0000004", "isa"),
    rel("C0000004", "PAR", "C0000005", "inverse_isa"),
    rel("C0000002", "SY", "C0000002"),
    rel("C0000003", "RB", "C0000008", sab="SNOMEDCT_US"),
    rel("C0000008", "RN", "C0000003", sab="SNOMEDCT_US"),
    rel("C0000001", "RO", "C0000006"),
    rel("C0000003", "SIB", "C0000005", suppress="O"),
    rel("C0000009", "RO", "C0000001", sab="NCBI"),
]
MRSTY = [
    "Organic Chemical|C0000001|T109|A1.4.1.2.1|AT1|256|",
    "Pharmacologic Substance|C0000001|T121|A1.4.1.1.1|AT2|256|",
    "Sign or Symptom|C0000002|T184|A2.2.2|AT3|256|",
]


def write_release(directory: Path, conso: list[str] = CONSO, mrrel: list[str] = MRREL) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "MRFILES.RRF").write_text(MRFILES, encoding="utf-8")
    (directory / "MRCONSO.RRF").write_text("\n".join(conso) + "\n", encoding="utf-8")
    (directory / "MRREL.RRF").write_text("\n".join(mrrel) + "\n", encoding="utf-8")
    (directory / "MRSTY.RRF").write_text("\n".join(MRSTY) + "\n", encoding="utf-8")
    return directory


def build(
    tmp_path: Path, name: str = "kg", release: Path | None = None, **settings: object
) -> KnowledgeGraph:
    release = release or write_release(tmp_path / "umls")
    build_kg(KGConfig(source="umls", umls_dir=str(release), **settings), tmp_path / name)
    return KnowledgeGraph.load(tmp_path / name)


def edges(kg: KnowledgeGraph) -> set[tuple[str, str, str]]:
    """(row CUI, neighbour CUI, relation name) for every CSR entry."""
    out = set()
    for node in range(kg.num_nodes):
        for nbr, rel_id in zip(*kg.neighbours(node), strict=True):
            out.add((kg.source_ids[node], kg.source_ids[int(nbr)], kg.relation_names[int(rel_id)]))
    return out


DEFAULT_EDGES = {
    ("C0000001", "C0000002", "may_be_treated_by"),
    ("C0000002", "C0000001", "may_treat"),
    ("C0000002", "C0000002", "SY"),
    ("C0000003", "C0000008", "RB"),
    ("C0000004", "C0000005", "inverse_isa"),
    ("C0000005", "C0000004", "isa"),
    ("C0000008", "C0000003", "RN"),
    ("C0000009", "C0000001", "RO"),
}


def test_default_build_names_edges_types(tmp_path: Path) -> None:
    kg = build(tmp_path)
    assert kg.source_ids == [
        "C0000001",
        "C0000002",
        "C0000003",
        "C0000004",
        "C0000005",
        "C0000008",
        "C0000009",
    ]
    a = kg.node_id("C0000001")
    assert kg.names(a) == ["Aspirin", 'Acetylsalicylic "ASA" acid']  # ENG only, case-deduped, not suppressed
    assert kg.preferred_names[kg.node_id("C0000008")] == "Influenza"  # TS=P/STT=PF/ISPREF=Y beats file order
    assert kg.names(kg.node_id("C0000008")) == ["Influenza", "flu"]
    assert kg.semantic_types[a] == ["Organic Chemical", "Pharmacologic Substance"]  # MRFILES column order
    assert edges(kg) == DEFAULT_EDGES
    phrases = dict(zip(kg.relation_names, kg.relation_phrases, strict=True))
    assert phrases["may_treat"] == "may treat" and phrases["RB"] == "is broader than"
    counts = kg.summary()
    assert counts["source_details"]["mrrel_endpoint_not_kept"] == 1  # C0000006 is French-only
    assert counts["sources"]["MSH"] == 5 and counts["edges_per_relation"]["SY"] == 1


def test_xrefs_prefer_main_heading(tmp_path: Path) -> None:
    kg = build(tmp_path)
    assert kg.lookup_xref("D999999") == [kg.node_id("C0000005"), kg.node_id("C0000004")]
    assert kg.lookup_xref("MESH:D001241") == [kg.node_id("C0000001")]
    assert kg.lookup_xref("OMIM:157300") == [kg.node_id("C0000005")]
    assert kg.lookup_xref("NCBITaxon:9606") == [kg.node_id("C0000009")]
    assert kg.lookup_xref("SNOMEDCT:6142004") == [kg.node_id("C0000008")]


@pytest.mark.parametrize("spelling", ["C0000005", "UMLS:C0000005", "umls:c0000005", "CUI:C0000005"])
def test_cui_lookup_accepts_every_spelling(tmp_path: Path, spelling: str) -> None:
    kg = build(tmp_path)
    assert kg.lookup_xref(spelling) == [kg.node_id("C0000005")]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"keep_self_loops": False}, DEFAULT_EDGES - {("C0000002", "C0000002", "SY")}),
        (
            {"rel_exclude": ["SY", "RO"]},
            {e for e in DEFAULT_EDGES if e[2] not in ("SY", "RO", "may_treat", "may_be_treated_by")},
        ),
        ({"rel_include": ["CHD", "PAR"]}, {e for e in DEFAULT_EDGES if "isa" in e[2]}),
        ({"rela_include": ["may_treat"]}, {("C0000002", "C0000001", "may_treat")}),
        (
            {"rela_exclude": ["may_treat", "isa"]},
            {e for e in DEFAULT_EDGES if e[2] not in ("may_treat", "isa")},
        ),
        ({"keep_suppressed": True}, DEFAULT_EDGES | {("C0000003", "C0000005", "SIB")}),
        ({"languages": ["ENG", "FRE"]}, DEFAULT_EDGES | {("C0000001", "C0000006", "RO")}),
    ],
)
def test_edge_filters(
    tmp_path: Path, settings: dict[str, object], expected: set[tuple[str, str, str]]
) -> None:
    assert edges(build(tmp_path, **settings)) == expected


def test_concept_filters(tmp_path: Path) -> None:
    kg = build(tmp_path, "msh", sab_include=["MSH"])
    assert kg.source_ids == ["C0000001", "C0000002", "C0000003", "C0000004", "C0000005"]
    assert kg.preferred_names[kg.node_id("C0000003")] == "Pyrexia"
    kg = build(tmp_path, "nomsh", sab_exclude=["MSH"])
    assert "C0000004" not in kg.source_ids and kg.names(kg.node_id("C0000001")) == [
        "ASPIRIN",
        'Acetylsalicylic "ASA" acid',
    ]
    kg = build(tmp_path, "fre", languages=["ENG", "FRE"], keep_suppressed=True)
    assert "Aspirine" in kg.names(kg.node_id("C0000001")) and "C0000007" in kg.source_ids
    assert "Aspirin [obsolete]" in kg.names(kg.node_id("C0000001"))


@pytest.mark.parametrize(
    ("hops", "expected"),
    [(0, ["C0000009"]), (1, ["C0000001", "C0000009"]), (2, ["C0000001", "C0000002", "C0000009"])],
)
def test_restrict_to_neighbourhood(tmp_path: Path, hops: int, expected: list[str]) -> None:
    seeds = tmp_path / "cuis.txt"
    seeds.write_text("UMLS:C0000009\nC0999999\n", encoding="utf-8")
    kg = build(tmp_path, restrict_to=str(seeds), hops=hops)
    assert kg.source_ids == expected
    assert kg.summary()["source_details"]["restrict_cuis_not_found"] == 1
    assert all(src in expected and dst in expected for src, dst, _ in edges(kg))


def test_standard_layout_without_mrfiles(tmp_path: Path) -> None:
    release = write_release(tmp_path / "umls")
    (release / "MRFILES.RRF").unlink()
    (release / "MRSTY.RRF").write_text("C0000002|T184|A2.2.2|Sign or Symptom|AT3|256|\n", encoding="utf-8")
    kg = build(tmp_path, release=release)
    assert kg.semantic_types[kg.node_id("C0000002")] == ["Sign or Symptom"]


def _corrupt(tmp_path: Path, file: str, line: int, text: str | bytes) -> Path:
    release = write_release(tmp_path / "bad")
    path = release / file
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text if isinstance(text, bytes) else text.encode()
    path.write_bytes(b"\n".join(lines))
    return release


@pytest.mark.parametrize(
    ("file", "line", "text", "message"),
    [
        ("MRCONSO.RRF", 3, "C0000001|ENG|S|L1|PF|S1|Y|A1||||MSH|MH|D1|too few|", "expected 18"),
        ("MRCONSO.RRF", 4, atom("C0000001", "Asp\udce9").encode("utf-8", "surrogateescape"), "UTF-8"),
        ("MRCONSO.RRF", 2, atom("C0000001", "  "), "non-empty STR"),
        ("MRCONSO.RRF", 2, atom("X123", "Aspirin"), "expected a CUI"),
        ("MRREL.RRF", 5, rel("C0000002", "RO", "C0999999"), "C0999999 is not a concept"),
        ("MRREL.RRF", 6, "C0000002|A1|CUI|RO|", "expected 16"),
    ],
)
def test_bad_lines_exit_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, line: int, text: str | bytes, message: str
) -> None:
    release = _corrupt(tmp_path, file, line, text)
    out = tmp_path / "out"
    assert main(["kg", "build", "--umls", str(release), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{file}:{line}" in err and message in err
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))  # nothing half-written
    # One bad line is tolerated with --max-errors 1 and counted in the manifest.
    assert (
        main(["kg", "build", "--umls", str(release), "--out", str(out), "--max-errors", "1", "--json"]) == 0
    )
    manifest = json.loads(capsys.readouterr().out)
    assert sum(manifest["counts"]["skipped_lines"].values()) == 1


def test_more_bad_lines_than_max_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = write_release(tmp_path / "bad", mrrel=[*MRREL, rel("C0000001", "RO", "C0888888"), "broken"])
    args = ["kg", "build", "--umls", str(release), "--out", str(tmp_path / "o"), "--max-errors", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "MRREL.RRF:11" in err and "more than --max-errors=1" in err  # line 12 was counted first
    assert main([*args[:-1], "2"]) == 0


def test_missing_files_empty_result_existing_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = write_release(tmp_path / "umls")
    assert main(["kg", "build", "--umls", str(tmp_path / "nope"), "--out", str(tmp_path / "a")]) == 2
    assert "not found" in capsys.readouterr().err
    (release / "MRREL.RRF").rename(release / "MRREL.bak")
    assert main(["kg", "build", "--umls", str(release), "--out", str(tmp_path / "a")]) == 2
    assert "MRREL.RRF not found" in capsys.readouterr().err
    (release / "MRREL.bak").rename(release / "MRREL.RRF")
    assert (
        main(["kg", "build", "--umls", str(release), "--out", str(tmp_path / "a"), "--sab-include", "NOPE"])
        == 2
    )
    assert "empty after filtering" in capsys.readouterr().err
    assert main(["kg", "build", "--umls", str(release), "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main(["kg", "build", "--umls", str(release), "--out", str(tmp_path / "a")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["kg", "build", "--umls", str(release), "--out", str(tmp_path / "a"), "--overwrite"]) == 0


def test_empty_restriction_is_bad_input(tmp_path: Path) -> None:
    seeds = tmp_path / "cuis.txt"
    seeds.write_text("C0999999\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="empty"):
        build(tmp_path, restrict_to=str(seeds))
