"""Target dictionaries for zero-shot linking: concepts, their ids and their names.

Two sources reduce to one :class:`Dictionary`: a KG artefact (every name of every node; a node's ids
are its own source id, its cross-references and ``KG:<node_id>``, so gold ids in MeSH/OMIM/UMLS
spelling and held-out synonyms all match), and ``ID[|altID...]||name|synonym|...`` files (CTD MEDIC,
BioSyn dictionaries), and ``ID<TAB>name`` candidate lists (one name per line, the CODER/SapBERT
layout; lines with the same id are one concept; ids need no prefix). Names are deduplicated once, as strings: identical strings then get identical
vectors and tie exactly, and ties are broken by concept order (see :mod:`bali.evaluate.linking`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pyarrow.parquet as pq

from bali.errors import BadInputError, decode_line
from bali.evaluate.id_lines import read_id_lines
from bali.ids import is_recognised, normalise_id

KG_NODE_PREFIX = "KG"


def kg_node_key(node_id: int) -> str:
    """The id that names exactly one node of a KG artefact (used as held-out-synonym gold)."""
    return f"{KG_NODE_PREFIX}:{node_id}"


@dataclass
class Dictionary:
    """Concepts with normalised ids and the distinct name strings that point to them.

    ``strings[s]`` is a distinct name; ``string_concepts[string_indptr[s]:string_indptr[s + 1]]``
    are the concepts having that name, in ascending concept order (the tie-break order).
    """

    source: str
    concept_ids: list[list[str]]
    strings: list[str]
    string_indptr: np.ndarray
    string_concepts: np.ndarray
    num_names: int
    id_index: dict[str, list[int]] = field(default_factory=dict)
    unrecognised_ids: list[str] = field(default_factory=list)

    @property
    def num_concepts(self) -> int:
        return len(self.concept_ids)

    def concepts_of_string(self, string_index: int) -> np.ndarray:
        return self.string_concepts[self.string_indptr[string_index] : self.string_indptr[string_index + 1]]

    def has_id(self, key: str) -> bool:
        return key in self.id_index

    def stats(self) -> dict[str, object]:
        """Sizes for results.json and the report."""
        return {
            "source": self.source,
            "concepts": self.num_concepts,
            "names": self.num_names,
            "distinct_name_strings": len(self.strings),
            "ids": len(self.id_index),
            "unrecognised_ids": len(self.unrecognised_ids),
            "unrecognised_id_examples": self.unrecognised_ids[:10],
        }


def build_dictionary(
    source: str,
    concept_ids: list[list[str]],
    names: Sequence[str],
    name_concepts: Iterable[int],
    unrecognised_ids: list[str] | None = None,
) -> Dictionary:
    """Group names (case-sensitive exact strings) and index ids; an empty dictionary is bad input."""
    name_concepts = np.asarray(list(name_concepts), dtype=np.int64)
    if len(names) == 0 or len(concept_ids) == 0:
        raise BadInputError("the dictionary is empty: no concept with a name", source)
    string_of: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    for name, concept in zip(names, name_concepts.tolist(), strict=True):
        s = string_of.setdefault(name, len(string_of))
        pairs.append((s, concept))
    pair_array = np.unique(np.asarray(pairs, dtype=np.int64), axis=0)  # sorted by string, then concept
    indptr = np.zeros(len(string_of) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pair_array[:, 0], minlength=len(string_of)), out=indptr[1:])
    id_index: dict[str, list[int]] = {}
    for concept, ids in enumerate(concept_ids):
        for key in ids:
            bucket = id_index.setdefault(key, [])
            if not bucket or bucket[-1] != concept:
                bucket.append(concept)
    return Dictionary(
        source=source,
        concept_ids=concept_ids,
        strings=list(string_of),
        string_indptr=indptr,
        string_concepts=pair_array[:, 1].copy(),
        num_names=int(pair_array.shape[0]),
        id_index=id_index,
        unrecognised_ids=unrecognised_ids or [],
    )


def load_dictionary_file(path: str | Path) -> Dictionary:
    """Read an ``ID[|altID...]||name|synonym|...`` file (MEDIC, BioSyn ``*_dictionary.txt``).

    Ids that :func:`bali.ids.normalise_id` cannot give a prefix (MEDIC's root ``C||Diseases``) are
    kept verbatim and counted, not rejected: they are harmless as dictionary entries, and the count
    shows up in the results.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError("dictionary file not found", path)
    concept_ids: list[list[str]] = []
    names: list[str] = []
    name_concepts: list[int] = []
    unrecognised: list[str] = []
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, line_no)
            if not line.strip():
                continue
            if "||" not in line:
                raise BadInputError(
                    "expected 'ID[|altID]||name|synonym|...' (no '||' separator)", path, line_no
                )
            id_field, name_field = line.split("||", 1)
            ids = []
            for raw_id in id_field.split("|"):
                if not raw_id.strip():
                    continue
                key = normalise_id(raw_id)
                if not is_recognised(key):
                    unrecognised.append(f"{path.name}:{line_no}:{raw_id}")
                ids.append(key)
            line_names = [n.strip() for n in name_field.split("|") if n.strip()]
            if not ids:
                raise BadInputError("a dictionary line without any id", path, line_no)
            if not line_names:
                raise BadInputError("a dictionary line without any name", path, line_no)
            concept = len(concept_ids)
            concept_ids.append(ids)
            names.extend(line_names)
            name_concepts.extend([concept] * len(line_names))
    return build_dictionary(str(path), concept_ids, names, name_concepts, unrecognised)


