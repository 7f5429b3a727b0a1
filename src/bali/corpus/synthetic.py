"""Synthetic annotated corpora over a UMLS release's names: BERN2 PubMed shards and MedMentions gold.

The paper's corpus is PubMed annotated by BERN2 and its linking benchmark MedMentions; neither may
be shipped in tests (size, licences). These generators write the same formats over the concept
names of a (synthetic) UMLS release, so the corpus stage, the evaluation and the end-to-end
rehearsal walk the paper's path at miniature size:

* :func:`write_synthetic_bern2`: ``pubmed22nXXXX.json`` shards, one JSON object per line (``pmid``,
  ``text``, ``annotations`` with ``id`` list, ``mention``, ``obj``, ``span``), with what BERN2 really
  writes: MeSH ids spelled ``mesh:``/``MESH:``, OMIM and ``NCBITaxon`` ids (these map to the KG
  through its cross-references), ``NCBIGene`` ids (UMLS has no NCBI Gene source: unknown to the
  KG), cell lines (``CVCL_``), tmVar mutation ids, ``CUI-less`` mentions, multi-id annotations
  (``mesh:D000001|OMIM:123456`` in one string, or two list items), the same span annotated twice
  with two types, and gene annotations nested inside a concept's name.
* :func:`write_medmentions_pubtator`: PubTator ``title``/``abstract`` lines and tab-separated mention
  lines with MRSTY type ids and ``UMLS:C...`` gold, mentions being a concept's names, their case
  variants, or close variants (two words swapped, one dropped).

Both are deterministic given the seed (Python's ``random.Random``: stable across versions).
"""

from __future__ import annotations

import json
import os
import random
import string
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bali.errors import BadInputError
from bali.kg.rrf import SUPPRESSED, read_layout

BERN2_SHARD = "pubmed22n{:04d}.json"
# MRCONSO sources whose codes BERN2 normalises to, and BERN2's spelling of their ids.
_BERN2_PREFIX = {"MSH": "mesh", "OMIM": "OMIM", "NCBI": "NCBITaxon"}
_MESH_OWN_CODE_TTYS = ("MH", "NM")  # entry terms may carry another concept's descriptor code
_DRUG_TYPES = frozenset({"T109", "T116", "T121"})
_FIRST_PMID = 30_000_000

_BERN2_SENTENCES = (
    "{a} was observed in patients with {b}.",
    "Treatment of {a} in {species} reduced {b}.",
    "Expression of {gene} was increased in {a}.",
    "The {mutation} mutation of {gene} causes {a}.",
    "{cell} cells were exposed to {a}.",
    "We found no association between {a} and {b}.",
)
_PUBTATOR_SENTENCES = (
    "{a} in patients with {b}.",
    "Effects of {a} on {b} were assessed.",
    "We describe {a}.",
    "{a} was compared with {b} and {c}.",
)
_GENE_STEMS = ("BRCA", "TP", "EGFR", "KRAS", "ALK", "MYC", "CDK", "SOX")
_CELL_LINES = (("HeLa", "CVCL_0030"), ("MCF-7", "CVCL_0031"), ("HEK293", "CVCL_0045"))
_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

Slot = Callable[[str, "_Text"], None]  # writes the filler of one ``{field}`` of a sentence template


@dataclass(frozen=True)
class ReleaseConcept:
    """A concept as ``kg build --umls`` keeps it with default filters (English, unsuppressed atoms)."""

    cui: str
    names: tuple[str, ...]
    codes: tuple[tuple[str, str], ...]  # (SAB, CODE) of its own MeSH/OMIM/NCBI codes
    semantic_types: tuple[str, ...]  # TUIs


def read_release_concepts(umls_dir: Path) -> list[ReleaseConcept]:
    """Concepts with at least one English unsuppressed atom, in CUI order, with their names, the
    codes BERN2 would normalise them to (MeSH main headings and supplementary concepts, OMIM, NCBI
    Taxonomy) and their MRSTY types."""
    names: dict[str, list[str]] = {}
    codes: dict[str, dict[tuple[str, str], None]] = {}
    for row in _rrf_rows(umls_dir, "MRCONSO.RRF", ("CUI", "LAT", "SAB", "TTY", "CODE", "STR", "SUPPRESS")):
        cui, lat, sab, tty, code, name, suppress = row
        if lat != "ENG" or suppress in SUPPRESSED or not name.strip():
            continue
        names.setdefault(cui, []).append(name)
        if sab in _BERN2_PREFIX and (sab != "MSH" or tty in _MESH_OWN_CODE_TTYS):
            codes.setdefault(cui, {})[(sab, code)] = None
    types: dict[str, list[str]] = {}
    if (umls_dir / "MRSTY.RRF").is_file():
        for cui, tui in _rrf_rows(umls_dir, "MRSTY.RRF", ("CUI", "TUI")):
            types.setdefault(cui, []).append(tui)
    if not names:
        raise BadInputError("no English unsuppressed atom in MRCONSO.RRF", umls_dir / "MRCONSO.RRF")
    return [
        ReleaseConcept(cui, tuple(n), tuple(codes.get(cui, ())), tuple(types.get(cui, ())))
        for cui, n in sorted(names.items())
    ]


