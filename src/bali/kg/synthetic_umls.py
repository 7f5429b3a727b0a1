"""Synthetic UMLS releases in the real RRF formats, for tests and benchmarks (UMLS itself is licensed).

The proportions follow a real release: ~3.5 MRCONSO atoms per concept (1 + Poisson), ~80% English,
~3% suppressed atoms, a preferred atom per concept (TS=P, STT=PF, ISPREF=Y), MeSH main headings
(TTY=MH, ``D`` codes) and supplementary concepts (TTY=NM, ``C`` + 6 or 9 digits), entry terms sharing
a code with other concepts, OMIM numbers, NCBI Taxonomy ids (SAB NCBI, unpadded), HPO CURIEs, code-less
Metathesaurus atoms (MTH, NOCODE; ~5% of concepts have nothing else), strings with quotes and apostrophes,
case-variant duplicate names, ~10 MRREL rows per concept listed in both directions with a REL/RELA
mix (PAR/CHD with isa/inverse_isa, RB/RN, RO with may_treat/part_of/..., SIB, SY, some self-loops),
1-2 semantic types per concept, some definitions, and an MRFILES.RRF giving the column layouts.

Everything is generated column-wise with numpy/pyarrow and written as one Arrow string buffer per
chunk, so a 1M-concept release (10M MRREL rows) takes seconds, not minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bali.kg.rrf import STANDARD_LAYOUT

_WORDS = [
    "acute",
    "chronic",
    "familial",
    "juvenile",
    "primary",
    "secondary",
    "congenital",
    "idiopathic",
    "malignant",
    "benign",
    "renal",
    "hepatic",
    "cardiac",
    "pulmonary",
    "neural",
    "ocular",
    "dermal",
    "gastric",
    "spinal",
    "cerebral",
    "muscular",
    "syndrome",
    "disease",
    "disorder",
    "deficiency",
    "carcinoma",
    "lymphoma",
    "anemia",
    "fever",
    "pain",
    "infection",
    "inflammation",
    "atrophy",
    "dystrophy",
    "stenosis",
    "fibrosis",
    "neuropathy",
    "myopathy",
    "receptor",
    "kinase",
    "protein",
    "inhibitor",
    "agonist",
    "antibody",
    "vaccine",
    "sodium",
    "potassium",
    "chloride",
    "acid",
    "Crohn's",
    "Parkinson's",
    "Alzheimer's",
    '"type"',
    "(disorder)",
    "[ambiguous]",
    "5-HT",
    "NOS,",
    "1,2-diol",
]
_OTHER_LANGS = ("SPA", "FRE", "GER", "DUT", "ITA", "POR", "JPN", "CZE")
_SABS = ("MSH", "SNOMEDCT_US", "NCI", "MTH", "RXNORM", "OMIM", "NCBI", "MDR", "HPO", "ICD10CM", "LNC")
_MSH, _MTH, _NCBI, _HPO = (_SABS.index(sab) for sab in ("MSH", "MTH", "NCBI", "HPO"))
_SAB_WEIGHTS = np.array([20, 25, 12, 8, 8, 5, 5, 6, 4, 4, 3], dtype=float)
_SAB_P = _SAB_WEIGHTS / _SAB_WEIGHTS.sum()
_STY = (
    ("T047", "B2.2.1.2.1", "Disease or Syndrome"),
    ("T121", "A1.4.1.1.1", "Pharmacologic Substance"),
    ("T116", "A1.4.1.2.1.7", "Amino Acid, Peptide, or Protein"),
    ("T184", "A2.2.2", "Sign or Symptom"),
    ("T023", "A1.2.3.1", "Body Part, Organ, or Organ Component"),
    ("T109", "A1.4.1.2.1", "Organic Chemical"),
    ("T191", "B2.2.1.2.1.2", "Neoplastic Process"),
    ("T001", "A1.1", "Organism"),
)
# (REL, RELA) of a statement and of its mirror row, with weights; "" means no RELA.
_REL_PAIRS = (
    (("CHD", "isa"), ("PAR", "inverse_isa"), 20),
    (("CHD", ""), ("PAR", ""), 15),
    (("RN", ""), ("RB", ""), 12),
    (("RO", ""), ("RO", ""), 15),
    (("RO", "may_treat"), ("RO", "may_be_treated_by"), 6),
    (("RO", "part_of"), ("RO", "has_part"), 6),
    (("RO", "associated_with"), ("RO", "associated_with"), 4),
    (("SIB", ""), ("SIB", ""), 10),
    (("RQ", "mapped_to"), ("RQ", "mapped_from"), 5),
    (("SY", ""), ("SY", ""), 4),
    (("AQ", ""), ("QB", ""), 3),
)
_PAIR_WEIGHTS = np.array([w for _, _, w in _REL_PAIRS], dtype=float)
_PAIR_P = _PAIR_WEIGHTS / _PAIR_WEIGHTS.sum()
_DESCRIPTIONS = {
    "MRCONSO.RRF": "Concept names and sources",
    "MRREL.RRF": "Related Concepts",
    "MRSTY.RRF": "Semantic Types",
    "MRDEF.RRF": "Definitions",
    "MRFILES.RRF": "Relational Files",
}


def _fmt(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded numbers, as an Arrow string array."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _write_rows(handle: Any, columns: list[pa.Array | str]) -> None:
    """Append ``|``-joined rows with UMLS's trailing ``|`` to an open binary file."""
    joined = pc.binary_join_element_wise(*columns, pa.scalar("\n"), "|")
    # A contiguous string array's value buffer is exactly the concatenated rows.
    arr = joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    handle.write(memoryview(arr.buffers()[2])[offsets[0] : offsets[-1]])


