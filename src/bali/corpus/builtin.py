"""The embedded default corpus: the textual definitions stored in the KG artefact.

For the builtin KG these are the MONDO and HPO definitions, so the demo trains on real biomedical
prose without any download. Each definition is one document whose id is its node's ``source_id``;
the defined node is returned with it so the linker can drop links to it (a definition's own concept
is not a mention of itself: "Asthma: a chronic disease of the airways..." would otherwise teach the
model that every definition mentions its headword).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from bali.corpus.readers import Document
from bali.errors import BadInputError
from bali.kg.graph import KnowledgeGraph


def definition_documents(kg: KnowledgeGraph, skipped: Counter[str]) -> Iterator[tuple[Document, int]]:
    """(document, defined node id) for every non-empty definition; ``line`` is the table row.

    Empty definitions are counted in ``skipped["empty_definitions"]``.
    """
    seen = 0
    for row, (node_id, text) in enumerate(kg.definitions(), start=1):
        if not text or not text.strip():
            skipped["empty_definitions"] += 1
            continue
        seen += 1
        yield Document(kg.source_ids[node_id], text, str(kg.directory / "definitions.parquet"), row), node_id
    if not seen:
        raise BadInputError(
            "the KG has no textual definitions, so there is no embedded corpus; "
            "pass --input FILE... --format ... instead of --builtin",
            kg.directory,
        )
