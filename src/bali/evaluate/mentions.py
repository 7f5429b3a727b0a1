"""Gold mentions for linking: PubTator, BioSyn ``.concept`` and a KG's held-out synonyms.

Every reader returns :class:`Mention` objects whose gold field is already parsed into alternatives of
composite parts with normalised ids, so the scorer never sees source-specific spellings:

- PubTator (BC5CDR): a 6-column line's ``|`` joins *alternative* ids (``HITT`` -> two concepts);
  a 7-column line is a *composite* mention (the 7th column lists the parts), so its ``|`` joins parts.
  ``+`` always joins parts.
- BioSyn ``.concept``: ``PMID||start|end||type||mention||ID``; ``|`` and ``,`` are alternatives and
  ``+`` parts (BioSyn's own scorer treats ``|`` as any-of; the format cannot mark composites).
- Held-out synonyms (``heldout_synonyms.tsv`` of a KG artefact): gold is that node (``KG:<id>``).
- TSV (the CODER/SapBERT layouts of CADEC, PsyTAR, AskAPatient, COMETA): ``ID<TAB>mention`` or
  ``ID||mention`` per line, fields optionally CSV-quoted (a quoted field, a doubled quote inside it standing for one); ids are normalised
  but need no prefix (a CUI or SNOMED code is kept as it is), ``|`` joins alternatives, ``+`` parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bali.corpus.abbreviations import find_abbreviations
from bali.errors import BadInputError, decode_line
from bali.evaluate.dictionary import Dictionary, kg_node_key
from bali.evaluate.id_lines import read_id_lines
from bali.ids import is_recognised, split_gold_ids
from bali.kg.graph import HELDOUT_FILES, read_heldout_rows


@dataclass(frozen=True)
class Mention:
    """One gold mention: its surface text and gold alternatives (each a list of composite parts)."""

    doc_id: str
    start: int
    end: int
    text: str
    entity_type: str
    gold: tuple[tuple[str, ...], ...]
    composite: bool
    source: str
    line: int

    @property
    def gold_ids(self) -> set[str]:
        return {part for alternative in self.gold for part in alternative}


def _parse_gold(
    field: str, path: Path, line: int, composite_separator: str | None = None, need_prefix: bool = True
) -> tuple:
    """Parse an id field; without ``need_prefix`` ids are taken as they are, else a bare code is bad input."""
    if composite_separator is not None:
        field = field.replace(composite_separator, "+")
    alternatives, composite = split_gold_ids(field)
    for alternative in alternatives if need_prefix else ():
        for part in alternative:
            if not is_recognised(part):
                raise BadInputError(
                    f"unrecognised gold id '{part}' (expected MeSH D/C numbers, OMIM numbers, UMLS CUIs "
                    "or PREFIX:CODE)",
                    path,
                    line,
                )
    return tuple(tuple(a) for a in alternatives), composite


def _type_ok(entity_type: str, wanted: Sequence[str] | None) -> bool:
    return not wanted or entity_type.lower() in {w.lower() for w in wanted}


def read_pubtator(
    path: str | Path, entity_types: Sequence[str] | None = None
) -> tuple[list[Mention], dict[str, str]]:
    """Mentions of the wanted types, and each document's ``title + " " + abstract`` text."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("mention file not found", path)
    mentions: list[Mention] = []
    texts: dict[str, list[str]] = {}
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, line_no)
            if not line.strip():
                continue
            head = line.split("|", 2)
            if len(head) == 3 and head[1] in ("t", "a") and "\t" not in head[0]:
                texts.setdefault(head[0], []).append(head[2])
                continue
            cols = line.split("\t")
            if len(cols) >= 4 and cols[1] == "CID":
                continue  # a relation line
            if len(cols) not in (6, 7) or not cols[1].isdecimal() or not cols[2].isdecimal():
                raise BadInputError(
                    "not PubTator: expected 'PMID|t|title', 'PMID|a|abstract' or "
                    "'PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids[<TAB>parts]'",
                    path,
                    line_no,
                )
            if not _type_ok(cols[4], entity_types):
                continue
            gold, composite = _parse_gold(cols[5], path, line_no, "|" if len(cols) == 7 else None)
            mentions.append(
                Mention(
                    cols[0], int(cols[1]), int(cols[2]), cols[3], cols[4], gold, composite, "gold", line_no
                )
            )
    if not texts and not mentions:
        raise BadInputError("no PubTator documents found", path)
    return mentions, {doc: " ".join(parts) for doc, parts in texts.items()}