def _rrf_rows(directory: Path, name: str, columns: Iterable[str]) -> Iterator[list[str]]:
    """The wanted columns of every line of an RRF file, by the release's MRFILES layout."""
    path = directory / name
    if not path.is_file():
        raise BadInputError(f"{name} not found in the UMLS release directory", path)
    layout = read_layout(directory)[name]
    index = [layout.index(c) for c in columns]
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\r\n").split("|")
            if len(fields) < len(layout):
                raise BadInputError(f"expected {len(layout)} '|'-separated fields", path, number)
            yield [fields[i] for i in index]


@dataclass
class _Text:
    """A document being written: its text so far and the annotations on it (document offsets)."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: str) -> tuple[int, int]:
        self.parts.append(text)
        self.length += len(text)
        return self.length - len(text), self.length

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _fill(template: str, doc: _Text, slot: Slot) -> None:
    """Write one sentence: literal text as is, each ``{field}`` through ``slot(field, doc)``."""
    for literal, name, _, _ in string.Formatter().parse(template):
        doc.add(literal)
        if name is not None:
            slot(name, doc)


def _bern2_annotation(
    ids: list[str], mention: str, obj: str, span: tuple[int, int], rng: random.Random
) -> dict:
    return {
        "id": ids,
        "is_neural_normalized": rng.random() < 0.3,
        "prob": round(0.5 + rng.random() / 2, 4),
        "mention": mention,
        "obj": obj,
        "span": {"begin": span[0], "end": span[1]},
    }


def _bern2_ids(concept: ReleaseConcept, rng: random.Random) -> list[str]:
    """BERN2's id list for a concept: one code, both MeSH and OMIM codes (one ``|``-joined string or
    two items, as BERN2 writes either), or ``CUI-less`` (recognised but not normalised)."""
    spelled = [f"{_BERN2_PREFIX[sab]}:{code}" for sab, code in concept.codes]
    spelled = [s.upper() if s.startswith("mesh:") and rng.random() < 0.3 else s for s in spelled]
    roll = rng.random()
    if roll < 0.08:
        return ["CUI-less"]
    has_mesh_and_omim = {sab for sab, _ in concept.codes} >= {"MSH", "OMIM"}
    if len(spelled) > 1 and (has_mesh_and_omim or roll < 0.3):
        return ["|".join(spelled)] if roll < 0.5 else spelled
    return [rng.choice(spelled)]


def _gene(rng: random.Random) -> tuple[str, list[str]]:
    return f"{rng.choice(_GENE_STEMS)}{rng.randint(1, 12)}", [f"NCBIGene:{rng.randint(1, 120_000)}"]


def _concept_mention(concept: ReleaseConcept, doc: _Text, rng: random.Random) -> None:
    """A concept's name with its BERN2 ids, sometimes annotated twice (two types, same span) or with
    a gene annotation nested on its first word."""
    name = rng.choice(concept.names)
    span = doc.add(name)
    sabs = {sab for sab, _ in concept.codes}
    obj = (
        "species" if sabs == {"NCBI"} else "drug" if _DRUG_TYPES & set(concept.semantic_types) else "disease"
    )
    ids = _bern2_ids(concept, rng)
    doc.annotations.append(_bern2_annotation(ids, name, obj, span, rng))
    roll = rng.random()
    if roll < 0.1:
        other = "drug" if obj == "disease" else "disease"
        doc.annotations.append(_bern2_annotation(ids, name, other, span, rng))
    elif roll < 0.2 and " " in name:
        first = name.split(" ", 1)[0]
        _, gene_ids = _gene(rng)
        doc.annotations.append(
            _bern2_annotation(gene_ids, first, "gene", (span[0], span[0] + len(first)), rng)
        )


def _bern2_slot(coded: list[ReleaseConcept], species: list[ReleaseConcept], rng: random.Random) -> Slot:
    """The filler of each field of :data:`_BERN2_SENTENCES`."""

    def slot(name: str, doc: _Text) -> None:
        if name in ("a", "b"):
            _concept_mention(rng.choice(coded), doc, rng)
        elif name == "species":
            _concept_mention(rng.choice(species or coded), doc, rng)
        elif name == "gene":
            symbol, ids = _gene(rng)
            doc.annotations.append(_bern2_annotation(ids, symbol, "gene", doc.add(symbol), rng))
        elif name == "mutation":
            position, before, after = rng.randint(10, 900), rng.choice(_AMINO_ACIDS), rng.choice(_AMINO_ACIDS)
            text = f"p.{before}{position}{after}"
            tmvar = f"tmVar:p|SUB|{before}|{position}|{after};HGVS:{text};VariantGroup:0"
            doc.annotations.append(_bern2_annotation([tmvar], text, "mutation", doc.add(text), rng))
        else:
            cell, cvcl = rng.choice(_CELL_LINES)
            doc.annotations.append(_bern2_annotation([cvcl], cell, "cell_line", doc.add(cell), rng))

    return slot


def _sentences(doc: _Text, templates: tuple[str, ...], count: int, slot: Slot, rng: random.Random) -> None:
    for index in range(count):
        if index:
            doc.add(" ")
        _fill(rng.choice(templates), doc, slot)


def _write_lines_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write text lines through a temporary file and ``os.replace`` (no half-written shard)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(f"{line}\n" for line in lines)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_synthetic_bern2(
    umls_dir: Path, out_dir: Path, *, documents: int, seed: int, documents_per_shard: int = 100
) -> list[Path]:
    """Write ``documents`` BERN2-annotated abstracts over the release's concept names into
    ``out_dir/pubmed22n0001.json``, ... (``documents_per_shard`` each) and return the shard paths."""
    concepts = read_release_concepts(Path(umls_dir))
    coded = [c for c in concepts if c.codes]
    if not coded:
        raise BadInputError("no concept of the release has a MeSH, OMIM or NCBI code", umls_dir)
    species = [c for c in coded if {sab for sab, _ in c.codes} == {"NCBI"}]
    rng = random.Random(seed)
    slot = _bern2_slot(coded, species, rng)
    shards: list[Path] = []
    for first in range(0, documents, documents_per_shard):
        records = []
        for number in range(first, min(first + documents_per_shard, documents)):
            doc = _Text()
            _sentences(doc, _BERN2_SENTENCES, rng.randint(3, 6), slot, rng)
            record = {"pmid": str(_FIRST_PMID + number), "text": doc.text, "annotations": doc.annotations}
            records.append(json.dumps(record, ensure_ascii=False))
        shards.append(Path(out_dir) / BERN2_SHARD.format(len(shards) + 1))
        _write_lines_atomic(shards[-1], records)
    return shards


def _surface(name: str, rng: random.Random) -> str:
    """A concept name as a text mentions it: as is (55%), lower-cased or capitalised (25%), or with
    two words swapped or one dropped (20%; the last word, the synthetic names' serial, is kept), so
    that linking is easy but not a string lookup."""
    roll = rng.random()
    if roll < 0.55:
        return name
    if roll < 0.8:
        return name.lower() if roll < 0.7 else name[:1].upper() + name[1:]
    *head, last = name.split(" ")
    if len(head) < 2:
        return name
    i = rng.randrange(len(head) - 1)
    if roll < 0.9:
        head[i], head[i + 1] = head[i + 1], head[i]
    else:
        del head[i]
    return " ".join([*head, last])


def _medmentions_document(pmid: str, concepts: list[ReleaseConcept], rng: random.Random) -> list[str]:
    """The PubTator lines of one document: a one-sentence title, a 2-4 sentence abstract."""
    doc = _Text()
    mentions: list[tuple[tuple[int, int], str, ReleaseConcept]] = []

    def slot(_: str, doc: _Text) -> None:
        concept = rng.choice(concepts)
        text = _surface(rng.choice(concept.names), rng)
        mentions.append((doc.add(text), text, concept))

    _fill(rng.choice(_PUBTATOR_SENTENCES), doc, slot)
    title_end = doc.length
    doc.add(" ")
    _sentences(doc, _PUBTATOR_SENTENCES, rng.randint(2, 4), slot, rng)
    text = doc.text
    lines = [f"{pmid}|t|{text[:title_end]}", f"{pmid}|a|{text[title_end + 1 :]}"]
    for (start, end), mention, concept in mentions:
        types = ",".join(concept.semantic_types) or "UnknownType"
        lines.append(f"{pmid}\t{start}\t{end}\t{mention}\t{types}\tUMLS:{concept.cui}")
    return [*lines, ""]


def write_medmentions_pubtator(umls_dir: Path, path: Path, *, documents: int, seed: int) -> Path:
    """Write ``documents`` MedMentions-style PubTator documents (``PMID|t|``, ``PMID|a|`` and
    ``PMID<TAB>start<TAB>end<TAB>mention<TAB>TUIs<TAB>UMLS:CUI`` lines, a blank line after each) to
    ``path`` and return it. Every English concept of the release can be mentioned, code-less ones too."""
    concepts = read_release_concepts(Path(umls_dir))
    rng = random.Random(seed)
    lines = [
        line
        for number in range(documents)
        for line in _medmentions_document(str(_FIRST_PMID + number), concepts, rng)
    ]
    _write_lines_atomic(Path(path), lines)
    return Path(path)
