"""Write a KG artefact, widened by a linking dictionary's missing concepts, as `--tsv` input files.

The real-text benchmark's KG (DOID + HPO through MeSH cross-references) has a node for only part of
the concepts the evaluation dictionary (MEDIC) lists, so the alignment trains on the mentions of
those concepts only (benchmarks/budget.md, rule 24: adding the missing ones did not help
alignment alone). This script writes the KG as the two files of
`bali kg build --tsv` (bali.kg.tsv) and appends every dictionary concept that no node carries as a
cross-reference: one isolated node with the dictionary's names, its id and alternative ids as
cross-references. Existing nodes, names, cross-references, definitions and edges are copied unchanged; edges are
written once per statement (the reader stores both directions).

    .venv/bin/python benchmarks/kg_with_dictionary.py --kg runs/bc5cdr-disease/kg \\
        --dictionary ../shared/data/medic/medic_06Jul2012.txt --out /tmp/kg-medic
    bali kg build --tsv /tmp/kg-medic/concepts.tsv /tmp/kg-medic/edges.tsv --out KG

Without ``--dictionary`` it writes the KG alone (the control: the same graph through the TSV reader).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from bali.evaluate.dictionary import load_dictionary
from bali.evaluate.seen import kg_covers
from bali.kg.graph import XREFS, KnowledgeGraph

# Relations the TSV reader derives from their inverse: writing them too would double each edge.
DERIVED = {"has_subclass"}


def _clean(text: str) -> str:
    """A field for the TSV files: no tabs, newlines or the list separator inside it."""
    return " ".join(text.replace("|", " ").split())


def kg_rows(kg: KnowledgeGraph) -> tuple[list[str], list[str]]:
    """Concept lines and edge lines."""
    xrefs = pq.read_table(kg.directory / XREFS)
    keys_of: dict[int, list[str]] = defaultdict(list)
    for key, node in zip(xrefs.column("key").to_pylist(), xrefs.column("node_id").to_pylist(), strict=True):
        keys_of[node].append(key)
    definition = dict(kg.definitions())
    concepts, edges = [], []
    for node, source_id in enumerate(kg.source_ids):
        names = [_clean(n) for n in kg.names(node)]
        refs = [k for k in keys_of[node] if k != source_id]
        row = [source_id, names[0], "|".join(names[1:]), "|".join(refs), _clean(definition.get(node, ""))]
        concepts.append("\t".join(row))
        neighbours, relations = kg.neighbours(node)
        for other, relation in zip(neighbours.tolist(), relations.tolist(), strict=True):
            name = kg.relation_names[relation]
            if name not in DERIVED and other != node:
                edges.append("\t".join([source_id, name, kg.source_ids[other]]))
    return concepts, edges


def dictionary_rows(path: Path, kg_dir: Path) -> list[str]:
    """One concept line per dictionary concept none of whose ids a KG node carries."""
    dictionary = load_dictionary(path)
    # Each of a concept's ids is an alternative: one carried by a node covers the concept.
    covers = kg_covers(kg_dir, {i for ids in dictionary.concept_ids for i in ids})
    names_of: dict[int, list[str]] = defaultdict(list)
    for s, string in enumerate(dictionary.strings):
        for concept in dictionary.concepts_of_string(s).tolist():
            names_of[concept].append(_clean(string))
    rows = []
    for concept, ids in enumerate(dictionary.concept_ids):
        if covers([i] for i in ids) or not names_of[concept]:
            continue
        names = list(dict.fromkeys(names_of[concept]))
        rows.append("\t".join([ids[0], names[0], "|".join(names[1:]), "|".join(ids[1:]), ""]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kg", type=Path, required=True, help="a KG artefact directory (bali kg build)")
    parser.add_argument(
        "--dictionary", type=Path, help="a MEDIC-format dictionary whose missing concepts to add"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for concepts.tsv and edges.tsv")
    args = parser.parse_args()
    concepts, edges = kg_rows(KnowledgeGraph.load(args.kg))
    added = dictionary_rows(args.dictionary, args.kg) if args.dictionary else []
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concepts.tsv").write_text("\n".join(concepts + added) + "\n", encoding="utf-8")
    (args.out / "edges.tsv").write_text("\n".join(edges) + "\n", encoding="utf-8")
    print(
        f"{len(concepts)} KG concepts, {len(edges)} edges, {len(added)} dictionary concepts added -> {args.out}"
    )


if __name__ == "__main__":
    main()