def read_biosyn(path: str | Path, entity_types: Sequence[str] | None = None) -> list[Mention]:
    """A ``.concept`` file, or a directory of them (BioSyn keeps one file per document)."""
    path = Path(path)
    files = sorted(path.glob("*.concept")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise BadInputError("no .concept mention file found", path)
    mentions: list[Mention] = []
    for file in files:
        with file.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                line = decode_line(raw, file, line_no)
                if not line.strip():
                    continue
                cols = line.split("||")
                offsets = cols[1].split("|") if len(cols) == 5 else []
                if len(cols) != 5 or len(offsets) != 2 or not all(o.strip().isdecimal() for o in offsets):
                    raise BadInputError(
                        "not a BioSyn .concept line: expected 'PMID||start|end||type||mention||ID'",
                        file,
                        line_no,
                    )
                if not _type_ok(cols[2], entity_types):
                    continue
                gold, composite = _parse_gold(cols[4], file, line_no)
                mentions.append(
                    Mention(
                        cols[0],
                        int(offsets[0]),
                        int(offsets[1]),
                        cols[3],
                        cols[2],
                        gold,
                        composite,
                        "gold",
                        line_no,
                    )
                )
    return mentions


def read_tsv_mentions(path: str | Path) -> list[Mention]:
    """``ID<TAB>mention`` / ``ID||mention`` lines; the line number stands in for a document offset."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("mention file not found", path)
    mentions: list[Mention] = []
    for line_no, id_field, text in read_id_lines(path, "mention"):
        gold, composite = _parse_gold(id_field, path, line_no, need_prefix=False)
        mentions.append(Mention(path.name, line_no, line_no, text, "", gold, composite, "gold", line_no))
    if not mentions:
        raise BadInputError("no mention lines found", path)
    return mentions


def heldout_file(path: str | Path, split: str = "test") -> Path:
    """The held-out synonyms file of ``split`` in a KG directory, or ``path`` itself when it is a file."""
    path = Path(path)
    if not path.is_dir():
        return path
    if split not in HELDOUT_FILES:
        raise BadInputError(f"unknown held-out split '{split}' (expected one of {sorted(HELDOUT_FILES)})")
    return path / HELDOUT_FILES[split]


def read_heldout(path: str | Path, split: str = "test") -> list[Mention]:
    """Held-out synonyms (``node_id<TAB>source_id<TAB>name``) of ``split``: each name's gold is its node.

    Tuning reads ``split="dev"`` only; ``test`` (the default) is what reported results score.
    """
    file = heldout_file(path, split)
    if not file.is_file():
        raise BadInputError(
            f"no {file.name}: build the KG with --holdout-synonyms N (test) and --holdout-dev-synonyms N "
            "(dev) to get a held-out linking set",
            path,
        )
    return [
        Mention(source_id, 0, 0, name, "heldout", ((kg_node_key(node),),), False, "heldout", line_no)
        for node, source_id, name, line_no in read_heldout_rows(file)
    ]


def expand_abbreviations(mentions: list[Mention], documents: dict[str, str]) -> tuple[list[Mention], int]:
    """Replace a mention that is a short form defined in its document by the long form.

    Uses the corpus stage's Schwartz-Hearst detector, so linking and evaluation agree on what a
    document defines.

    Returns the new list and how many mentions changed.
    """
    cache: dict[str, dict[str, str]] = {}
    expanded: list[Mention] = []
    changed = 0
    for mention in mentions:
        if mention.doc_id not in cache:
            found = find_abbreviations(documents.get(mention.doc_id, ""))
            cache[mention.doc_id] = {a.short: a.long for a in found}
        long_form = cache[mention.doc_id].get(mention.text)
        if long_form is not None:
            mention = replace(mention, text=long_form, source="abbreviation")
            changed += 1
        expanded.append(mention)
    return expanded, changed


def check_heldout_leakage(mentions: Sequence[Mention], dictionary: Dictionary, path: str | Path) -> None:
    """A held-out name still among its own node's dictionary names would inflate the score."""
    held = {(m.gold[0][0], m.text.lower()): m for m in mentions}
    for s, string in enumerate(dictionary.strings):
        lowered = string.lower()
        for concept in dictionary.concepts_of_string(s).tolist():
            mention = held.get((kg_node_key(concept), lowered))
            if mention is not None:
                raise BadInputError(
                    f"held-out synonym '{mention.text}' is still a dictionary name of node {concept}: "
                    "the KG leaks its held-out set",
                    heldout_file(path),
                    mention.line,
                )