def _term_types(rng: np.random.Generator, sab_idx: np.ndarray, first: np.ndarray) -> np.ndarray:
    """TTY per atom: MeSH MH for a concept's first atom, ET/PEP after; SCN for NCBI Taxonomy's
    scientific names; PT or SY elsewhere."""
    is_msh = sab_idx == _MSH
    m = sab_idx.size
    tty = np.where(is_msh, np.where(first, "MH", np.where(rng.random(m) < 0.5, "ET", "PEP")), "PT")
    tty = np.where(~is_msh & ~first & (rng.random(m) < 0.6), "SY", tty)
    return np.where((sab_idx == _NCBI) & first, "SCN", tty)


def _supplementary(cuis: np.ndarray) -> np.ndarray:
    """Concepts whose MeSH code is a supplementary concept record (``C`` + 6 or 9 digits, TTY NM)."""
    return cuis % 4 == 0


def _codes(sab_idx: np.ndarray, cuis: np.ndarray) -> pa.Array:
    """CODE per atom, in each source's real spelling, derived from the code-owning concept's CUI.

    MeSH: descriptors ``D`` + 6 digits, supplementary concepts ``C`` + 6 (old) or 9 (new) digits,
    never ``C`` + 7 (that is a CUI); OMIM: 6 digits; NCBI Taxonomy: unpadded integers (``9606``);
    HPO: ``HP:`` CURIEs; MTH: ``NOCODE``; other sources: 6 digits.
    """
    num = (cuis * 7 + sab_idx) % 1_000_000
    supplementary = _supplementary(cuis)
    mesh = pc.if_else(
        pa.array(supplementary & (cuis % 8 == 0)),
        _fmt("C", num, 6),
        pc.if_else(pa.array(supplementary), _fmt("C000", num, 6), _fmt("D", num, 6)),
    )
    code = _fmt("", num, 6)
    for index, spelled in (
        (_MSH, mesh),
        (_NCBI, pc.cast(pa.array(num % 99_999 + 1), pa.string())),
        (_HPO, _fmt("HP:", num, 7)),
        (_MTH, pa.scalar("NOCODE")),
    ):
        code = pc.if_else(pa.array(sab_idx == index), spelled, code)
    return code


def _names(rng: np.random.Generator, size: int, serial: np.ndarray) -> pa.Array:
    """Two or three vocabulary words plus a per-concept serial, so names are mostly distinct."""
    words = pa.array(_WORDS)
    first = words.take(pa.array(rng.integers(0, len(_WORDS), size)))
    second = words.take(pa.array(rng.integers(0, len(_WORDS), size)))
    third = words.take(pa.array(rng.integers(0, len(_WORDS), size)))
    three = pa.array(rng.random(size) < 0.4)
    base = pc.if_else(
        three,
        pc.binary_join_element_wise(first, second, third, " "),
        pc.binary_join_element_wise(first, second, " "),
    )
    return pc.binary_join_element_wise(base, pc.cast(pa.array(serial), pa.string()), " ")


