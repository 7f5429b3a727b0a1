"""The KG artefact: dense node ids, concept table, names, cross-references and a CSR edge list.

Every source (UMLS, OBO, TSV, the embedded default) reduces to the same columnar pieces and calls
:func:`write_kg`; every consumer calls :meth:`KnowledgeGraph.load`. Arrays are ``.npy`` files that
load with ``mmap_mode="r"``, tables are Parquet, so a UMLS-sized graph (millions of nodes, tens of
millions of edges) is never turned into per-row Python objects.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bali.artifacts import read_manifest, write_json_atomic
from bali.errors import BadInputError, decode_line
from bali.ids import normalise_id
from bali.kg.relation_phrases import inverse_of, phrase_for

CONCEPTS = "concepts.parquet"
NAMES = "names.parquet"
NAMES_INDPTR = "names_indptr.npy"
XREFS = "xrefs.parquet"
DEFINITIONS = "definitions.parquet"
GRAPH_INDPTR = "graph_indptr.npy"
GRAPH_INDICES = "graph_indices.npy"
GRAPH_RELATIONS = "graph_relations.npy"
RELATIONS = "relations.json"
HELDOUT = "heldout_synonyms.tsv"
HELDOUT_DEV = "heldout_synonyms.dev.tsv"
# Held-out synonym files by split: test is what results report, dev is all that tuning may read.
HELDOUT_FILES = {"test": HELDOUT, "dev": HELDOUT_DEV}

HELDOUT_HEADER = ["node_id", "source_id", "name"]


def read_heldout_rows(file: Path) -> list[tuple[int, str, str, int]]:
    """``(node id, source id, name, line number)`` of a held-out synonyms file, validated.

    The one parser of the format: the evaluation reads the rows as gold mentions and the corpus
    stage as strings to keep out of the training text.
    """
    rows: list[tuple[int, str, str, int]] = []
    with file.open("rb") as handle:
        lines = (decode_line(raw, file, number) for number, raw in enumerate(handle, start=1))
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            if next(reader, None) != HELDOUT_HEADER:
                raise BadInputError(f"expected the header {'<TAB>'.join(HELDOUT_HEADER)}", file, 1)
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 3 or not row[0].isdecimal() or not row[2].strip():
                    raise BadInputError("expected node_id<TAB>source_id<TAB>name", file, line_no)
                rows.append((int(row[0]), row[1], row[2].strip(), line_no))
        except csv.Error as exc:  # a carriage return inside a line, a field over the csv size limit
            raise BadInputError(f"not a tab-separated line: {exc}", file, reader.line_num) from exc
    return rows


@dataclass
class Relation:
    """One entry of the relation vocabulary; ``phrase`` reads "neighbour PHRASE target"."""

    name: str
    rel: str = ""
    rela: str = ""
    phrase: str = ""

    def as_dict(self, relation_id: int) -> dict[str, Any]:
        return {
            "id": relation_id,
            "name": self.name,
            "rel": self.rel,
            "rela": self.rela,
            "phrase": self.phrase or self.name.replace("_", " "),
        }


def dedupe_names(node_ids: np.ndarray, names: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Group names by node (stable), drop case-insensitive duplicates and empty names.

    The first surface form of each (node, lower-cased name) pair is kept, so a caller that lists the
    preferred name first keeps it first.
    """
    names = pa.array(names, type=pa.string()) if not isinstance(names, pa.Array) else names.cast(pa.string())
    node_ids = np.asarray(node_ids, dtype=np.int64)
    stripped = pc.utf8_trim_whitespace(names)
    keep = pc.greater(pc.utf8_length(stripped), 0).to_numpy(zero_copy_only=False)
    order = np.nonzero(keep)[0]
    # (node, lower-cased name) pairs as integers: dictionary-encode the keys, then a stable sort
    # finds the first position of each pair (faster than a two-key hash group-by at UMLS scale).
    lowered = pc.utf8_lower(stripped if order.size == len(stripped) else stripped.take(pa.array(order)))
    key_ids = pc.dictionary_encode(lowered).indices.to_numpy().astype(np.int64)
    pair = node_ids[order] * (int(key_ids.max(initial=0)) + 1) + key_ids
    by_pair = np.argsort(pair, kind="stable")
    sorted_pair = pair[by_pair]
    first = np.ones(sorted_pair.size, dtype=bool)
    first[1:] = sorted_pair[1:] != sorted_pair[:-1]
    first_pos = np.sort(order[by_pair[first]])
    # Stable group by node, keeping the caller's order within a node.
    kept_nodes = node_ids[first_pos]
    grouped = first_pos[np.argsort(kept_nodes, kind="stable")]
    return node_ids[grouped], stripped.take(pa.array(grouped))


