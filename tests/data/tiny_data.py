"""Tiny KG and linked corpus for the training-data tests (written by the tests, offline).

A module of its own, not conftest.py: ``from conftest import`` would pick whichever conftest.py
pytest imported last (tests/train has one too) when several test folders run together.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.corpus.artifact import CorpusWriter
from bali.kg.graph import Relation
from tiny_kg import write_literal_kg

Sentence = tuple[str, Sequence[tuple[int, int, Sequence[int]]]]

# Nodes: 0 aspirin, 1 headache, 2 fever, 3 paracetamol, 4 pain, 5 nausea (no edges), 6 unused.
NAMES = {
    0: ["Aspirin", "acetylsalicylic acid", "ASA drug"],
    1: ["Headache", "cephalgia"],
    2: ["Fever", "pyrexia"],
    3: ["Paracetamol", "acetaminophen"],
    4: ["Pain"],
    5: ["Nausea"],
    6: ["Unused concept"],
}
# (src, dst, relation): row src lists dst. Aspirin has 5 distinct neighbours incl. itself (a self-loop)
# over 6 edges: it is related to headache twice (may_treat and SY), a multi-relation probe.
EDGES = [
    (0, 1, 0),
    (0, 1, 2),
    (0, 2, 0),
    (0, 3, 2),
    (0, 4, 0),
    (0, 0, 2),
    (1, 0, 1),
    (2, 0, 1),
    (3, 4, 0),
    (4, 3, 1),
]
RELATIONS = [
    Relation("may_treat", phrase="may treat"),
    Relation("may_be_treated_by"),
    Relation("SY", phrase="is a synonym of"),
]


def write_tiny_kg(out: Path) -> Path:
    return write_literal_kg(out, NAMES, EDGES, RELATIONS)


def write_corpus(out: Path, sentences: Sequence[Sentence]) -> Path:
    with atomic_output_dir(out) as tmp:
        with CorpusWriter(tmp, row_group=2) as writer:
            for i, (text, mentions) in enumerate(sentences):
                writer.add(f"d{i // 3}", i % 3, text, [(s, e, list(ids), "gold") for s, e, ids in mentions])
        write_json_atomic(
            tmp / "manifest.json", make_manifest("corpus", {}, {}, {"sentences": len(sentences)})
        )
    return out


SENTENCES: list[Sentence] = [
    ("Aspirin treats headache and fever.", [(0, 7, [0]), (15, 23, [1]), (28, 33, [2])]),
    ("No mention here.", []),
    ("Aspirin or aspirin again with pain.", [(0, 7, [0]), (11, 18, [0]), (30, 34, [4])]),
    ("Paracetamol relieves nausea.", [(0, 11, [3, 0]), (21, 27, [5])]),
    ("Fever and headache.", [(0, 5, [2]), (10, 18, [1])]),
    ("Pain.", [(0, 4, [4])]),
]
