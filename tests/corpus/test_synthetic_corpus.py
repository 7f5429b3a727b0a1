"""Synthetic BERN2 shards and MedMentions gold over a synthetic UMLS release, through the real stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bali.cli import main
from bali.corpus.readers import InputBudget, read_documents
from bali.corpus.synthetic import write_medmentions_pubtator, write_synthetic_bern2
from bali.evaluate.dictionary import load_kg_dictionary
from bali.evaluate.linking import gold_concepts, mention_stats
from bali.evaluate.mentions import read_pubtator
from bali.kg.build import build_kg
from bali.kg.config import KGConfig
from bali.kg.graph import KnowledgeGraph
from bali.kg.synthetic_umls import write_synthetic_umls

KG_PREFIXES = ("mesh:", "MESH:", "OMIM:", "NCBITaxon:")  # the BERN2 ids a UMLS KG has as xrefs


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 300-concept release (the rehearsal's size) and the KG built from it."""
    root = tmp_path_factory.mktemp("release")
    write_synthetic_umls(root / "umls", 300, seed=11)
    build_kg(KGConfig(source="umls", umls_dir=str(root / "umls")), root / "kg")
    return root / "umls", root / "kg"


def _annotations(shards: list[Path]) -> list[dict]:
    return [
        a
        for shard in shards
        for line in shard.read_text().splitlines()
        for a in json.loads(line)["annotations"]
    ]


def test_bern2_shards_map_through_cross_references(release: tuple[Path, Path], tmp_path: Path) -> None:
    umls, kg = release
    shards = write_synthetic_bern2(umls, tmp_path / "bern2", documents=200, seed=5)
    assert [p.name for p in shards] == ["pubmed22n0001.json", "pubmed22n0002.json"]
    out = tmp_path / "corpus"
    args = ["corpus", "link", "--kg", str(kg), "--input", *map(str, shards), "--format", "bern2"]
    assert main([*args, "--out", str(out)]) == 0
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    gold = counts["gold"]

    annotations = _annotations(shards)
    joined = ["|".join(a["id"]) for a in annotations]
    assert counts["documents"] == 200 and counts["errors"]["total"] == 0 and gold["total"] == len(annotations)
    # Every annotation carrying a MeSH, OMIM or NCBI Taxonomy id of the release maps, nothing else does.
    assert (
        gold["mapped"] == sum(any(p in ids for p in KG_PREFIXES) for ids in joined) > 0.5 * len(annotations)
    )
    assert gold["unmapped"]["no_id"] == joined.count("CUI-less") > 0
    assert {"NCBIGENE", "CVCL", "TMVAR"} <= set(gold["unknown_id_prefixes"])
    assert (
        gold["duplicate_spans_merged"] > 0 and counts["mentions_dropped"]["crossing_sentence_boundary"] == 0
    )
    assert counts["distinct_concepts"] >= 80
    # Multi-id annotations in both of BERN2's spellings, and gene spans nested in concept names.
    assert any(len(a["id"]) == 2 for a in annotations)
    assert any(
        len(a["id"]) == 1 and "mesh:" in a["id"][0].lower() and "|OMIM:" in a["id"][0] for a in annotations
    )
    spans = [(a["span"]["begin"], a["span"]["end"], a["obj"]) for a in annotations]
    assert any(o == "gene" and b == b2 and e < e2 for b, e, o in spans for b2, e2, _ in spans[:50])


def test_generators_are_deterministic(release: tuple[Path, Path], tmp_path: Path) -> None:
    umls, _ = release

    def texts(seed: int, name: str) -> list[str]:
        shards = write_synthetic_bern2(umls, tmp_path / name, documents=30, seed=seed, documents_per_shard=20)
        pubtator = write_medmentions_pubtator(umls, tmp_path / f"{name}.txt", documents=10, seed=seed)
        return [p.read_text() for p in [*shards, pubtator]]

    assert texts(1, "a") == texts(1, "b") != texts(2, "c")


def test_medmentions_gold_resolves_against_the_kg(release: tuple[Path, Path], tmp_path: Path) -> None:
    umls, kg_dir = release
    path = write_medmentions_pubtator(umls, tmp_path / "mm.pubtator", documents=40, seed=5)
    mentions, texts = read_pubtator(path)
    dictionary = load_kg_dictionary(kg_dir)
    stats = mention_stats(mentions, dictionary)
    assert len(texts) == 40 and stats["scored"] == len(mentions) >= 120 and stats["unmapped_gold_ids"] == 0
    assert all(m.gold_ids == {m.gold[0][0]} and m.gold[0][0].startswith("C") for m in mentions)
    kg = KnowledgeGraph.load(kg_dir)
    exact = case_variants = 0
    for mention in mentions:
        (node,) = gold_concepts(mention, dictionary)
        assert texts[mention.doc_id][mention.start : mention.end] == mention.text
        names = kg.names(node)
        # A name of its concept, or that name with two words swapped or one dropped.
        words = mention.text.lower().split()
        assert any(set(words) <= set(n.lower().split()) and len(words) >= len(n.split()) - 1 for n in names)
        exact += mention.text in names
        case_variants += mention.text not in names and mention.text.lower() in {n.lower() for n in names}
    word_variants = len(mentions) - exact - case_variants
    assert exact > len(mentions) / 2 and case_variants > 20 and word_variants > len(mentions) / 20
    budget = InputBudget()
    assert sum(len(d.annotations) for d in read_documents([path], "pubtator", budget)) == len(mentions)
    assert budget.as_dict()["total"] == 0