def write_synthetic_umls(
    directory: str | Path,
    n_concepts: int,
    seed: int = 0,
    *,
    names_per_concept: float = 3.5,
    english_fraction: float = 0.8,
    rels_per_concept: float = 10.0,
    suppressed_fraction: float = 0.03,
    self_loop_fraction: float = 0.005,
    definition_fraction: float = 0.1,
    chunk_concepts: int = 200_000,
) -> dict[str, Any]:
    """Write MRCONSO/MRREL/MRSTY/MRDEF/MRFILES.RRF for ``n_concepts`` concepts into ``directory``.

    Deterministic for a given ``seed``. Returns the row count of each file and the CUIs (sorted int
    array, ``C%07d``) so callers can pick concepts to restrict to. Kept signature-stable: the linker
    benchmark builds its >= 1M-name dictionary with it.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cuis = np.sort(rng.choice(9_999_999, size=n_concepts, replace=False) + 1)
    rows: dict[str, int] = dict.fromkeys(("MRCONSO.RRF", "MRREL.RRF", "MRSTY.RRF", "MRDEF.RRF"), 0)
    with (
        (out / "MRCONSO.RRF").open("wb") as conso,
        (out / "MRREL.RRF").open("wb") as rel,
        (out / "MRSTY.RRF").open("wb") as sty,
        (out / "MRDEF.RRF").open("wb") as mrdef,
    ):
        # The writers draw from ``rng`` in this order: changing it changes every generated release.
        for start in range(0, n_concepts, chunk_concepts):
            chunk = cuis[start : start + chunk_concepts]
            rows["MRCONSO.RRF"] += _write_atoms(
                conso,
                rng,
                chunk,
                start,
                rows["MRCONSO.RRF"],
                names_per_concept=names_per_concept,
                english_fraction=english_fraction,
                suppressed_fraction=suppressed_fraction,
            )
            rows["MRREL.RRF"] += _write_relations(
                rel, rng, chunk, cuis, rows["MRREL.RRF"], rels_per_concept, self_loop_fraction
            )
            rows["MRSTY.RRF"] += _write_semantic_types(sty, rng, chunk, rows["MRSTY.RRF"])
            rows["MRDEF.RRF"] += _write_definitions(
                mrdef, rng, chunk, start, rows["MRDEF.RRF"], definition_fraction
            )
    _write_mrfiles(out, rows)
    return {"directory": str(out), "rows": rows, "cuis": cuis}


def _atom_owners(rng: np.random.Generator, n: int, names_per_concept: float) -> tuple[np.ndarray, np.ndarray]:
    """Concept (chunk position) of each atom, 1 + Poisson atoms per concept, and whether it is the first."""
    per = 1 + rng.poisson(max(names_per_concept - 1.0, 0.0), n)
    owner = np.repeat(np.arange(n), per)
    first = np.ones(owner.size, dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    return owner, first


def _languages(
    rng: np.random.Generator, first: np.ndarray, english_fraction: float, names_per_concept: float
) -> pa.Array:
    """LAT per atom: a concept's first atom is English, the others so that ``english_fraction`` are."""
    m = first.size
    other_english = (english_fraction * names_per_concept - 1) / max(names_per_concept - 1, 1e-9)
    english = first | (rng.random(m) < other_english)
    return pa.array(np.where(english, "ENG", np.array(_OTHER_LANGS)[rng.integers(0, len(_OTHER_LANGS), m)]))


