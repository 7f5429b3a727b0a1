"""Widen a KG with the concepts of a linking dictionary that no node carries.

An ontology joined to a corpus through cross-references (DOID + HPO through MeSH ids) has a node for
only part of the concepts the corpus annotates and the evaluation dictionary lists: on BC5CDR a
quarter of the gold Disease mentions had none, so the alignment never trained on them
(benchmarks/budget.md, rules 24 and 25). ``kg.dictionary_concepts`` appends every dictionary concept
none of whose ids a node carries (as its source id or a cross-reference) as an **isolated** node:
its first id is the source id, the others cross-references, and its names are the dictionary's.
Existing nodes, names and edges are unchanged, and an added node has no neighbours, so its subgraph
is itself. The lookup is one columnar ``is_in`` pass over the KG's ids, so a UMLS-size KG builds no
Python set of tens of millions of keys.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bali.evaluate.dictionary import Dictionary, load_dictionary
from bali.kg.graph import KGPieces, with_list_columns, xref_table


def uncovered_concepts(pieces: KGPieces, dictionary: Dictionary) -> list[int]:
    """Dictionary concepts with a name and none of whose ids (alternatives) a node carries."""
    flat = [key for ids in dictionary.concept_ids for key in ids]
    owner = np.repeat(np.arange(dictionary.num_concepts), [len(ids) for ids in dictionary.concept_ids])
    # The keys the artefact will store (bali.kg.graph.write_kg), normalised as the dictionary's ids are.
    known = xref_table(
        pieces.concepts.column("source_id").combine_chunks(), pieces.xrefs, pieces.xrefs_normalised
    ).column("key")
    present = pc.is_in(pa.array(flat, pa.string()), value_set=known).to_numpy(zero_copy_only=False)
    covered = np.zeros(dictionary.num_concepts, dtype=bool)
    covered[owner[present]] = True
    named = np.zeros(dictionary.num_concepts, dtype=bool)
    named[dictionary.string_concepts] = True
    return np.nonzero(~covered & named)[0].tolist()


def add_dictionary_concepts(pieces: KGPieces, path: str | Path, dictionary_format: str = "medic") -> KGPieces:
    """``pieces`` with one isolated node per uncovered concept of the dictionary at ``path``."""
    dictionary = load_dictionary(path, dictionary_format)
    added = uncovered_concepts(pieces, dictionary)
    # Only the added concepts' (string, concept) pairs, in the dictionary's string order.
    pair_string = np.repeat(np.arange(len(dictionary.strings)), np.diff(dictionary.string_indptr))
    keep = np.isin(dictionary.string_concepts, added)
    names_of: dict[int, list[str]] = defaultdict(list)
    for s, concept in zip(pair_string[keep].tolist(), dictionary.string_concepts[keep].tolist(), strict=True):
        names_of[concept].append(dictionary.strings[s])
    first = pieces.concepts.num_rows
    source = Path(path).stem
    new_concepts = pa.table(
        {
            "source_id": pa.array([dictionary.concept_ids[c][0] for c in added], pa.string()),
            "preferred_name": pa.array([names_of[c][0] for c in added], pa.string()),
            "semantic_types": pa.array([[] for _ in added], pa.list_(pa.string())),
            "sources": pa.array([[source] for _ in added], pa.list_(pa.string())),
        }
    )
    name_nodes = [first + i for i, c in enumerate(added) for _ in names_of[c]]
    names = [name for c in added for name in names_of[c]]
    xref_nodes = [first + i for i, c in enumerate(added) for _ in dictionary.concept_ids[c][1:]]
    xref_keys = [key for c in added for key in dictionary.concept_ids[c][1:]]
    concepts = pa.concat_tables([with_list_columns(pieces.concepts), new_concepts])
    xrefs = pieces.xrefs
    if xref_keys:
        new_xrefs = pa.table(
            {
                "key": pa.array(xref_keys, pa.string()),
                "node_id": pa.array(xref_nodes, pa.int32()),
                "preferred": pa.array([False] * len(xref_keys), pa.bool_()),
            }
        )
        xrefs = new_xrefs if xrefs is None else pa.concat_tables([xrefs, new_xrefs.cast(xrefs.schema)])
    return dataclasses.replace(
        pieces,
        concepts=concepts,
        name_node_ids=np.concatenate([pieces.name_node_ids, np.asarray(name_nodes, dtype=np.int64)]),
        names=pa.concat_arrays([pieces.names.cast(pa.string()), pa.array(names, pa.string())]),
        xrefs=xrefs,
        counts={**pieces.counts, "dictionary_concepts_added": len(added)},
    )
