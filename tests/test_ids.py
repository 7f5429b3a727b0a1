"""One spelling per id: UMLS CUIs are bare (``UMLS:C0012345`` = ``C0012345``) in every lookup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.evaluate.dictionary import load_dictionary_file, load_kg_dictionary
from bali.evaluate.linking import gold_concepts, mention_stats
from bali.evaluate.mentions import read_pubtator
from bali.ids import is_recognised, normalise_id, split_gold_ids
from bali.kg.graph import Relation, write_kg


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("UMLS:C0012345", "C0012345"),
        ("umls:c0012345", "C0012345"),
        ("CUI:C0012345", "C0012345"),
        ("UMLS_CUI:C0012345", "C0012345"),
        ("C0012345", "C0012345"),
        ("c0012345", "C0012345"),
        ("C000123", "MESH:C000123"),  # MeSH supplementary concept, old 6-digit code
        ("C000656484", "MESH:C000656484"),  # MeSH supplementary concept, 9-digit code
        ("MESH:C0012345", "MESH:C0012345"),  # explicitly MeSH stays MeSH
        ("UMLS:C00123", "UMLS:C00123"),  # not a CUI: kept prefixed, visibly wrong
    ],
)
def test_cuis_have_one_spelling_and_mesh_supplementary_codes_stay_mesh(raw: str, expected: str) -> None:
    assert normalise_id(raw) == expected


def test_default_prefix_and_gold_fields() -> None:
    assert normalise_id("C0012345", default_prefix="UMLS") == "C0012345"
    assert normalise_id("C0012345", default_prefix="MSH") == "MESH:C0012345"
    assert split_gold_ids("UMLS:C0000001|C0000002+D000001") == (
        [["C0000001"], ["C0000002", "MESH:D000001"]],
        True,
    )
    assert is_recognised("C0000001") and is_recognised("MESH:D000001")
    assert not is_recognised("C||Diseases") and not is_recognised("12345")


def _umls_like_kg(out: Path) -> Path:
    """A KG as ``kg build --umls`` writes it: bare-CUI source ids, xrefs already normalised."""
    concepts = pa.table(
        {"source_id": ["C0000001", "C0000002"], "preferred_name": ["Heart failure", "Diabetes"]}
    )
    with atomic_output_dir(out, overwrite=True) as tmp:
        counts = write_kg(
            tmp,
            concepts=concepts,
            name_node_ids=np.array([0, 0, 1]),
            names=["Heart failure", "cardiac failure", "Diabetes"],
            edges=(np.array([0]), np.array([1]), np.array([0])),
            relations=[Relation("RO")],
            xrefs=pa.table({"key": ["MESH:D006333"], "node_id": [0], "preferred": [True]}),
            xrefs_normalised=True,
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {}, {}, counts))
    return out


GOLD = """\
1|t|Heart failure and diabetes.
1|a|Cardiac failure.
1\t0\t13\tHeart failure\tDisease\tUMLS:C0000001
1\t18\t26\tdiabetes\tDisease\tC0000002
1\t28\t43\tCardiac failure\tDisease\tumls:C0000001|MESH:D006333
"""


def test_umls_and_bare_cui_gold_match_a_kg_dictionary(tmp_path: Path) -> None:
    dictionary = load_kg_dictionary(_umls_like_kg(tmp_path / "kg"))
    path = tmp_path / "gold.pubtator"
    path.write_text(GOLD, encoding="utf-8")
    mentions, _ = read_pubtator(path)
    assert [gold_concepts(m, dictionary) for m in mentions] == [{0}, {1}, {0}]
    stats = mention_stats(mentions, dictionary)
    assert stats["unmapped_gold_ids"] == 0 and stats["scored"] == 3


def test_cui_ids_of_a_dictionary_file_match_either_spelling(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_text("UMLS:C0000001||Heart failure\nC0000002|D003920||Diabetes\n", encoding="utf-8")
    dictionary = load_dictionary_file(path)
    assert dictionary.unrecognised_ids == []
    assert dictionary.id_index["C0000001"] == [0] and dictionary.id_index["C0000002"] == [1]


def test_eval_linking_cli_scores_umls_gold_against_a_kg(tiny_bert_dir: str, tmp_path: Path) -> None:
    from bali.cli import main

    kg = _umls_like_kg(tmp_path / "kg")
    path = tmp_path / "gold.pubtator"
    path.write_text(GOLD, encoding="utf-8")
    out = tmp_path / "el"
    args = ["eval", "linking", "--model", tiny_bert_dir, "--dictionary", str(kg), "--mentions", str(path)]
    assert main([*args, "--format", "pubtator", "--out", str(out), "--json"]) == 0
    mentions = json.loads((out / "results.json").read_text())["mention_sets"][0]
    assert mentions["scored"] == 3 and mentions["unmapped_gold_ids"] == 0
