"""`bali kg build`: read one source, optionally hold out synonyms, write the KG artefact atomically.

This is the function the pipeline calls (:func:`build_kg`); the command-line handler only turns
arguments into a :class:`KGConfig`.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.errors import BadInputError, ErrorBudget
from bali.kg.builtin import load_builtin
from bali.kg.config import KGConfig
from bali.kg.dictionary_concepts import add_dictionary_concepts
from bali.kg.graph import HELDOUT_FILES, HELDOUT_HEADER, KGPieces, dedupe_names, write_kg
from bali.kg.obo import load_obo
from bali.kg.tsv import load_tsv
from bali.kg.umls import load_umls


def normalised_keys(names: pa.Array) -> pa.Array:
    """Lower-cased name without anything but ASCII letters and digits (vectorised).

    Two names with the same key are "the same name" for leakage purposes: holding out
    ``Parkinson's disease`` while ``parkinsons disease`` (or ``head-ache`` while ``headache``)
    stays would leak the answer.
    """
    return pc.replace_substring_regex(pc.utf8_lower(names), pattern=r"[^0-9a-z]+", replacement="")


def hold_out_synonyms(
    pieces: KGPieces, sizes: dict[str, int], seed: int
) -> tuple[np.ndarray, pa.Array, pa.Table, dict[str, Any]]:
    """Withhold one non-preferred synonym of ``sizes[split]`` concepts per split, chosen by ``seed``.

    A synonym qualifies when its normalised key occurs nowhere else in the graph (not as another
    name of the same concept, not as a name of any other concept), so the withheld string cannot be
    found in the artefact's names in any spelling variant. One seeded draw of concepts is cut into
    the splits in the order of ``sizes`` (test first), so the splits are disjoint and the test set
    does not change when a dev set is added. Returns the remaining (node ids, names), the held-out
    table (with a ``split`` column) and counts.
    """
    nodes, names = dedupe_names(pieces.name_node_ids, pieces.names)
    num_nodes = pieces.concepts.num_rows
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(nodes, minlength=num_nodes), out=indptr[1:])
    keys = normalised_keys(names).dictionary_encode()
    key_ids = keys.indices.to_numpy()
    key_counts = np.bincount(key_ids, minlength=len(keys.dictionary))
    position = np.arange(len(nodes)) - indptr[nodes]
    candidate = (position > 0) & (key_counts[key_ids] == 1)
    candidate_rows = np.nonzero(candidate)[0]
    eligible = np.unique(nodes[candidate_rows])
    rng = np.random.default_rng(seed)
    drawn = rng.choice(eligible, size=min(sum(sizes.values()), eligible.size), replace=False)
    split_of = np.full(num_nodes, -1, dtype=np.int8)
    bounds = np.cumsum([0, *sizes.values()])
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        split_of[drawn[start:end]] = index
    chosen = np.sort(drawn)
    # One candidate per chosen node: a random priority per candidate row, the highest wins.
    rows_of_chosen = candidate_rows[np.isin(nodes[candidate_rows], chosen)]
    priority = rng.random(rows_of_chosen.size)
    order = np.lexsort((-priority, nodes[rows_of_chosen]))
    ordered = rows_of_chosen[order]
    first = np.ones(ordered.size, dtype=bool)
    first[1:] = nodes[ordered][1:] != nodes[ordered][:-1]
    held = ordered[first]
    keep = np.ones(len(nodes), dtype=bool)
    keep[held] = False
    split_names = np.array(list(sizes))
    heldout = pa.table(
        {
            "node_id": pa.array(nodes[held].astype(np.int32)),
            "source_id": pieces.concepts.column("source_id").take(pa.array(nodes[held])),
            "name": names.take(pa.array(held)),
            "split": pa.array(split_names[split_of[nodes[held]]]),
        }
    )
    per_split = {name: int((split_of[nodes[held]] == i).sum()) for i, name in enumerate(sizes)}
    counts = {"requested": dict(sizes), "eligible_concepts": int(eligible.size), "held_out": per_split}
    return nodes[keep], names.filter(pa.array(keep)), heldout, counts


def _write_heldout(directory: Path, heldout: pa.Table) -> dict[str, str]:
    """One TSV per split (``node_id<TAB>source_id<TAB>name``); returns split -> file name."""
    files: dict[str, str] = {}
    for split, filename in HELDOUT_FILES.items():
        rows = heldout.filter(pc.equal(heldout.column("split"), split))
        if not rows.num_rows:
            continue
        with (directory / filename).open("w", encoding="utf-8") as handle:
            handle.write("\t".join(HELDOUT_HEADER) + "\n")
            for row in rows.to_pylist():
                handle.write(f"{row['node_id']}\t{row['source_id']}\t{row['name']}\n")
        files[split] = filename
    return files


def _drop_heldout(table: pa.Table, heldout: pa.Table) -> pa.Table:
    """Remove held-out names from a side table that lists names (e.g. OBO synonym scopes)."""
    if "name" not in table.column_names or heldout.num_rows == 0:
        return table
    banned = normalised_keys(heldout.column("name").combine_chunks())
    keys = normalised_keys(table.column("name").combine_chunks())
    return table.filter(pc.invert(pc.is_in(keys, value_set=banned)))


def _load(config: KGConfig, budget: ErrorBudget) -> tuple[KGPieces, dict[str, Any]]:
    """Dispatch to the configured source; returns the pieces and the input paths for the manifest."""
    if config.source == "builtin":
        pieces, paths = load_builtin(budget, config.obo_name_scopes)
        return pieces, {role: str(p) for role, p in paths.items()}
    if config.source == "umls":
        return load_umls(config, budget), {"umls": config.umls_dir, "restrict_to": config.restrict_to}
    if config.source == "obo":
        return load_obo(config.obo_files, budget, config.obo_name_scopes), {"obo": list(config.obo_files)}
    if config.source == "tsv":
        if not config.tsv_concepts or not config.tsv_edges:
            raise BadInputError("the TSV source needs a concepts file and an edges file")
        pieces = load_tsv(config.tsv_concepts, config.tsv_edges, budget)
        return pieces, {"tsv_concepts": config.tsv_concepts, "tsv_edges": config.tsv_edges}
    raise BadInputError(f"unknown KG source '{config.source}'")


def _source_counts(concepts: pa.Table) -> dict[str, int]:
    """Concepts per source vocabulary / ontology prefix."""
    flat = pc.list_flatten(concepts.column("sources").combine_chunks())
    if len(flat) == 0:
        return {}
    counts = pc.value_counts(flat)
    return {v["values"]: v["counts"] for v in counts.to_pylist()}


def build_kg(
    config: KGConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    holdout_synonyms: int | None = None,
    holdout_seed: int | None = None,
    holdout_dev_synonyms: int | None = None,
) -> dict[str, Any]:
    """Build the KG artefact in ``out_dir`` and return its manifest.

    ``holdout_synonyms`` (test), ``holdout_dev_synonyms`` (dev) and ``holdout_seed`` override the
    config's values when given. The output directory is written under a temporary name and renamed
    at the end, so a failure (bad input included) never leaves a half-written artefact; an existing
    ``out_dir`` needs ``overwrite``.
    """
    sizes = _holdout_sizes(config, holdout_synonyms, holdout_dev_synonyms)
    seed = config.holdout_seed if holdout_seed is None else holdout_seed
    started = time.perf_counter()
    budget = ErrorBudget(config.max_errors)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        pieces, inputs = _load(config, budget)
        if config.dictionary_concepts:
            pieces = add_dictionary_concepts(
                pieces, config.dictionary_concepts, config.dictionary_concepts_format
            )
            inputs["dictionary_concepts"] = config.dictionary_concepts
        counts, heldout_counts = _write_pieces(tmp, pieces, sizes, seed, config.keep_self_loops)
        counts["sources"] = _source_counts(pieces.concepts)
        counts["skipped_lines"] = dict(budget.counts)
        counts["source_details"] = dict(pieces.counts)
        if heldout_counts:
            counts["heldout_synonyms"] = heldout_counts
        settings = config.model_dump(mode="json")
        settings.update(holdout_synonyms=sizes["test"], holdout_dev_synonyms=sizes["dev"], holdout_seed=seed)
        manifest = make_manifest(
            "kg",
            inputs,
            settings,
            counts,
            errors=budget.as_dict(),
            build_seconds=round(time.perf_counter() - started, 2),
        )
        write_json_atomic(tmp / "manifest.json", manifest)
    return manifest


def _holdout_sizes(config: KGConfig, test: int | None, dev: int | None) -> dict[str, int]:
    """Held-out synonyms per split (test first): the arguments when given, else the config's."""
    sizes = {
        "test": config.holdout_synonyms if test is None else test,
        "dev": config.holdout_dev_synonyms if dev is None else dev,
    }
    for split, size in sizes.items():
        if size < 0:
            raise BadInputError(f"the {split} held-out size must be >= 0, got {size}")
    return sizes


def _write_pieces(
    tmp: Path, pieces: KGPieces, sizes: dict[str, int], seed: int, keep_self_loops: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Hold out synonyms (when any are asked for), then write the artefact files and the source's
    extra tables, less the held-out names; returns :func:`write_kg`'s counts and the held-out counts."""
    names_nodes, names = pieces.name_node_ids, pieces.names
    heldout_counts: dict[str, Any] = {}
    heldout: pa.Table | None = None
    if any(sizes.values()):
        names_nodes, names, heldout, heldout_counts = hold_out_synonyms(pieces, sizes, seed)
        heldout_counts["files"] = _write_heldout(tmp, heldout)
    counts = write_kg(
        tmp,
        concepts=pieces.concepts,
        name_node_ids=names_nodes,
        names=names,
        edges=pieces.edges,
        relations=pieces.relations,
        xrefs=pieces.xrefs,
        definitions=pieces.definitions,
        keep_self_loops=keep_self_loops,
        xrefs_normalised=pieces.xrefs_normalised,
    )
    for filename, table in pieces.extra_tables.items():
        pq.write_table(table if heldout is None else _drop_heldout(table, heldout), tmp / filename)
    return counts, heldout_counts