def build_csr(
    num_nodes: int,
    src: np.ndarray,
    dst: np.ndarray,
    rel: np.ndarray,
    keep_self_loops: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicate (src, dst, rel) triples and sort them into CSR arrays, all vectorised."""
    src, dst, rel = np.asarray(src), np.asarray(dst), np.asarray(rel)
    if not keep_self_loops:
        mask = src != dst
        src, dst, rel = src[mask], dst[mask], rel[mask]
    num_rel = int(rel.max()) + 1 if rel.size else 1
    # One int64 key per edge, built in place: at UMLS scale (10^8 edges) every extra int64 copy
    # of the inputs is most of a gigabyte.
    key = src.astype(np.int64)
    key *= num_nodes
    key += dst
    key *= num_rel
    key += rel
    # Sort + run-length dedupe: sorted by src, then dst, then rel (np.unique's hashing is slower).
    key.sort()
    if key.size:
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    rel = (key % num_rel).astype(np.int32)
    pair = key // num_rel
    dst = (pair % num_nodes).astype(np.int32)
    src = pair // num_nodes
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=num_nodes), out=indptr[1:])
    return indptr, dst, rel


def _normalised(keys: pa.Array) -> pa.Array:
    """Keys in :func:`bali.ids.normalise_id` spelling, so lookups of any spelling find them."""
    return pa.array([normalise_id(k) for k in keys.cast(pa.string()).to_pylist()], pa.string())


def write_kg(
    out_dir: str | Path,
    *,
    concepts: pa.Table,
    name_node_ids: np.ndarray,
    names: pa.Array | Sequence[str],
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    relations: Sequence[Relation],
    xrefs: pa.Table | None = None,
    definitions: pa.Table | None = None,
    keep_self_loops: bool = True,
    xrefs_normalised: bool = False,
) -> dict[str, Any]:
    """Write the artefact files into ``out_dir`` (the caller's temporary directory) and return counts.

    ``concepts`` has one row per node in node-id order with columns ``source_id``,
    ``preferred_name`` and optionally ``semantic_types``/``sources`` (list<string>). ``xrefs`` has
    ``key`` (normalised here unless ``xrefs_normalised``: the UMLS reader builds millions of keys
    already normalised, vectorised), ``node_id`` and ``preferred``; each node's own ``source_id`` is
    added, normalised the same way (a UMLS source id is a bare CUI, already canonical). The caller writes the manifest (it knows the inputs and settings).
    """
    out = Path(out_dir)
    num_nodes = concepts.num_rows
    if num_nodes == 0:
        raise BadInputError("the knowledge graph is empty after filtering: no concepts left")
    concepts = with_list_columns(concepts)
    pq.write_table(concepts, out / CONCEPTS)
    names_indptr = _write_names(out, num_nodes, name_node_ids, names)
    own = xref_table(concepts.column("source_id").combine_chunks(), xrefs, xrefs_normalised)
    pq.write_table(own, out / XREFS, use_dictionary=False)
    if definitions is None:
        definitions = pa.table({"node_id": pa.array([], pa.int32()), "text": pa.array([], pa.string())})
    pq.write_table(definitions, out / DEFINITIONS)
    indices, rel_ids = _write_graph(out, num_nodes, edges, relations, keep_self_loops)

    per_relation = (
        np.bincount(rel_ids, minlength=len(relations)) if rel_ids.size else np.zeros(len(relations))
    )
    return {
        "concepts": num_nodes,
        "names": int(names_indptr[-1]),
        "nodes_without_names": int(np.count_nonzero(np.diff(names_indptr) == 0)),
        "edges": int(indices.size),
        "edges_per_relation": {r.name: int(n) for r, n in zip(relations, per_relation, strict=True) if n},
        "xrefs": own.num_rows,
        "definitions": definitions.num_rows,
    }


def with_list_columns(concepts: pa.Table) -> pa.Table:
    """The concept table in contract column order, empty ``semantic_types``/``sources`` lists added."""
    for column in ("semantic_types", "sources"):
        if column not in concepts.column_names:
            concepts = concepts.append_column(
                column, pa.array([[] for _ in range(concepts.num_rows)], pa.list_(pa.string()))
            )
    return concepts.select(["source_id", "preferred_name", "semantic_types", "sources"])


def _write_names(
    out: Path, num_nodes: int, name_node_ids: np.ndarray, names: pa.Array | Sequence[str]
) -> np.ndarray:
    """Write the deduplicated names, grouped by node, and their CSR offsets; returns the offsets."""
    node_of_name, kept_names = dedupe_names(name_node_ids, names)
    # Names and xref keys are nearly unique: dictionary encoding would only cost time.
    pq.write_table(pa.table({"name": kept_names}), out / NAMES, use_dictionary=False)
    names_indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(node_of_name, minlength=num_nodes), out=names_indptr[1:])
    np.save(out / NAMES_INDPTR, names_indptr)
    return names_indptr


def xref_table(own_keys: pa.Array, xrefs: pa.Table | None, xrefs_normalised: bool) -> pa.Table:
    """Each node's own source id (preferred), then the source's xrefs, with keys normalised."""
    num_nodes = len(own_keys)
    own = pa.table(
        {
            "key": own_keys if xrefs_normalised else _normalised(own_keys),
            "node_id": pa.array(np.arange(num_nodes, dtype=np.int32)),
            "preferred": pa.array(np.ones(num_nodes, dtype=bool)),
        }
    )
    if xrefs is None or not xrefs.num_rows:
        return own
    keys = xrefs.column("key").combine_chunks().cast(pa.string())
    if not xrefs_normalised:
        keys = _normalised(keys)
    xrefs = pa.table(
        {
            "key": keys,
            "node_id": xrefs.column("node_id").cast(pa.int32()),
            "preferred": xrefs.column("preferred").cast(pa.bool_()),
        }
    )
    return pa.concat_tables([own, xrefs])


def _write_graph(
    out: Path,
    num_nodes: int,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    relations: Sequence[Relation],
    keep_self_loops: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Write the CSR edge arrays and the relation vocabulary; returns the neighbour and relation ids."""
    src, dst, rel = edges
    indptr, indices, rel_ids = build_csr(num_nodes, src, dst, rel, keep_self_loops)
    np.save(out / GRAPH_INDPTR, indptr)
    np.save(out / GRAPH_INDICES, indices)
    np.save(out / GRAPH_RELATIONS, rel_ids)
    write_json_atomic(out / RELATIONS, [r.as_dict(i) for i, r in enumerate(relations)])
    return indices, rel_ids


@dataclass
class KGPieces:
    """Everything a source reader hands to :func:`write_kg`, plus its own counts for the manifest.

    ``extra_tables`` are source-specific Parquet files written next to the contract files (e.g. the
    OBO synonym scopes); ``counts`` end up in the manifest under ``counts``.
    """

    concepts: pa.Table
    name_node_ids: np.ndarray
    names: pa.Array
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]
    relations: list[Relation]
    xrefs: pa.Table | None = None
    definitions: pa.Table | None = None
    xrefs_normalised: bool = False
    extra_tables: dict[str, pa.Table] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)


