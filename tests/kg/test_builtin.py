"""The embedded default KG builds offline from the pinned packages, and `bali kg info` reads it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bali.cli import main
from bali.kg.build import build_kg
from bali.kg.config import KGConfig
from bali.kg.graph import KnowledgeGraph


@pytest.mark.slow
def test_builtin_kg_builds_offline(
    tmp_path: Path, no_network: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kg"
    manifest = build_kg(
        KGConfig(source="builtin"), out, holdout_synonyms=50, holdout_seed=3, holdout_dev_synonyms=20
    )
    counts = manifest["counts"]
    assert counts["concepts"] > 40_000 and counts["names"] > 100_000
    assert counts["sources"]["HP"] > 15_000 and counts["sources"]["MONDO"] > 20_000
    assert (
        counts["edges_per_relation"]["has_phenotype"]
        == counts["edges_per_relation"]["phenotype_of"]
        > 100_000
    )
    assert counts["edges_per_relation"]["is_a"] == counts["edges_per_relation"]["has_subclass"]
    details = counts["source_details"]
    assert details["annotated_diseases_matched"] > 5_000 and "annotated_diseases_unmatched" in details

    kg = KnowledgeGraph.load(out)
    seizure = kg.node_id("HP:0001250")
    assert seizure is not None and kg.preferred_names[seizure] == "Seizure"
    parents = {
        kg.source_ids[n]
        for n, r in zip(*kg.neighbours(seizure), strict=True)
        if kg.relation_names[r] == "has_subclass"
    }
    assert "HP:0012638" in parents  # Abnormal nervous system physiology
    # OMIM ids of annotated diseases resolve to MONDO nodes that carry the phenotype edges.
    omim = kg.lookup_xref("OMIM:619340")
    assert omim and kg.source_ids[omim[0]].startswith("MONDO:")
    assert any(kg.relation_names[r] == "phenotype_of" for r in kg.neighbours(omim[0])[1])
    assert sum(1 for _ in kg.definitions()) > 20_000

    held = (out / "heldout_synonyms.tsv").read_text(encoding="utf-8").splitlines()
    dev = (out / "heldout_synonyms.dev.tsv").read_text(encoding="utf-8").splitlines()
    assert held[0] == dev[0] == "node_id\tsource_id\tname" and len(held) == 51 and len(dev) == 21
    held += dev[1:]
    all_names = {n.lower() for n in kg.all_names()[0]}
    for line in held[1:]:
        node, source_id, name = line.split("\t")
        assert kg.source_ids[int(node)] == source_id and name.lower() not in all_names

    assert main(["kg", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"]["concepts"] == kg.num_nodes
    assert np.all(np.diff(kg.indptr) >= 0)