def _sources(
    rng: np.random.Generator, chunk: np.ndarray, owner: np.ndarray, first: np.ndarray
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """SAB, TTY and CODE per atom."""
    m = owner.size
    sab_idx = rng.choice(len(_SABS), size=m, p=_SAB_P)
    # Some concepts exist only as Metathesaurus atoms (MTH, CODE=NOCODE): no source code at
    # all, so only their CUI names them. Chosen from the CUI, which draws nothing from rng.
    sab_idx = np.where(chunk[owner] % 20 == 1, _MTH, sab_idx)
    sab = pa.array(np.array(_SABS)[sab_idx])
    tty = _term_types(rng, sab_idx, first)
    # Codes: MeSH entry terms sometimes carry another concept's descriptor code (ambiguity).
    is_msh = sab_idx == _MSH
    code_owner = np.where(is_msh & ~first & (rng.random(m) < 0.2), rng.integers(0, chunk.size, m), owner)
    code = _codes(sab_idx, chunk[code_owner])
    tty = np.where(is_msh & (tty == "MH") & _supplementary(chunk[code_owner]), "NM", tty)
    return sab, pa.array(tty), code


def _atom_names(
    rng: np.random.Generator, serial: np.ndarray, owner: np.ndarray, first: np.ndarray
) -> pa.Array:
    """STR per atom: generated names, some replaced by upper-cased variants of the concept's first name
    (duplicates after case folding)."""
    m = owner.size
    names = _names(rng, m, serial)
    first_pos = np.nonzero(first)[0][owner]
    variant = ~first & (rng.random(m) < 0.08)
    return pc.if_else(pa.array(variant), pc.utf8_upper(names.take(pa.array(first_pos))), names)


def _atom_flags(
    rng: np.random.Generator, first: np.ndarray, suppressed_fraction: float
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """SUPPRESS, TS, STT and ISPREF per atom: a concept's first atom is unsuppressed and preferred."""
    m = first.size
    suppress = np.where(
        ~first & (rng.random(m) < suppressed_fraction),
        np.array(["O", "E", "Y"])[rng.integers(0, 3, m)],
        "N",
    )
    ts = np.where(first, "P", "S")
    stt = np.where(first | (rng.random(m) < 0.7), "PF", "VO")
    ispref = np.where(first | (rng.random(m) < 0.8), "Y", "N")
    return pa.array(suppress), pa.array(ts), pa.array(stt), pa.array(ispref)


def _write_atoms(
    handle: BinaryIO,
    rng: np.random.Generator,
    chunk: np.ndarray,
    start: int,
    first_aui: int,
    *,
    names_per_concept: float,
    english_fraction: float,
    suppressed_fraction: float,
) -> int:
    """MRCONSO rows of one chunk of concepts, the first atom of each preferred; returns the row count.

    ``start`` is the chunk's first concept (names carry a release-wide serial) and ``first_aui``
    the number of atoms written before (AUIs and SUIs continue from it).
    """
    owner, first = _atom_owners(rng, chunk.size, names_per_concept)
    m = owner.size
    lat = _languages(rng, first, english_fraction, names_per_concept)
    sab, tty, code = _sources(rng, chunk, owner, first)
    names = _atom_names(rng, start + owner, owner, first)
    suppress, ts, stt, ispref = _atom_flags(rng, first, suppressed_fraction)
    aui_ids = first_aui + np.arange(m)
    _write_rows(
        handle,
        [
            _fmt("C", chunk[owner], 7),
            lat,
            ts,
            _fmt("L", chunk[owner], 7),
            stt,
            _fmt("S", aui_ids, 7),
            ispref,
            _fmt("A", aui_ids, 8),
            pa.scalar(""),
            pa.scalar(""),
            pa.scalar(""),
            sab,
            tty,
            code,
            names,
            pa.scalar("0"),
            suppress,
            pa.scalar("256"),
        ],
    )
    return m


def _write_relations(
    handle: BinaryIO,
    rng: np.random.Generator,
    chunk: np.ndarray,
    cuis: np.ndarray,
    first_row: int,
    rels_per_concept: float,
    self_loop_fraction: float,
) -> int:
    """MRREL rows: statements from the chunk's concepts to random concepts of the release, each
    written in both directions; returns the row count (``first_row`` numbers the RUIs)."""
    n = chunk.size
    k = round(n * rels_per_concept / 2)
    a = chunk[rng.integers(0, n, k)]
    b = np.where(rng.random(k) < self_loop_fraction, a, cuis[rng.integers(0, cuis.size, k)])
    kind = rng.choice(len(_REL_PAIRS), size=k, p=_PAIR_P)
    fwd = np.array([f for f, _, _ in _REL_PAIRS])
    bwd = np.array([r for _, r, _ in _REL_PAIRS])
    cui1 = np.concatenate([a, b])
    cui2 = np.concatenate([b, a])
    rel_code = np.concatenate([fwd[kind, 0], bwd[kind, 0]])
    rela = np.concatenate([fwd[kind, 1], bwd[kind, 1]])
    rel_sab = pa.array(np.array(_SABS)[rng.choice(len(_SABS), size=2 * k, p=_SAB_P)])
    rel_suppress = np.where(rng.random(2 * k) < 0.01, "O", "N")
    rui = _fmt("R", first_row + np.arange(2 * k), 9)
    _write_rows(
        handle,
        [
            _fmt("C", cui1, 7),
            pa.scalar(""),
            pa.scalar("CUI"),
            pa.array(rel_code),
            _fmt("C", cui2, 7),
            pa.scalar(""),
            pa.scalar("CUI"),
            pa.array(rela),
            rui,
            pa.scalar(""),
            rel_sab,
            rel_sab,
            pa.scalar(""),
            pa.scalar("Y"),
            pa.array(rel_suppress),
            pa.scalar(""),
        ],
    )
    return 2 * k


def _write_semantic_types(
    handle: BinaryIO, rng: np.random.Generator, chunk: np.ndarray, first_row: int
) -> int:
    """MRSTY rows: one or two semantic types per concept; returns the row count (``first_row``
    numbers the ATUIs)."""
    n = chunk.size
    n_types = 1 + (rng.random(n) < 0.3)
    sty_owner = np.repeat(np.arange(n), n_types)
    # A concept's types are consecutive entries of the table from a random one: never twice the same.
    owner_start = np.repeat(np.cumsum(n_types) - n_types, n_types)
    draw = rng.integers(0, len(_STY), sty_owner.size)
    sty_idx = (draw[owner_start] + np.arange(sty_owner.size) - owner_start) % len(_STY)
    table = np.array(_STY)
    _write_rows(
        handle,
        [
            _fmt("C", chunk[sty_owner], 7),
            pa.array(table[sty_idx, 0]),
            pa.array(table[sty_idx, 1]),
            pa.array(table[sty_idx, 2]),
            _fmt("AT", first_row + np.arange(sty_owner.size), 8),
            pa.scalar("256"),
        ],
    )
    return sty_owner.size


def _write_definitions(
    handle: BinaryIO,
    rng: np.random.Generator,
    chunk: np.ndarray,
    start: int,
    first_row: int,
    definition_fraction: float,
) -> int:
    """MRDEF rows for about ``definition_fraction`` of the chunk's concepts; returns the row count."""
    with_def = np.nonzero(rng.random(chunk.size) < definition_fraction)[0]
    if with_def.size:
        _write_rows(
            handle,
            [
                _fmt("C", chunk[with_def], 7),
                pa.scalar(""),
                _fmt("AT", first_row + np.arange(with_def.size), 9),
                pa.scalar(""),
                pa.scalar("MSH"),
                pc.binary_join_element_wise(
                    pa.scalar('A "synthetic" definition of concept'),
                    _fmt("", with_def + start, 1),
                    " ",
                ),
                pa.scalar("N"),
                pa.scalar(""),
            ],
        )
    return with_def.size


def _write_mrfiles(out: Path, rows: dict[str, int]) -> None:
    """MRFILES.RRF: the column layout, row count and size of every file (itself included)."""
    with (out / "MRFILES.RRF").open("w", encoding="utf-8") as handle:
        for name in ("MRCONSO.RRF", "MRDEF.RRF", "MRFILES.RRF", "MRREL.RRF", "MRSTY.RRF"):
            columns = STANDARD_LAYOUT[name]
            count = rows.get(name, 5)
            size = (out / name).stat().st_size if (out / name).exists() else 0
            handle.write(f"{name}|{_DESCRIPTIONS[name]}|{','.join(columns)}|{len(columns)}|{count}|{size}|\n")