class GraphBuilder:
    """Accumulates a graph of up to a few million concepts from per-record sources (OBO, TSV, builtin).

    Concepts are keyed by their source id, so several files naming the same id merge into one node.
    Edges are kept as source-id statements and resolved in :meth:`finish`, because an OBO ``is_a``
    may point to a term defined later in the file (or in another file).
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.source_ids: list[str] = []
        self.preferred: list[str] = []
        self.sources: list[list[str]] = []
        self.semantic_types: list[list[str]] = []
        self.name_nodes: list[int] = []
        self.names: list[str] = []
        self.xref_keys: list[str] = []
        self.xref_nodes: list[int] = []
        self.xref_preferred: list[bool] = []
        self.definitions: dict[int, str] = {}
        self.relations: dict[str, Relation] = {}
        self._statements: list[tuple[str, str, str, str | None, int | None]] = []

    def concept(self, source_id: str, name: str, source: str = "") -> int:
        """Node id of ``source_id``, created on first sight; later names become synonyms."""
        node = self.index.get(source_id)
        if node is None:
            node = len(self.source_ids)
            self.index[source_id] = node
            self.source_ids.append(source_id)
            self.preferred.append(name)
            self.sources.append([source] if source else [])
            self.semantic_types.append([])
        else:
            if not self.preferred[node]:
                self.preferred[node] = name
            if source and source not in self.sources[node]:
                self.sources[node].append(source)
        self.add_name(node, name)
        return node

    def add_name(self, node: int, name: str) -> None:
        if name:
            self.name_nodes.append(node)
            self.names.append(name)

    def add_xref(self, node: int, key: str, preferred: bool = False) -> None:
        self.xref_keys.append(key)
        self.xref_nodes.append(node)
        self.xref_preferred.append(preferred)

    def add_definition(self, node: int, text: str) -> None:
        if text and node not in self.definitions:
            self.definitions[node] = text

    def state(
        self,
        subject: str,
        relation: str,
        obj: str,
        path: str | None = None,
        line: int | None = None,
    ) -> None:
        """Record "subject relation object" (e.g. ``A is_a B``), stored in both directions at finish.

        The object's row lists the subject with ``relation`` ("A is a B" reads neighbour-phrase-
        target) and the subject's row lists the object with the inverse relation.
        """
        self._statements.append((subject, relation, obj, path, line))

    def finish(self, on_unknown: Callable[[str, str, str | None, int | None], None]) -> KGPieces:
        """Resolve statements to node ids and return the columnar pieces.

        ``on_unknown(message, endpoint, path, line)`` is called for a statement naming an id that is
        not a concept; the caller decides whether that is an error (TSV) or a dangling import (OBO).
        """
        edges = self._resolve_statements(on_unknown)
        nodes = sorted(self.definitions)
        return KGPieces(
            concepts=pa.table(
                {
                    "source_id": pa.array(self.source_ids, pa.string()),
                    "preferred_name": pa.array(self.preferred, pa.string()),
                    "semantic_types": pa.array(self.semantic_types, pa.list_(pa.string())),
                    "sources": pa.array(self.sources, pa.list_(pa.string())),
                }
            ),
            name_node_ids=np.asarray(self.name_nodes, dtype=np.int64),
            names=pa.array(self.names, pa.string()),
            edges=edges,
            relations=list(self.relations.values()),
            xrefs=pa.table(
                {
                    "key": pa.array(self.xref_keys, pa.string()),
                    "node_id": pa.array(self.xref_nodes, pa.int32()),
                    "preferred": pa.array(self.xref_preferred, pa.bool_()),
                }
            ),
            definitions=pa.table(
                {
                    "node_id": pa.array(nodes, pa.int32()),
                    "text": pa.array([self.definitions[n] for n in nodes], pa.string()),
                }
            ),
        )

    def _resolve_statements(
        self, on_unknown: Callable[[str, str, str | None, int | None], None]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(src, dst, relation id) of every statement between known concepts, in both directions.

        Relations first met here join the vocabulary; statements naming an unknown id go to
        ``on_unknown``.
        """
        src: list[int] = []
        dst: list[int] = []
        rel: list[int] = []
        rel_ids: dict[str, int] = {}

        def rel_id(name: str) -> int:
            if name not in rel_ids:
                if name not in self.relations:
                    self.relations[name] = Relation(name, phrase=phrase_for(name))
                rel_ids[name] = list(self.relations).index(name)
            return rel_ids[name]

        for subject, relation, obj, path, line in self._statements:
            s_node = self.index.get(subject)
            o_node = self.index.get(obj)
            if s_node is None or o_node is None:
                missing = subject if s_node is None else obj
                on_unknown(
                    f"'{subject} {relation} {obj}' names unknown concept '{missing}'", missing, path, line
                )
                continue
            src += [o_node, s_node]
            dst += [s_node, o_node]
            rel += [rel_id(relation), rel_id(inverse_of(relation))]
        return np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(rel, np.int64)