def load_kg_dictionary(kg_dir: str | Path) -> Dictionary:
    """All names of every KG node; node ids are concept ids, so node i is concept i."""
    from bali.kg.graph import XREFS, KnowledgeGraph

    kg = KnowledgeGraph.load(kg_dir)
    names, node_ids = kg.all_names()
    concept_ids: list[list[str]] = [[kg_node_key(i), normalise_id(s)] for i, s in enumerate(kg.source_ids)]
    xrefs = pq.read_table(Path(kg_dir) / XREFS, columns=["key", "node_id"])
    for key, node in zip(xrefs.column("key").to_pylist(), xrefs.column("node_id").to_pylist(), strict=True):
        norm = normalise_id(key)
        if norm not in concept_ids[node]:
            concept_ids[node].append(norm)
    return build_dictionary(str(kg_dir), concept_ids, names, node_ids.tolist())


def load_dictionary_tsv(path: str | Path) -> Dictionary:
    """Read ``ID<TAB>name`` (or ``ID||name``) lines, CSV quoting allowed; a repeated id adds a name."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("dictionary file not found", path)
    concept_of: dict[str, int] = {}
    concept_ids: list[list[str]] = []
    names: list[str] = []
    name_concepts: list[int] = []
    for _, id_field, name in read_id_lines(path, "name"):
        concept = concept_of.setdefault(id_field, len(concept_of))
        if concept == len(concept_ids):
            concept_ids.append([normalise_id(i) for i in id_field.split("|") if i.strip()])
        names.append(name)
        name_concepts.append(concept)
    return build_dictionary(str(path), concept_ids, names, name_concepts)


DictionaryFormat = Literal["medic", "tsv"]
DICTIONARY_FORMATS: tuple[str, ...] = get_args(DictionaryFormat)
DICTIONARY_FORMAT_HELP = (
    "medic: ID[|altID]||name|synonym|... lines (MEDIC, BioSyn); tsv: ID<TAB>name lines (CSV quoting ok)"
)


def load_dictionary(path: str | Path, dictionary_format: str = "medic") -> Dictionary:
    """A KG artefact directory, or a dictionary file in ``dictionary_format`` (``medic`` or ``tsv``)."""
    path = Path(path)
    if path.is_dir():
        return load_kg_dictionary(path)
    if dictionary_format == "tsv":
        return load_dictionary_tsv(path)
    if dictionary_format != "medic":
        raise BadInputError(
            f"unknown dictionary format '{dictionary_format}' (expected one of {DICTIONARY_FORMATS})"
        )
    return load_dictionary_file(path)
