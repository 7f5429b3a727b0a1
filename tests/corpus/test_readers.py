"""Each input format, read from tiny files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bali.corpus.readers import InputBudget, read_documents
from bali.errors import BadInputError

PUBTATOR = (
    "100|t|Asthma and cough.\n"
    "100|a|Cough in asthma patients.\n"
    "100\t0\t6\tAsthma\tDisease\tD001249\n"
    "100\t11\t16\tcough\tDisease\tMESH:D003371|D001249\n"
    "100\t18\t23\tCough\tDisease\tD003371+D001249\tCough|Cough\n"
    "100\tCID\tD000001\tD001249\n"
    "\n"
    "200|t|Only a title\n"
    "200\t0\t4\tOnly\tChemical\t-1\n"
)


def test_pubtator(tmp_path: Path) -> None:
    path = tmp_path / "docs.pubtator"
    path.write_text(PUBTATOR, encoding="utf-8")
    budget = InputBudget()
    docs = list(read_documents([path], "pubtator", budget))
    assert budget.skipped == {"relation_lines": 1}
    assert [d.doc_id for d in docs] == ["100", "200"]
    assert docs[0].text == "Asthma and cough. Cough in asthma patients."
    assert [(a.start, a.end, a.mention, a.ids) for a in docs[0].annotations] == [
        (0, 6, "Asthma", "D001249"),
        (11, 16, "cough", "MESH:D003371|D001249"),
        (18, 23, "Cough", "D003371+D001249"),
    ]
    assert docs[0].annotations[0].line == 3 and docs[1].line == 8
    assert docs[1].text == "Only a title" and docs[1].annotations[0].ids == "-1"


def test_pubtator_without_blank_lines_between_documents(tmp_path: Path) -> None:
    path = tmp_path / "docs.pubtator"
    path.write_text("1|t|A.\n1|a|B.\n2|t|C.\n2|a|D.\n2\t0\t2\tC.\tX\tD1\n", encoding="utf-8")
    docs = list(read_documents([path], "pubtator", InputBudget()))
    assert [(d.doc_id, d.text, len(d.annotations)) for d in docs] == [("1", "A. B.", 0), ("2", "C. D.", 1)]


def test_bern2(tmp_path: Path) -> None:
    record = {
        "pmid": 42,
        "text": "Asthma in mice.",
        "annotations": [
            {"id": ["mesh:D001249"], "mention": "Asthma", "obj": "disease", "span": {"begin": 0, "end": 6}},
            {
                "id": ["NCBITaxon:10090", "CUI-less"],
                "mention": "mice",
                "obj": "species",
                "span": {"begin": 10, "end": 14},
                "prob": 0.9,
                "is_neural_normalized": False,
            },
            {"id": ["CUI-less"], "mention": "in", "obj": "gene", "span": {"begin": 7, "end": 9}},
        ],
    }
    path = tmp_path / "pubmed22n0001.json"
    path.write_text(json.dumps(record) + "\n\n", encoding="utf-8")
    (doc,) = read_documents([path], "bern2", InputBudget())
    assert doc.doc_id == "42" and doc.text == "Asthma in mice."
    assert [(a.start, a.end, a.type, a.ids) for a in doc.annotations] == [
        (0, 6, "disease", "mesh:D001249"),
        (10, 14, "species", "NCBITaxon:10090"),
        (7, 9, "gene", ""),
    ]


def test_jsonl_and_text(tmp_path: Path) -> None:
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"id": "a", "text": "Asthma."}\n\n{"text": "No id."}\n', encoding="utf-8")
    docs = list(read_documents([jsonl], "jsonl", InputBudget()))
    assert [(d.doc_id, d.text) for d in docs] == [("a", "Asthma."), ("docs.jsonl:3", "No id.")]
    text = tmp_path / "docs.txt"
    text.write_text("First doc.\n\nSecond doc.\n", encoding="utf-8")
    budget = InputBudget()
    docs = list(read_documents([text], "text", budget))
    assert [(d.doc_id, d.text) for d in docs] == [("docs.txt:1", "First doc."), ("docs.txt:3", "Second doc.")]
    assert budget.skipped == {"blank_lines": 1}
    (whole,) = read_documents([text], "text", InputBudget(), text_unit="file")
    assert whole.doc_id == "docs.txt" and whole.text == "First doc.\n\nSecond doc.\n"


def test_bad_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine line\nbad \xff byte\nfine again\n")
    with pytest.raises(BadInputError, match=r"bad.txt:2: invalid UTF-8"):
        list(read_documents([path], "text", InputBudget()))
    budget = InputBudget(5)
    assert len(list(read_documents([path], "text", budget))) == 2
    assert budget.counts == {"bad_utf8": 1}
    with pytest.raises(BadInputError, match=r"bad.txt:2: invalid UTF-8"):
        list(read_documents([path], "text", InputBudget(), text_unit="file"))


@pytest.mark.parametrize(
    ("content", "reason", "line"),
    [
        ("1|t|Asthma.\n1\t0\t50\tAsthma\tDisease\tD1\n", "span_out_of_range", 2),
        ("1|t|Asthma.\n1\t0\t6\tCough!\tDisease\tD1\n", "mention_mismatch", 2),
        ("1|t|Asthma.\n1\t0\tsix\tAsthma\tDisease\tD1\n", "malformed_line", 2),
        ("1|t|Asthma.\n1\t0\n", "malformed_line", 2),
        ("1|x|Asthma.\n", "malformed_line", 1),
        ("1|t|Asthma.\n2\t0\t6\tAsthma\tDisease\tD1\n", "malformed_line", 2),
        ("1|t|   \n1|a|\n", "empty_document", 1),
    ],
)
def test_pubtator_bad_records(tmp_path: Path, content: str, reason: str, line: int) -> None:
    path = tmp_path / "bad.pubtator"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInputError) as info:
        list(read_documents([path], "pubtator", InputBudget()))
    assert info.value.line == line and info.value.path == str(path)
    budget = InputBudget(3)
    list(read_documents([path], "pubtator", budget))
    assert budget.counts == {reason: 1}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("{not json", "malformed_line"),
        ('{"text": "no pmid"}', "malformed_line"),
        ('{"pmid": 1, "text": ""}', "empty_document"),
        (
            '{"pmid": 1, "text": "Asthma.", "annotations": [{"id": [], "span": {"begin": 0}}]}',
            "malformed_line",
        ),
        (
            '{"pmid": 1, "text": "Asthma.", "annotations": [{"id": [], "mention": "Asthma", "span": {"begin": 3, "end": 99}}]}',
            "span_out_of_range",
        ),
        (
            '{"pmid": 1, "text": "Asthma.", "annotations": [{"id": [], "mention": "Cough", "span": {"begin": 0, "end": 5}}]}',
            "mention_mismatch",
        ),
    ],
)
def test_bern2_bad_records(tmp_path: Path, record: str, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"pmid": 0, "text": "fine"}\n' + record + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"bad.json:2: "):
        list(read_documents([path], "bern2", InputBudget()))
    budget = InputBudget(3)
    list(read_documents([path], "bern2", budget))
    assert budget.counts == {reason: 1}


def test_missing_input_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        list(read_documents([tmp_path / "nope.txt"], "text", InputBudget()))
