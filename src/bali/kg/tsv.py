"""In-house graphs as two tab-separated files (``--tsv CONCEPTS EDGES``).

CONCEPTS, one concept per line, 2 to 5 columns::

    id <TAB> name [<TAB> synonyms [<TAB> xrefs [<TAB> definition]]]

``synonyms`` and ``xrefs`` are ``|``-joined (either may be empty); xrefs are normalised like every
other id (``MSH:D012345`` -> ``MESH:D012345``). The same id on several lines merges into one node.

EDGES, one statement per line, exactly 3 columns::

    source <TAB> relation <TAB> target

read as "source relation target" (``aspirin may_treat headache``) and stored in both directions,
like OBO statements: target's row lists source with ``relation``, source's row lists target with the
inverse (``inverse_of_may_treat`` unless the relation has a known inverse such as ``is_a`` /
``has_subclass``). Either file may start with a header line whose first field is ``id`` / ``source``.
Lines starting with ``#`` and blank lines are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from bali.errors import BadInputError, ErrorBudget
from bali.kg.graph import GraphBuilder, KGPieces


def _lines(path: Path, budget: ErrorBudget, header_field: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the data lines, with undecodable lines sent to the budget."""
    if not path.is_file():
        raise BadInputError("TSV file not found", path)
    with path.open("rb") as handle:
        for number, raw in enumerate(tqdm(handle, desc=f"TSV {path.name}", unit=" lines", disable=None), 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                budget.record("bad_utf8", f"invalid UTF-8 at byte {exc.start}", path, number)
                continue
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if number == 1 and fields[0].strip().lower() == header_field:
                continue
            yield number, fields


def load_tsv(concepts_path: str | Path, edges_path: str | Path, budget: ErrorBudget) -> KGPieces:
    """Read a concepts file and an edges file into KG pieces."""
    concepts_path, edges_path = Path(concepts_path), Path(edges_path)
    builder = GraphBuilder()
    source = concepts_path.stem
    for number, fields in _lines(concepts_path, budget, "id"):
        if not 2 <= len(fields) <= 5:
            budget.record(
                "wrong_column_count",
                f"expected 2-5 tab-separated columns (id, name, synonyms, xrefs, definition), got {len(fields)}",
                concepts_path,
                number,
            )
            continue
        fields += [""] * (5 - len(fields))
        concept_id, name, synonyms, xrefs, definition = (f.strip() for f in fields)
        if not concept_id:
            budget.record("empty_id", "expected a concept id in column 1", concepts_path, number)
            continue
        if not name:
            budget.record(
                "empty_name", f"expected a name for {concept_id} in column 2", concepts_path, number
            )
            continue
        node = builder.concept(concept_id, name, source)
        for synonym in synonyms.split("|"):
            builder.add_name(node, synonym.strip())
        for key in xrefs.split("|"):
            if key.strip():
                builder.add_xref(node, key.strip())
        builder.add_definition(node, definition)
    if not builder.source_ids:
        raise BadInputError("no concept line: the knowledge graph would be empty", concepts_path)
    for number, fields in _lines(edges_path, budget, "source"):
        if len(fields) != 3 or not all(f.strip() for f in fields):
            budget.record(
                "wrong_column_count",
                f"expected 3 non-empty tab-separated columns (source, relation, target), got {len(fields)}",
                edges_path,
                number,
            )
            continue
        subject, relation, obj = (f.strip() for f in fields)
        builder.state(subject, relation, obj, str(edges_path), number)

    def unknown(message: str, _missing: str, path: str | None, line: int | None) -> None:
        budget.record("unknown_concept", message + " (not in the concepts file)", path, line)

    return builder.finish(unknown)
