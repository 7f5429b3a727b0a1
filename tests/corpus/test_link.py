"""`bali corpus link` end to end: builtin definitions, gold mapping through xrefs, bad input (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bali.cli import main
from bali.corpus.artifact import LinkedCorpus
from bali.corpus.config import CorpusConfig
from bali.corpus.link import link_corpus
from bali.corpus.readers import InputBudget, read_documents

KGFactory = Callable[..., Path]  # the tiny_kg fixture of conftest.py

PUBTATOR = (
    "100|t|Asthma and cough. Lung disease e.g. cardiomyopathy.\n"
    "100|a|Cough in asthma with heart failure.\n"
    "100\t0\t6\tAsthma\tDisease\tD001249\n"
    "100\t11\t16\tcough\tDisease\tMESH:D003371|D999999\n"
    "100\t11\t16\tcough\tDisease\tD003371\n"
    "100\t18\t30\tLung disease\tDisease\tD008171+D009202\n"
    "100\t12\t22\tough. Lung\tDisease\tD001249\n"
    "100\t36\t50\tcardiomyopathy\tDisease\t-1\n"
    "100\t61\t67\tasthma\tChemical\tD001249\n"
    "100\t73\t86\theart failure\tDisease\tD006333\n"
    "100\tCID\tD001249\tD003371\n"
)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["corpus", "link", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_builtin_links_definitions_without_their_own_concept(
    tiny_kg: KGFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kg = tiny_kg(
        {
            0: "Asthma is a chronic lung disease with cough, e.g. at night. Bronchial asthma is common.",
            1: "A disease of the lung. Includes asthma (ASTHMA).",
            9: "Autosomal dominant polycystic kidney disease (ADPKD) is a cancer. ADPKD is frequent.",
            10: "  ",
        }
    )
    out = tmp_path / "corpus"
    code, stdout, _ = run(["--kg", str(kg), "--builtin", "--out", str(out), "--json"], capsys)
    assert code == 0
    manifest = json.loads(stdout)
    corpus = LinkedCorpus.load(out)
    rows = corpus.sentences.to_pylist()
    assert [r["doc_id"] for r in rows] == ["MONDO:0004979"] * 2 + ["MONDO:0005275"] * 2 + [
        "MONDO:0004996"
    ] * 2
    assert corpus.sentence(0) == (
        "Asthma is a chronic lung disease with cough, e.g. at night.",
        [(20, 32, [1]), (38, 43, [2])],
    )
    assert corpus.sentence(1) == ("Bronchial asthma is common.", [])
    assert corpus.sentence(3)[1] == [(9, 15, [0]), (17, 23, [0])]  # too long to be an acronym
    # ADPKD is its own concept in its own definition: neither long nor short form links to it.
    assert corpus.sentence(4)[1] == [(58, 64, [11])]
    counts = manifest["counts"]
    assert counts["documents"] == 3 and counts["sentences"] == 6
    assert counts["mentions_dropped"]["own_concept"] == 5
    assert counts["abbreviations_defined"] == 1
    assert counts["skipped"] == {"empty_definitions": 1}
    assert manifest["settings"]["mention_source"] == "dictionary"


def test_pubtator_gold_mapping_through_xrefs(tiny_kg: KGFactory, tmp_path: Path) -> None:
    kg = tiny_kg()
    path = tmp_path / "docs.pubtator"
    path.write_text(PUBTATOR, encoding="utf-8")
    config = CorpusConfig(builtin=False, inputs=[str(path)], format="pubtator", entity_types=["Disease"])
    manifest = link_corpus(kg, tmp_path / "out", config, show_progress=False)
    corpus = LinkedCorpus.load(tmp_path / "out")
    assert [corpus.sentence(i)[0] for i in range(len(corpus))] == [
        "Asthma and cough.",
        "Lung disease e.g. cardiomyopathy.",
        "Cough in asthma with heart failure.",
    ]
    assert corpus.sentence(0)[1] == [(0, 6, [0]), (11, 16, [2])]
    assert corpus.sentence(1)[1] == [(0, 12, [1, 6])]  # composite: union of its parts
    assert corpus.sentence(2)[1] == []
    gold = manifest["counts"]["gold"]
    assert gold["total"] == 8
    assert gold["mapped"] == 5  # incl. the duplicate "cough" and the boundary-crossing one
    assert gold["partially_mapped"] == 1
    assert gold["unmapped"] == {"no_id": 1, "unknown_id": 1, "type_excluded": 1}
    assert gold["duplicate_spans_merged"] == 1
    assert gold["unknown_id_prefixes"] == {"MESH": 2}
    assert manifest["counts"]["mentions_dropped"]["crossing_sentence_boundary"] == 1
    assert manifest["counts"]["mentions"] == 3


def test_text_and_jsonl_use_the_dictionary(tiny_kg: KGFactory, tmp_path: Path) -> None:
    kg = tiny_kg()
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "d1", "text": "A cold. ALL of them had acute lymphoblastic leukemia."}\n')
    config = CorpusConfig(builtin=False, inputs=[str(path)], format="jsonl", ambiguous="none")
    link_corpus(kg, tmp_path / "out", config, show_progress=False)
    corpus = LinkedCorpus.load(tmp_path / "out")
    assert list(corpus) == [
        ("A cold.", []),
        ("ALL of them had acute lymphoblastic leukemia.", [(0, 3, [3]), (16, 44, [3])]),
    ]


def test_bern2_gold(tiny_kg: KGFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kg = tiny_kg()
    record = {
        "pmid": "7",
        "text": "Asthma in mice. Cough.",
        "annotations": [
            {"id": ["mesh:D001249"], "mention": "Asthma", "obj": "disease", "span": {"begin": 0, "end": 6}},
            {
                "id": ["NCBITaxon:10090"],
                "mention": "mice",
                "obj": "species",
                "span": {"begin": 10, "end": 14},
            },
            {"id": ["CUI-less"], "mention": "Cough", "obj": "disease", "span": {"begin": 16, "end": 21}},
        ],
    }
    path = tmp_path / "pubmed.json"
    path.write_text(json.dumps(record) + "\n")
    code, stdout, _ = run(
        ["--kg", str(kg), "--input", str(path), "--format", "bern2", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 0 and "mapped 1/3" in stdout
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["counts"]["gold"]["unmapped"]["unknown_id"] == 1
    assert manifest["counts"]["gold"]["unknown_id_prefixes"] == {"NCBITAXON": 1}
    assert LinkedCorpus.load(tmp_path / "o").sentence(0) == ("Asthma in mice.", [(0, 6, [0])])


@pytest.mark.parametrize(
    ("content", "fmt", "needle"),
    [
        (b"1|t|Asthma.\n1\t0\t60\tAsthma\tDisease\tD001249\n", "pubtator", "in.pubtator:2: span 0-60"),
        (b"1|t|Asthma.\n1\t0\t6\tCough!\tDisease\tD001249\n", "pubtator", "in.pubtator:2: mention 'Cough!'"),
        (b"1|t|Asthma.\n1\tzero\t6\n", "pubtator", "in.pubtator:2: expected PMID"),
        (b"1|t| \n", "pubtator", "in.pubtator:1: document 1 has no text"),
        (b"ok\n\xc3\x28 bad\n", "text", "in.pubtator:2: invalid UTF-8"),
        (b'{"id": "x", "text": ""}\n', "jsonl", "in.pubtator:1: document x has no text"),
        (b'{"id": "x" "text": "a"}\n', "jsonl", "in.pubtator:1: not a JSON object"),
    ],
)
def test_bad_input_exits_2_naming_file_and_line(
    tiny_kg: KGFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    fmt: str,
    needle: str,
) -> None:
    kg = tiny_kg()
    path = tmp_path / "in.pubtator"
    path.write_bytes(content)
    out = tmp_path / "out"
    code, _, err = run(["--kg", str(kg), "--input", str(path), "--format", fmt, "--out", str(out)], capsys)
    assert code == 2
    assert needle in err
    assert not out.exists()


def test_unknown_ids_as_errors_and_the_error_budget(
    tiny_kg: KGFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kg = tiny_kg()
    path = tmp_path / "in.pubtator"
    path.write_text(PUBTATOR, encoding="utf-8")
    args = ["--kg", str(kg), "--input", str(path), "--format", "pubtator", "--unknown-ids", "error"]
    code, _, err = run([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "in.pubtator:10: id 'D006333' of mention 'heart failure'" in err
    code, _, _ = run([*args, "--out", str(tmp_path / "b"), "--max-errors", "5", "--json"], capsys)
    assert code == 0
    errors = json.loads((tmp_path / "b" / "manifest.json").read_text())["counts"]["errors"]
    assert errors["by_reason"] == {"unknown_id": 1} and errors["total"] == 1


def test_max_errors_counts_every_bad_record(
    tiny_kg: KGFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kg = tiny_kg()
    path = tmp_path / "in.pubtator"
    path.write_bytes(
        b"1|t|Asthma.\n1\t0\t60\tAsthma\tDisease\tD001249\n1\t0\t6\tAsthma\tDisease\tD001249\n\n"
        b"2|t|\xff\n\n3|t|Cough.\n3\t0\t5\tCough\tDisease\tD003371\n"
    )
    base = ["--kg", str(kg), "--input", str(path), "--format", "pubtator"]
    code, _, err = run([*base, "--out", str(tmp_path / "a"), "--max-errors", "1"], capsys)
    assert code == 2 and "more than --max-errors=1" in err
    code, stdout, _ = run([*base, "--out", str(tmp_path / "b"), "--max-errors", "2"], capsys)
    assert code == 0 and "2 bad records skipped" in stdout
    counts = json.loads((tmp_path / "b" / "manifest.json").read_text())["counts"]
    assert counts["errors"]["by_reason"] == {"span_out_of_range": 1, "bad_utf8": 1}
    assert counts["documents"] == 2 and counts["mentions"] == 2


def test_usage_errors(tiny_kg: KGFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kg = tiny_kg()
    text = tmp_path / "a.txt"
    text.write_text("Asthma.\n")
    out = tmp_path / "out"
    assert run(["--kg", str(kg), "--input", str(text), "--out", str(out)], capsys)[0] == 0
    code, _, err = run(["--kg", str(kg), "--input", str(text), "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in err
    assert run(["--kg", str(kg), "--input", str(text), "--out", str(out), "--overwrite"], capsys)[0] == 0
    code, _, err = run(["--kg", str(kg), "--builtin", "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and "no textual definitions" in err
    code, _, err = run(["--kg", str(tmp_path), "--builtin", "--out", str(tmp_path / "c")], capsys)
    assert code == 2 and "not a bali artefact" in err
    code, _, err = run(
        ["--kg", str(kg), "--input", str(text), "--mentions", "gold", "--out", str(tmp_path / "d")], capsys
    )
    assert code == 2 and "needs annotated input" in err
    code, _, err = run(
        ["--kg", str(kg), "--input", str(tmp_path / "x.txt"), "--out", str(tmp_path / "e")], capsys
    )
    assert code == 2 and "x.txt: input file not found" in err
    code, _, err = run(
        ["--kg", str(kg), "--builtin", "--out", str(tmp_path / "f"), "--max-errors", "-1"], capsys
    )
    assert code == 2 and "--max-errors must be >= 0" in err


def test_parallel_linking_gives_the_same_corpus(tiny_kg: KGFactory, tmp_path: Path) -> None:
    kg = tiny_kg()
    path = tmp_path / "docs.txt"
    lines = [
        f"Doc {i}: asthma and cough. In acute lymphoblastic leukemia (ALL), ALL relapses {i} times."
        for i in range(600)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    serial = link_corpus(
        kg, tmp_path / "a", CorpusConfig(builtin=False, inputs=[str(path)]), show_progress=False
    )
    parallel = link_corpus(
        kg, tmp_path / "b", CorpusConfig(builtin=False, inputs=[str(path)], workers=2), show_progress=False
    )
    a, b = LinkedCorpus.load(tmp_path / "a"), LinkedCorpus.load(tmp_path / "b")
    assert len(a) == len(b) == 1200
    assert list(a) == list(b)
    assert a.sentences.column("doc_id").to_pylist() == b.sentences.column("doc_id").to_pylist()
    for key in ("mentions", "mentions_by_origin", "abbreviations_defined", "documents"):
        assert serial["counts"][key] == parallel["counts"][key]
    assert parallel["counts"]["abbreviations_defined"] == 600


def test_gold_ids_prefer_the_preferred_cross_reference(tiny_kg: KGFactory, tmp_path: Path) -> None:
    kg = tiny_kg(
        entries=[
            ("C1", ["asthma"], ["MESH:D001249", "MESH:D000001"]),
            ("C2", ["asthma attack"], ["~MESH:D001249"]),  # an entry term of another concept
            ("C3", ["cough"], ["~MESH:D000001", "~MESH:D003371"]),
            ("C4", ["tussis"], ["~MESH:D003371"]),
        ],
    )
    path = tmp_path / "in.pubtator"
    path.write_text(
        "1|t|Asthma and cough.\n1\t0\t6\tAsthma\tDisease\tD001249\n1\t11\t16\tcough\tDisease\tD003371\n"
    )
    link_corpus(kg, tmp_path / "out", CorpusConfig(builtin=False, inputs=[str(path)], format="pubtator"))
    # D001249: only the preferred node; D003371: no preferred node, so every node carrying it.
    assert LinkedCorpus.load(tmp_path / "out").sentence(0)[1] == [(0, 6, [0]), (11, 16, [2, 3])]


@pytest.mark.parametrize("fmt", ["pubtator", "bern2"])
def test_umls_prefixed_cuis_map_to_cui_nodes(tiny_kg: KGFactory, tmp_path: Path, fmt: str) -> None:
    kg = tiny_kg(entries=[("C0004096", ["asthma"], ["MESH:D001249"]), ("C0010200", ["cough"], [])])
    text = "Asthma and cough."
    ids = [["UMLS:C0004096"], ["umls:C0010200", "C0010200"]]
    path = tmp_path / f"in.{fmt}"
    if fmt == "pubtator":
        lines = [f"1|t|{text}", "1\t0\t6\tAsthma\tDisease\tUMLS:C0004096"]
        path.write_text("\n".join([*lines, "1\t11\t16\tcough\tDisease\tumls:C0010200|C0010200\n"]))
    else:
        spans = [(0, 6), (11, 16)]
        annotations = [
            {"id": i, "mention": text[b:e], "obj": "disease", "span": {"begin": b, "end": e}}
            for i, (b, e) in zip(ids, spans, strict=True)
        ]
        path.write_text(json.dumps({"pmid": "1", "text": text, "annotations": annotations}) + "\n")
    manifest = link_corpus(kg, tmp_path / "out", CorpusConfig(builtin=False, inputs=[str(path)], format=fmt))
    assert manifest["counts"]["gold"]["mapped"] == 2
    assert LinkedCorpus.load(tmp_path / "out").sentence(0)[1] == [(0, 6, [0]), (11, 16, [1])]


def test_bern2_tmvar_ids_are_whole_ids_counted_under_their_prefix(
    tiny_kg: KGFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tmVar id holds '|' and ';': one unmapped TMVAR id, not fragments with unknown prefixes."""
    tmvar = "tmVar:p|SUB|V|600|E;HGVS:p.V600E;VariantGroup:0;CorrespondingGene:673;RS#:113488022"
    record = {
        "pmid": "8",
        "text": "Asthma with V600E.",
        "annotations": [
            {"id": ["mesh:D001249"], "mention": "Asthma", "obj": "disease", "span": {"begin": 0, "end": 6}},
            {"id": [tmvar], "mention": "V600E", "obj": "mutation", "span": {"begin": 12, "end": 17}},
        ],
    }
    path = tmp_path / "pubmed.json"
    path.write_text(json.dumps(record) + "\n")
    (doc,) = read_documents([path], "bern2", InputBudget())
    assert doc.annotations[1].ids == "TMVAR:p_SUB_V_600_E"
    code, stdout, _ = run(
        ["--kg", str(tiny_kg()), "--input", str(path), "--format", "bern2", "--out", str(tmp_path / "o")],
        capsys,
    )
    assert code == 0 and "mapped 1/2" in stdout
    gold = json.loads((tmp_path / "o" / "manifest.json").read_text())["counts"]["gold"]
    assert gold["unmapped"]["unknown_id"] == 1
    assert gold["unknown_id_prefixes"] == {"TMVAR": 1}