class KnowledgeGraph:
    """Read-only view of a KG artefact; arrays are memory-mapped."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory, "kg")
        d = self.directory
        self._concepts = pq.read_table(d / CONCEPTS)
        self.source_ids: list[str] = self._concepts.column("source_id").to_pylist()
        self.preferred_names: list[str] = self._concepts.column("preferred_name").to_pylist()
        self._names: pa.Array = pq.read_table(d / NAMES).column("name").combine_chunks()
        self.names_indptr = np.load(d / NAMES_INDPTR, mmap_mode="r")
        self.indptr = np.load(d / GRAPH_INDPTR, mmap_mode="r")
        self.indices = np.load(d / GRAPH_INDICES, mmap_mode="r")
        self.relations = np.load(d / GRAPH_RELATIONS, mmap_mode="r")
        relations = json.loads((d / RELATIONS).read_text(encoding="utf-8"))
        self.relation_names: list[str] = [r["name"] for r in relations]
        self.relation_phrases: list[str] = [r["phrase"] for r in relations]
        self._xref_index: dict[str, list[int]] | None = None
        self._node_index: dict[str, int] | None = None

    @classmethod
    def load(cls, directory: str | Path) -> KnowledgeGraph:
        return cls(directory)

    @property
    def num_nodes(self) -> int:
        return len(self.source_ids)

    @property
    def num_edges(self) -> int:
        return int(self.indices.shape[0])

    @property
    def semantic_types(self) -> list[list[str]]:
        return self._concepts.column("semantic_types").to_pylist()

    def names(self, node_id: int) -> list[str]:
        """All names of a node, preferred first."""
        start, end = int(self.names_indptr[node_id]), int(self.names_indptr[node_id + 1])
        return self._names.slice(start, end - start).to_pylist()

    def all_names(self) -> tuple[list[str], np.ndarray]:
        """Every name with the node it belongs to (names grouped by node, preferred first)."""
        node_ids = np.repeat(np.arange(self.num_nodes, dtype=np.int32), np.diff(self.names_indptr))
        return self._names.to_pylist(), node_ids

    def neighbours(self, node_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour node ids and the relation id of each edge."""
        start, end = int(self.indptr[node_id]), int(self.indptr[node_id + 1])
        return np.asarray(self.indices[start:end]), np.asarray(self.relations[start:end])

    def node_id(self, source_id: str) -> int | None:
        """Node id of a source identifier (CUI, ``HP:0001250``, ...)."""
        if self._node_index is None:
            self._node_index = {s: i for i, s in enumerate(self.source_ids)}
        return self._node_index.get(source_id)

    def lookup_xref(self, key: str) -> list[int]:
        """Nodes carrying a cross-reference (normalised), preferred atoms first."""
        if self._xref_index is None:
            table = pq.read_table(self.directory / XREFS)
            keys = table.column("key").to_pylist()
            nodes = table.column("node_id").to_numpy()
            preferred = table.column("preferred").to_numpy(zero_copy_only=False)
            order = np.argsort(~preferred, kind="stable")
            index: dict[str, list[int]] = {}
            for i in order:
                bucket = index.setdefault(keys[i], [])
                node = int(nodes[i])
                if node not in bucket:
                    bucket.append(node)
            self._xref_index = index
        return list(self._xref_index.get(normalise_id(key), []))

    def definitions(self) -> Iterator[tuple[int, str]]:
        """(node id, definition text) pairs."""
        table = pq.read_table(self.directory / DEFINITIONS)
        yield from zip(table.column("node_id").to_pylist(), table.column("text").to_pylist(), strict=True)

    def heldout_path(self, split: str = "test") -> Path | None:
        """The held-out synonyms file of ``split`` (test or dev), when the KG was built with one."""
        path = self.directory / HELDOUT_FILES[split]
        return path if path.exists() else None

    def heldout_names(self) -> list[str]:
        """Every held-out synonym of every split: strings that must not reach the training text."""
        paths = (self.heldout_path(split) for split in HELDOUT_FILES)
        return [name for path in paths if path is not None for _, _, name, _ in read_heldout_rows(path)]

    def summary(self) -> Mapping[str, Any]:
        """The counts recorded in the manifest."""
        return self.manifest.get("counts", {})
