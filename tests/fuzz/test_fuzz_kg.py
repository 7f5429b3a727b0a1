"""Fuzzing the KG readers through `kg build`: UMLS RRF files, OBO, and the TSV pair."""

from __future__ import annotations

from fuzz_helpers import MAX_ERRORS, check_outcome, fuzz_settings, fuzzed_bytes, workspace
from hypothesis import given

from bali.kg.build import build_kg
from bali.kg.config import KGConfig

RRF: dict[str, bytes] = {
    "MRCONSO.RRF": (
        b"C0000001|ENG|P|L1|PF|S1|Y|A1||||MSH|MH|D000001|Aspirin|0|N|256|\n"
        b"C0000001|ENG|S|L2|PF|S2|N|A2||||RXNORM|PT|1191|ASA|0|N|256|\n"
        b"C0000002|ENG|P|L3|PF|S3|Y|A3||||MSH|MH|D000002|Headache|0|N|256|\n"
        b"C0000003|FRE|P|L4|PF|S4|Y|A4||||MSHFRE|MH|D000003|Fievre|0|O|256|\n"
    ),
    "MRREL.RRF": (
        b"C0000002|A1|CUI|RO|C0000001|A2|CUI|may_treat|R1||MSH|MSH|||N||\n"
        b"C0000001|A1|CUI|CHD|C0000002|A2|CUI||R2||MSH|MSH|||N||\n"
    ),
    "MRSTY.RRF": (
        b"C0000001|T109|A1.4.1.2.1|Organic Chemical|AT1|256|\nC0000002|T184|A2.2.2|Sign or Symptom|AT3|256|\n"
    ),
    "MRFILES.RRF": (
        b"MRCONSO.RRF|Concept names|CUI,LAT,TS,LUI,STT,SUI,ISPREF,AUI,SAUI,SCUI,SDUI,SAB,TTY,CODE,STR,SRL,"
        b"SUPPRESS,CVF|18|4|2000|\n"
        b"MRREL.RRF|Related Concepts|CUI1,AUI1,STYPE1,REL,CUI2,AUI2,STYPE2,RELA,RUI,SRUI,SAB,SL,RG,DIR,"
        b"SUPPRESS,CVF|16|2|1000|\n"
        b"MRSTY.RRF|Semantic Types|CUI,TUI,STN,STY,ATUI,CVF|6|2|200|\n"
    ),
}
OBO = b"""format-version: 1.2

[Term]
id: TST:0000001
name: Phenotypic abnormality
def: "A \\"deviation\\" from normal." [HPO:probinson]

[Term]
id: TST:0000002
name: Seizure
synonym: "Epileptic seizure" EXACT []
synonym: "Fits" RELATED layperson []
xref: MSH:D012640 "Seizures"
is_a: TST:0000001 ! Phenotypic abnormality
relationship: part_of TST:0000003

[Term]
id: TST:0000003
name: Old term
is_obsolete: true

[Typedef]
id: part_of
"""
TSV_CONCEPTS = b"id\tname\tsynonyms\txrefs\tdefinition\nA\tAspirin\tASA|acetylsalicylic acid\tMSH:D001241\tA drug.\nB\tHeadache\n"
TSV_EDGES = b"source\trelation\ttarget\nA\tmay_treat\tB\nB\tis_a\tB\n"
RRF_TOKENS = (b"|C0000001|", b"ENG", b"|O|", b"MRCONSO.RRF|", b"CUI,CUI")
UMLS_EXAMPLES = 15  # one UMLS build is ~0.1 s (two 10^7-entry CUI tables)
TEXT_EXAMPLES = 80


def _fuzz_umls(fuzzed: str, data: bytes, max_errors: int) -> None:
    with workspace() as root:
        release = root / "umls"
        release.mkdir()
        for name, seed in RRF.items():
            (release / name).write_bytes(data if name == fuzzed else seed)
        out = root / "out" / "kg"
        check_outcome(
            lambda: build_kg(KGConfig(source="umls", umls_dir=str(release), max_errors=max_errors), out),
            [release, *release.iterdir()],
            out,
        )


@fuzz_settings(UMLS_EXAMPLES)
@given(fuzzed_bytes(RRF["MRCONSO.RRF"], RRF_TOKENS), MAX_ERRORS)
def test_fuzz_mrconso(data: bytes, max_errors: int) -> None:
    _fuzz_umls("MRCONSO.RRF", data, max_errors)


@fuzz_settings(UMLS_EXAMPLES)
@given(fuzzed_bytes(RRF["MRREL.RRF"], RRF_TOKENS), MAX_ERRORS)
def test_fuzz_mrrel(data: bytes, max_errors: int) -> None:
    _fuzz_umls("MRREL.RRF", data, max_errors)


@fuzz_settings(UMLS_EXAMPLES)
@given(fuzzed_bytes(RRF["MRSTY.RRF"], RRF_TOKENS), MAX_ERRORS)
def test_fuzz_mrsty(data: bytes, max_errors: int) -> None:
    _fuzz_umls("MRSTY.RRF", data, max_errors)


@fuzz_settings(UMLS_EXAMPLES)
@given(fuzzed_bytes(RRF["MRFILES.RRF"], RRF_TOKENS), MAX_ERRORS)
def test_fuzz_mrfiles(data: bytes, max_errors: int) -> None:
    _fuzz_umls("MRFILES.RRF", data, max_errors)


@fuzz_settings(TEXT_EXAMPLES)
@given(
    fuzzed_bytes(OBO, (b"[Term]\n", b"id: ", b"name: ", b"is_a: ", b'synonym: "', b" EXACT", b"{")),
    MAX_ERRORS,
)
def test_fuzz_obo(data: bytes, max_errors: int) -> None:
    with workspace() as root:
        path = root / "in" / "x.obo"
        path.parent.mkdir()
        path.write_bytes(data)
        out = root / "out" / "kg"
        config = KGConfig(source="obo", obo_files=[str(path)], max_errors=max_errors)
        check_outcome(lambda: build_kg(config, out), [path], out)


def _fuzz_tsv(concepts: bytes, edges: bytes, max_errors: int) -> None:
    with workspace() as root:
        (root / "in").mkdir()
        c, e = root / "in" / "concepts.tsv", root / "in" / "edges.tsv"
        c.write_bytes(concepts)
        e.write_bytes(edges)
        out = root / "out" / "kg"
        config = KGConfig(source="tsv", tsv_concepts=str(c), tsv_edges=str(e), max_errors=max_errors)
        check_outcome(lambda: build_kg(config, out), [c, e], out)


@fuzz_settings(TEXT_EXAMPLES)
@given(fuzzed_bytes(TSV_CONCEPTS, (b"A\t", b"B\t", b"id\t")), MAX_ERRORS)
def test_fuzz_tsv_concepts(data: bytes, max_errors: int) -> None:
    _fuzz_tsv(data, TSV_EDGES, max_errors)


@fuzz_settings(TEXT_EXAMPLES)
@given(fuzzed_bytes(TSV_EDGES, (b"A\t", b"B\t", b"source\t")), MAX_ERRORS)
def test_fuzz_tsv_edges(data: bytes, max_errors: int) -> None:
    _fuzz_tsv(TSV_CONCEPTS, data, max_errors)
