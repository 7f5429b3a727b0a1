"""UMLS release directory (MRCONSO, MRREL, MRSTY, optional MRDEF) -> KG pieces, at full-UMLS scale.

UMLS has ~4.5M concepts, ~15M English names and ~100M MRREL rows, so nothing here makes a Python
object per row. Files are read block by block with pyarrow's streaming CSV reader (delimiter ``|``,
quoting disabled: UMLS strings contain quotes; the empty column after the trailing ``|`` is
declared and dropped), only the needed columns are converted, CUIs are parsed to integers
(``C0000005`` -> 5, straight from the column's byte buffer) and mapped to dense node ids through one
int32 table over the 10^7 CUI numbers. MRCONSO and MRREL are read in two threads.

Bad input: the fast columnar pass stops at the first malformed line without knowing its number.
Only then a slow line-by-line pass finds every bad line (wrong column count, invalid UTF-8), sends
each through the :class:`ErrorBudget` with its line number, and writes the good lines to a
temporary copy that the fast pass reads again. Semantic errors (empty name, a CUI that is not
``C`` + 7 digits, a semantic type naming a CUI absent from MRCONSO) are found vectorised with their
line numbers; an MRREL row (passing the REL/RELA/SAB/SUPPRESS filters) naming a CUI absent from
MRCONSO is found after both files are read, and a second walk over MRREL, made only then, finds its
line number.

Direction: MRREL's REL/RELA read "CUI2 RELA CUI1" (``CUI1 ... CHD ... CUI2 ... isa``: CUI2 is a child
of CUI1, CUI2 isa CUI1), so the CSR row of CUI1 lists CUI2 and the relation phrase reads
"neighbour PHRASE target". Relation name = RELA when present, else REL.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tqdm import tqdm

from bali.artifacts import remove_stale_temporaries
from bali.errors import BadInputError, ErrorBudget
from bali.ids import PREFIX_ALIASES
from bali.kg.config import KGConfig
from bali.kg.graph import KGPieces, Relation
from bali.kg.relation_phrases import phrase_for

STANDARD_LAYOUT: dict[str, list[str]] = {
    "MRCONSO.RRF": [
        "CUI",
        "LAT",
        "TS",
        "LUI",
        "STT",
        "SUI",
        "ISPREF",
        "AUI",
        "SAUI",
        "SCUI",
        "SDUI",
        "SAB",
        "TTY",
        "CODE",
        "STR",
        "SRL",
        "SUPPRESS",
        "CVF",
    ],
    "MRREL.RRF": [
        "CUI1",
        "AUI1",
        "STYPE1",
        "REL",
        "CUI2",
        "AUI2",
        "STYPE2",
        "RELA",
        "RUI",
        "SRUI",
        "SAB",
        "SL",
        "RG",
        "DIR",
        "SUPPRESS",
        "CVF",
    ],
    "MRSTY.RRF": ["CUI", "TUI", "STN", "STY", "ATUI", "CVF"],
    "MRDEF.RRF": ["CUI", "AUI", "ATUI", "SATUI", "SAB", "DEF", "SUPPRESS", "CVF"],
    "MRFILES.RRF": ["FIL", "DES", "FMT", "CLS", "RWS", "BTS"],
}
SUPPRESSED = ("O", "E", "Y")
# Atoms whose code is the main heading / preferred term of their source: MeSH descriptors (MH),
# supplementary concepts (NM), and the preferred term of other sources (PT). Real MRCONSO marks
# MeSH MH atoms ISPREF=N (see the scispaCy fixture), so ISPREF is not required here.
MAIN_HEADING_TTYS = ("MH", "NM", "PT")
BLOCK_SIZE = 4 << 20
CUI_SPACE = 10_000_000
SCRATCH_PREFIX = "bali-umls-"


# Sources whose CODE is already a CURIE (``HP:0001250``, ``GO:0008150``): the code is the key.
CURIE_CODE_SABS = ("HPO", "GO", "CHEBI", "MONDO", "DOID")


def _xref_prefix(sab: str) -> str:
    """Normalised id prefix for a SAB's codes: MSH -> MESH, NCBI -> NCBITAXON, ... ("" = CURIE codes)."""
    if sab.upper() in CURIE_CODE_SABS:
        return ""
    return PREFIX_ALIASES.get(sab.upper(), sab.upper())


class _Malformed(Exception):
    """The fast pass met a line it cannot parse; the slow pass will find and count it."""


def read_layout(directory: Path) -> dict[str, list[str]]:
    """Column names of each RRF file: MRFILES.RRF when the release has it, else the standard layout."""
    layout = {name: list(columns) for name, columns in STANDARD_LAYOUT.items()}
    mrfiles = directory / "MRFILES.RRF"
    if mrfiles.is_file():
        with mrfiles.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                fields = line.rstrip("\r\n").split("|")
                if len(fields) < 3 or not fields[0]:
                    raise BadInputError(
                        "expected 'FIL|DES|FMT|...' (a file name and its columns)", mrfiles, number
                    )
                layout[fields[0]] = _declared_columns(fields[0], fields[2], mrfiles, number)
    return layout


def _declared_columns(name: str, fmt: str, mrfiles: Path, number: int) -> list[str]:
    """The FMT column list of one MRFILES line: distinct names, all of the standard ones (any order)."""
    columns = fmt.split(",")
    if "" in columns or len(set(columns)) != len(columns):
        raise BadInputError(
            f"{name}: expected distinct, non-empty column names, got '{fmt}'", mrfiles, number
        )
    missing = [c for c in STANDARD_LAYOUT.get(name, []) if c not in columns]
    if missing:
        raise BadInputError(f"{name} is declared without its column(s) {missing}", mrfiles, number)
    return columns


@dataclass
class _RRF:
    """One RRF file: path, declared columns, and the map from rows of the copy read to original lines."""

    path: Path
    columns: list[str]
    line_of_row: np.ndarray | None = None
    read_path: Path | None = None

    def line(self, row: int) -> int:
        return int(self.line_of_row[row]) if self.line_of_row is not None else row + 1


def _batches(rrf: _RRF, needed: list[str], desc: str) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(first row index, batch) over the needed columns, all as strings; raises _Malformed.

    Every needed column is a standard one, which :func:`read_layout` guarantees a layout has.
    """
    if (rrf.read_path or rrf.path).stat().st_size == 0:  # every line dropped by the slow pass
        return
    try:  # open_csv already parses the first block
        reader = pacsv.open_csv(
            rrf.read_path or rrf.path,
            read_options=pacsv.ReadOptions(
                column_names=[*rrf.columns, "_trailing"], block_size=BLOCK_SIZE, use_threads=True
            ),
            parse_options=pacsv.ParseOptions(
                delimiter="|",
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=needed,
                column_types=dict.fromkeys(needed, pa.string()),
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _Malformed(str(exc)) from exc
    start = 0
    with tqdm(desc=desc, unit=" rows", unit_scale=True, disable=None) as bar:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise _Malformed(str(exc)) from exc
            yield start, batch
            start += batch.num_rows
            bar.update(batch.num_rows)


def _clean_copy(rrf: _RRF, budget: ErrorBudget, scratch: Path) -> None:
    """Slow pass: count every malformed line with its number and write the good ones to a copy."""
    expected = len(rrf.columns)
    kept: list[int] = []
    out_path = scratch / rrf.path.name
    with rrf.path.open("rb") as src, out_path.open("wb") as dst:
        for number, raw in enumerate(
            tqdm(src, desc=f"checking {rrf.path.name}", unit=" lines", disable=None), 1
        ):
            line = raw.rstrip(b"\r\n")
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                budget.record("bad_utf8", f"invalid UTF-8 at byte {exc.start}", rrf.path, number)
                continue
            fields = line.count(b"|")
            if fields != expected or not line.endswith(b"|"):
                budget.record(
                    "wrong_column_count",
                    f"expected {expected} '|'-terminated fields ({','.join(rrf.columns)}), got "
                    f"{fields + (0 if line.endswith(b'|') else 1)}",
                    rrf.path,
                    number,
                )
                continue
            dst.write(line + b"\n")
            kept.append(number)
    rrf.read_path = out_path
    rrf.line_of_row = np.asarray(kept, dtype=np.int64)


class _Accumulator(Protocol):
    """Collects arrays from the batches of one file; ``reset`` empties it for a second pass."""

    def reset(self) -> None: ...

    def __call__(self, start: int, batch: pa.RecordBatch) -> None: ...


class _FileBudget(ErrorBudget):
    """One file's view of the shared error budget: forwards every record (under a lock, since
    MRCONSO and MRREL are read in parallel) and remembers its own, so that a file read a second
    time can take back what its abandoned first pass counted."""

    def __init__(self, parent: ErrorBudget, lock: threading.Lock) -> None:
        super().__init__(parent.max_errors)
        self.parent = parent
        self.lock = lock

    def record(
        self, reason: str, message: str, path: str | Path | None = None, line: int | None = None
    ) -> None:
        with self.lock:
            self.parent.record(reason, message, path, line)
            self.counts[reason] = self.counts.get(reason, 0) + 1

    def forget(self) -> None:
        with self.lock:
            for reason, count in self.counts.items():
                left = self.parent.counts[reason] - count
                if left:
                    self.parent.counts[reason] = left
                else:
                    del self.parent.counts[reason]
            self.counts = {}


def _scan(rrf: _RRF, needed: list[str], budget: _FileBudget, scratch: Path, acc: _Accumulator) -> None:
    """Feed every batch of the file to ``acc``; on a malformed line, clean the file and start over.

    Errors this file counted during the abandoned fast pass are forgotten, since the second pass
    meets the same lines again.
    """
    if rrf.path.stat().st_size == 0:
        raise BadInputError(
            f"empty file: expected '|'-terminated rows of {len(rrf.columns)} fields ({','.join(rrf.columns)})",
            rrf.path,
        )
    acc.reset()
    try:
        for start, batch in _batches(rrf, needed, rrf.path.name):
            acc(start, batch)
    except _Malformed:
        budget.forget()
        acc.reset()
        _clean_copy(rrf, budget, scratch)
        for start, batch in _batches(rrf, needed, rrf.path.name):
            acc(start, batch)


def _cui_ints(
    cuis: pa.Array, rrf: _RRF, start: int, budget: ErrorBudget, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """CUI strings -> int64 (``C0000005`` -> 5) and a validity mask; bad ones go to the budget.

    Fast path: every CUI is 8 bytes, so the column's value buffer is an (n, 8) byte matrix whose
    digits are decoded with one matrix product, no string kernels.
    """
    n = len(cuis)
    offsets = np.frombuffer(cuis.buffers()[1], dtype=np.int32, count=n + 1, offset=cuis.offset * 4)
    if n and offsets[-1] - offsets[0] == 8 * n and cuis.null_count == 0:
        raw = np.frombuffer(cuis.buffers()[2], dtype="<u8", count=n, offset=int(offsets[0]))
        values, good = _parse_cuis(raw)
        if good.all():
            return values, good
    good = pc.match_substring_regex(cuis, r"^C[0-9]{7}$").to_numpy(zero_copy_only=False)
    for row in np.nonzero(~good)[0]:
        budget.record(
            "bad_cui",
            f"{column}: expected a CUI ('C' + 7 digits), got '{cuis[int(row)].as_py()}'",
            rrf.path,
            rrf.line(start + int(row)),
        )
    values = np.zeros(len(cuis), dtype=np.int64)
    if good.any():
        values[good] = pc.cast(pc.utf8_slice_codeunits(cuis.filter(pa.array(good)), 1), pa.int64()).to_numpy()
    return values, good


_ZEROS = np.uint64(0x3030303030303030)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)


def _parse_cuis(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode 8-byte ``C`` + 7-digit strings held as little-endian uint64 (SWAR, no per-digit loop).

    The ``C`` is replaced by ``0``, every byte is checked to be an ASCII digit, and the eight
    digits are combined pairwise (2, 4, 8 at a time) with three multiply-shift-mask steps.
    """
    first_ok = (raw & np.uint64(0xFF)) == np.uint64(ord("C"))
    x = (raw & ~np.uint64(0xFF)) | np.uint64(0x30)
    digits_ok = ((x & _HIGH_NIBBLES) == _ZEROS) & (((x + _SIXES) & _HIGH_NIBBLES) == _ZEROS)
    d = x - _ZEROS
    d = (d * np.uint64(10) + (d >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    d = (d * np.uint64(100) + (d >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    d = (d * np.uint64(10000) + (d >> np.uint64(32))) & np.uint64(0x00000000FFFFFFFF)
    return d.astype(np.int64), first_ok & digits_ok


def _member(values: pa.Array, include: list[str], exclude: list[str]) -> np.ndarray | None:
    """Mask of rows passing an include/exclude filter; None when there is no filter."""
    mask = None
    if include:
        mask = pc.is_in(values, value_set=pa.array(include)).to_numpy(zero_copy_only=False)
    if exclude:
        out = ~pc.is_in(values, value_set=pa.array(exclude)).to_numpy(zero_copy_only=False)
        mask = out if mask is None else mask & out
    return mask


class _Codes:
    """Maps the strings of a small vocabulary (SABs, relation names) to stable integer codes."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}

    def encode(self, array: pa.Array) -> np.ndarray:
        encoded = pc.dictionary_encode(array)
        local = []
        for value in encoded.dictionary.to_pylist():
            if value not in self.index:
                self.index[value] = len(self.values)
                self.values.append(value)
            local.append(self.index[value])
        if not local:
            return np.zeros(len(array), dtype=np.int32)
        return np.asarray(local, dtype=np.int32)[encoded.indices.to_numpy()]


@dataclass
class _Atoms:
    """Kept MRCONSO atoms, accumulated block by block as arrays; ``known`` marks every CUI seen."""

    config: KGConfig
    budget: ErrorBudget
    rrf: _RRF
    sabs: _Codes = field(default_factory=_Codes)
    parts: dict[str, list[Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.parts = {k: [] for k in ("cui", "rank", "name", "sab", "code", "main")}
        self.known = np.zeros(CUI_SPACE, dtype=bool)
        self.counts = {"atoms": 0, "atoms_kept": 0}

    def __call__(self, start: int, batch: pa.RecordBatch) -> None:
        cfg = self.config
        n = batch.num_rows
        cui, valid = _cui_ints(batch.column("CUI"), self.rrf, start, self.budget, "CUI")
        self.known[cui[valid]] = True
        names = batch.column("STR")
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(names)), 0).to_numpy(zero_copy_only=False)
        for row in np.nonzero(empty & valid)[0]:
            self.budget.record(
                "empty_name",
                "expected a non-empty STR (column 15)",
                self.rrf.path,
                self.rrf.line(start + int(row)),
            )
        keep = valid & ~empty
        if cfg.languages:
            keep &= pc.is_in(batch.column("LAT"), value_set=pa.array(cfg.languages)).to_numpy(
                zero_copy_only=False
            )
        sab_mask = _member(batch.column("SAB"), cfg.sab_include, cfg.sab_exclude)
        if sab_mask is not None:
            keep &= sab_mask
        if not cfg.keep_suppressed:
            keep &= ~pc.is_in(batch.column("SUPPRESS"), value_set=pa.array(SUPPRESSED)).to_numpy(
                zero_copy_only=False
            )
        self.counts["atoms"] += n
        rows = np.flatnonzero(keep)
        self.counts["atoms_kept"] += rows.size
        if rows.size == 0:
            return
        taken = batch.select(["TS", "STT", "ISPREF", "SAB", "TTY", "CODE", "STR"]).filter(pa.array(keep))
        rank = (
            pc.equal(taken.column("TS"), "P").to_numpy(zero_copy_only=False).astype(np.int8) * 4
            + pc.equal(taken.column("STT"), "PF").to_numpy(zero_copy_only=False).astype(np.int8) * 2
            + pc.equal(taken.column("ISPREF"), "Y").to_numpy(zero_copy_only=False).astype(np.int8)
        )
        self.parts["cui"].append(cui[rows])
        self.parts["rank"].append(rank)
        self.parts["name"].append(taken.column("STR"))
        self.parts["sab"].append(self.sabs.encode(taken.column("SAB")))
        self.parts["code"].append(taken.column("CODE"))
        self.parts["main"].append(
            pc.is_in(taken.column("TTY"), value_set=pa.array(MAIN_HEADING_TTYS)).to_numpy(
                zero_copy_only=False
            )
        )


def _concat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def _group_lists(nodes: np.ndarray, values: pa.Array, num_nodes: int) -> pa.Array:
    """A list<string> per node from (node, value) pairs, values sorted by node (stable)."""
    order = np.argsort(nodes, kind="stable")
    offsets = np.zeros(num_nodes + 1, dtype=np.int32)
    np.cumsum(np.bincount(nodes, minlength=num_nodes), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(order)))


class _CuiIndex:
    """One dense int32 table over the CUI number space (``C`` + 7 digits < 10^7): O(1) lookups.

    ``node_of[cui]`` is the node id, ``NOT_KEPT`` for a CUI of MRCONSO whose atoms were all
    filtered out, ``UNKNOWN`` for a CUI absent from MRCONSO. 40 MB, independent of the release
    size, and one gather per CUI column instead of a binary search.
    """

    UNKNOWN = -2
    NOT_KEPT = -1

    def __init__(self, known: np.ndarray, node_cuis: np.ndarray) -> None:
        self.node_cuis = node_cuis
        self.node_of = np.where(known, np.int32(self.NOT_KEPT), np.int32(self.UNKNOWN)).astype(np.int32)
        self.node_of[node_cuis] = np.arange(node_cuis.size, dtype=np.int32)

    @property
    def known(self) -> np.ndarray:
        return self.node_of != self.UNKNOWN

    def nodes(self, cuis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node id of each CUI and whether it is a node."""
        pos = self.node_of[cuis]
        return pos, pos >= 0


@dataclass
class _Edges:
    """MRREL rows passing the filters as (CUI1, CUI2, relation code), accumulated block by block.

    CUIs stay CUIs here (int32) so that MRREL can be read while MRCONSO is still being read; they
    become node ids in :meth:`resolve`. With ``report_unknown`` set, the accumulator instead walks
    the file only to report rows naming CUIs absent from MRCONSO, with their line numbers.
    """

    config: KGConfig
    budget: ErrorBudget
    rrf: _RRF
    report_unknown: _CuiIndex | None = None
    unknown_budget: ErrorBudget | None = None
    names: _Codes = field(default_factory=_Codes)
    rel_of_name: dict[int, tuple[str, str]] = field(default_factory=dict)
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.parts = {"cui1": [], "cui2": [], "rel": []}
        self.counts = {"mrrel_rows": 0, "mrrel_filtered_out": 0}

    def __call__(self, start: int, batch: pa.RecordBatch) -> None:
        cfg = self.config
        self.counts["mrrel_rows"] += batch.num_rows
        cui1, ok1 = _cui_ints(batch.column("CUI1"), self.rrf, start, self.budget, "CUI1")
        cui2, ok2 = _cui_ints(batch.column("CUI2"), self.rrf, start, self.budget, "CUI2")
        valid = ok1 & ok2
        keep = valid.copy()
        for mask in (
            _member(batch.column("REL"), cfg.rel_include, cfg.rel_exclude),
            _member(batch.column("RELA"), cfg.rela_include, cfg.rela_exclude),
            _member(batch.column("SAB"), cfg.sab_include, cfg.sab_exclude),
        ):
            if mask is not None:
                keep &= mask
        if not cfg.keep_suppressed:
            keep &= ~pc.is_in(batch.column("SUPPRESS"), value_set=pa.array(SUPPRESSED)).to_numpy(
                zero_copy_only=False
            )
        if self.report_unknown is not None:
            self._report(start, cui1, cui2, keep)
            return
        self.counts["mrrel_filtered_out"] += int(np.count_nonzero(valid & ~keep))
        if not keep.any():
            return
        mask = pa.array(keep)
        rel = batch.column("REL").filter(mask)
        rela = batch.column("RELA").filter(mask)
        name = pc.if_else(pc.equal(rela, ""), rel, rela)
        codes = self.names.encode(name)
        new = [c for c in np.flatnonzero(np.bincount(codes)).tolist() if c not in self.rel_of_name]
        for code in new:
            first = int(np.argmax(codes == code))
            self.rel_of_name[code] = (rel[first].as_py(), rela[first].as_py())
        self.parts["cui1"].append(cui1[keep].astype(np.int32))
        self.parts["cui2"].append(cui2[keep].astype(np.int32))
        self.parts["rel"].append(codes)

    def _report(self, start: int, cui1: np.ndarray, cui2: np.ndarray, keep: np.ndarray) -> None:
        index, budget = self.report_unknown, self.unknown_budget
        assert index is not None and budget is not None
        unknown1 = index.node_of[cui1] == _CuiIndex.UNKNOWN
        unknown2 = index.node_of[cui2] == _CuiIndex.UNKNOWN
        for row in np.flatnonzero(keep & (unknown1 | unknown2)):
            which, value = ("CUI1", cui1[row]) if unknown1[row] else ("CUI2", cui2[row])
            budget.record(
                "unknown_concept",
                f"{which} C{value:07d} is not a concept of MRCONSO.RRF (expected an edge between known CUIs)",
                self.rrf.path,
                self.rrf.line(start + int(row)),
            )

    def resolve(
        self, index: _CuiIndex, needed: list[str], scratch: Path
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(CUI1 node, CUI2 node, relation) of the kept rows whose two CUIs are nodes.

        Rows naming a CUI absent from MRCONSO are bad input; finding their line numbers needs a
        second walk over the file, done only when there are some.
        """
        cui1 = _concat(self.parts["cui1"], np.int32)
        cui2 = _concat(self.parts["cui2"], np.int32)
        rel = _concat(self.parts["rel"], np.int32)
        self.parts.clear()  # the per-block arrays would double the edge memory from here on
        src = index.node_of[cui1]
        dst = index.node_of[cui2]
        del cui1, cui2
        unknown = (src == _CuiIndex.UNKNOWN) | (dst == _CuiIndex.UNKNOWN)
        if unknown.any():
            # Malformed lines and bad CUIs were counted by the first walk: count them silently now.
            quiet = _FileBudget(ErrorBudget(2**62), threading.Lock())
            reporter = _Edges(self.config, quiet, self.rrf, report_unknown=index, unknown_budget=self.budget)
            _scan(self.rrf, needed, quiet, scratch, reporter)
        keep = (src >= 0) & (dst >= 0)
        self.counts["mrrel_endpoint_not_kept"] = int(np.count_nonzero(~keep & ~unknown))
        return src[keep], dst[keep], rel[keep]


def _neighbourhood(
    restrict_file: str, index: _CuiIndex, src: np.ndarray, dst: np.ndarray, hops: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of nodes within ``hops`` MRREL edges (either direction) of the CUIs listed in the file."""
    path = Path(restrict_file)
    if not path.is_file():
        raise BadInputError("--restrict-to file not found", path)
    wanted: list[int] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            text = text.split(":", 1)[1] if text.upper().startswith("UMLS:") else text
            if len(text) != 8 or text[0] != "C" or not text[1:].isdecimal():
                raise BadInputError(f"expected one CUI per line (C + 7 digits), got '{text}'", path, number)
            wanted.append(int(text[1:]))
    pos, found = index.nodes(np.asarray(wanted, dtype=np.int64))
    bad = int(np.count_nonzero(~found))
    mask = np.zeros(index.node_cuis.size, dtype=bool)
    mask[pos[found]] = True
    seeds = int(mask.sum())
    for _ in range(hops):
        touched = mask[src] | mask[dst]
        grown = mask.copy()
        grown[src[touched]] = True
        grown[dst[touched]] = True
        if grown.sum() == mask.sum():
            break
        mask = grown
    return mask, {
        "restrict_cuis_listed": len(wanted),
        "restrict_cuis_not_found": bad,
        "restrict_seeds": seeds,
    }


def load_umls(config: KGConfig, budget: ErrorBudget) -> KGPieces:
    """Read a UMLS release directory into KG pieces, applying the config's filters."""
    if not config.umls_dir:
        raise BadInputError("the UMLS source needs --umls DIR")
    directory = Path(config.umls_dir)
    if not directory.is_dir():
        raise BadInputError("UMLS release directory not found", directory)
    for required in ("MRCONSO.RRF", "MRREL.RRF"):
        if not (directory / required).is_file():
            raise BadInputError(f"{required} not found in the UMLS release directory", directory / required)
    layout = read_layout(directory)
    # Cleaned copies of whole RRF files can be large: a killed run's are removed by the next one.
    remove_stale_temporaries(Path(tempfile.gettempdir()), SCRATCH_PREFIX)
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        return _load(config, budget, directory, layout, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_MRCONSO_COLUMNS = ["CUI", "LAT", "TS", "STT", "ISPREF", "SAB", "TTY", "CODE", "STR", "SUPPRESS"]
_MRREL_COLUMNS = ["CUI1", "REL", "CUI2", "RELA", "SAB", "SUPPRESS"]


def _load(
    config: KGConfig, budget: ErrorBudget, directory: Path, layout: dict[str, list[str]], scratch: Path
) -> KGPieces:
    """Read the release: atoms and edges, node selection, then names, sources, xrefs and side tables."""
    atoms, edges = _read_atoms_and_edges(config, budget, directory, layout, scratch)
    atom_cui = _concat(atoms.parts["cui"], np.int64)
    index = _atom_index(atoms.known, atom_cui)
    counts: dict[str, Any] = dict(atoms.counts)
    counts["mrconso_concepts"] = int(np.count_nonzero(atoms.known))
    edge_arrays = edges.resolve(index, _MRREL_COLUMNS, scratch)
    counts.update(edges.counts)

    atom_node = index.node_of[atom_cui]
    keep_node, new_id, edge_arrays = _select_nodes(config, index, edge_arrays, counts)
    atom_kept = keep_node[atom_node]
    node_cuis = index.node_cuis[keep_node]
    num_nodes = int(node_cuis.size)
    index = _CuiIndex(index.known, node_cuis)
    if num_nodes == 0:
        raise BadInputError("the knowledge graph is empty after filtering: no concepts left", directory)

    atom_node = new_id[atom_node[atom_kept]]
    names, name_nodes, kept_idx, preferred = _names_by_node(atoms, atom_node, atom_kept, num_nodes)
    sab_codes = _concat(atoms.parts["sab"], np.int32)[kept_idx.to_numpy()]
    sources = _sources(atoms.sabs.values, name_nodes, sab_codes, num_nodes)
    xrefs = _xrefs(atoms, kept_idx, sab_codes, name_nodes)

    semantic_types, sty_counts = _semantic_types(budget, directory, layout, scratch, index)
    counts.update(sty_counts)
    definitions = _definitions(config, budget, directory, layout, scratch, index)
    concepts = pa.table(
        {
            "source_id": pc.binary_join_element_wise(
                pa.scalar("C"), pc.utf8_lpad(pc.cast(pa.array(node_cuis), pa.string()), 7, "0"), ""
            ),
            "preferred_name": preferred,
            "semantic_types": semantic_types,
            "sources": sources,
        }
    )
    counts["concepts_before_restriction"] = int(keep_node.size)
    return KGPieces(
        concepts=concepts,
        name_node_ids=name_nodes,
        names=names,
        edges=edge_arrays,
        relations=_relations(edges),
        xrefs=xrefs,
        definitions=definitions,
        xrefs_normalised=True,
        counts=counts,
    )


def _read_atoms_and_edges(
    config: KGConfig, budget: ErrorBudget, directory: Path, layout: dict[str, list[str]], scratch: Path
) -> tuple[_Atoms, _Edges]:
    """MRCONSO atoms and MRREL edges, read in parallel (pyarrow and numpy release the GIL).

    MRREL rows keep their CUIs until MRCONSO has said which CUIs are nodes.
    """
    lock = threading.Lock()
    conso = _RRF(directory / "MRCONSO.RRF", layout["MRCONSO.RRF"])
    conso_budget = _FileBudget(budget, lock)
    atoms = _Atoms(config, conso_budget, conso)
    mrrel = _RRF(directory / "MRREL.RRF", layout["MRREL.RRF"])
    mrrel_budget = _FileBudget(budget, lock)
    edges = _Edges(config, mrrel_budget, mrrel)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reading = [
            pool.submit(_scan, conso, _MRCONSO_COLUMNS, conso_budget, scratch, atoms),
            pool.submit(_scan, mrrel, _MRREL_COLUMNS, mrrel_budget, scratch, edges),
        ]
        for future in reading:
            future.result()
    return atoms, edges


def _atom_index(known: np.ndarray, atom_cui: np.ndarray) -> _CuiIndex:
    """The index whose nodes are the CUIs with at least one kept atom, in CUI order."""
    has_atom = np.zeros(CUI_SPACE, dtype=bool)
    has_atom[atom_cui] = True
    return _CuiIndex(known, np.flatnonzero(has_atom))


def _select_nodes(
    config: KGConfig,
    index: _CuiIndex,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    counts: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Node selection: every CUI with a kept atom, or the --restrict-to neighbourhood of some of them.

    Returns the mask of kept nodes, the new id of each node of ``index`` and the edges between kept
    nodes, renumbered; the restriction's counts are added to ``counts``.
    """
    src, dst, rel = edges
    keep_node = np.ones(index.node_cuis.size, dtype=bool)
    if config.restrict_to:
        keep_node, restrict_counts = _neighbourhood(config.restrict_to, index, src, dst, config.hops)
        counts.update(restrict_counts)
    new_id = (np.cumsum(keep_node) - 1).astype(np.int32)
    if config.restrict_to:
        edge_kept = keep_node[src] & keep_node[dst]
        src, dst, rel = new_id[src[edge_kept]], new_id[dst[edge_kept]], rel[edge_kept]
    return keep_node, new_id, (src, dst, rel)


def _names_by_node(
    atoms: _Atoms, atom_node: np.ndarray, atom_kept: np.ndarray, num_nodes: int
) -> tuple[pa.Array, np.ndarray, pa.Array, pa.Array]:
    """Names of the kept atoms grouped by node, preferred atom (TS=P, STT=PF, ISPREF=Y) first, then
    file order.

    ``atom_node`` is the (new) node of each kept atom. Returns the names, the node of each, the atom
    row of each (to take other atom columns in the same order) and each node's preferred name.
    """
    rank = _concat(atoms.parts["rank"], np.int8)[atom_kept]
    # One int64 key (node, 7 - rank); a stable sort keeps file order within equal keys. MRCONSO is
    # sorted by CUI, so the key is nearly sorted and the (tim)sort is close to linear.
    order = np.argsort(atom_node.astype(np.int64) * 8 + (7 - rank), kind="stable")
    kept_idx = pa.array(np.nonzero(atom_kept)[0][order])
    names = pa.chunked_array(atoms.parts["name"], pa.string()).combine_chunks().take(kept_idx)
    name_nodes = atom_node[order]
    firsts = np.searchsorted(name_nodes, np.arange(num_nodes))
    preferred = pc.utf8_trim_whitespace(names.take(pa.array(firsts)))
    return names, name_nodes, kept_idx, preferred


def _sources(sabs: list[str], name_nodes: np.ndarray, sab_codes: np.ndarray, num_nodes: int) -> pa.Array:
    """list<string> of the distinct SABs of each node's names, in SAB code order."""
    sab_names = pa.array(sabs, pa.string())
    pair = np.sort(name_nodes.astype(np.int64) * (len(sabs) + 1) + sab_codes)
    pair = pair[np.concatenate(([True], pair[1:] != pair[:-1]))] if pair.size else pair
    src_nodes = pair // (len(sabs) + 1)
    return _group_lists(src_nodes, sab_names.take(pa.array(pair % (len(sabs) + 1))), num_nodes)


def _xrefs(atoms: _Atoms, kept_idx: pa.Array, sab_codes: np.ndarray, name_nodes: np.ndarray) -> pa.Table:
    """Cross-references: (SAB, CODE) -> CUI, one row per (key, node), main-heading atoms marked preferred."""
    codes = pa.chunked_array(atoms.parts["code"], pa.string()).combine_chunks().take(kept_idx)
    prefixes = pa.array([_xref_prefix(sab) for sab in atoms.sabs.values], pa.string())
    atom_prefix = prefixes.take(pa.array(sab_codes))
    keys = pc.if_else(pc.equal(atom_prefix, ""), codes, pc.binary_join_element_wise(atom_prefix, codes, ":"))
    has_code = pc.and_(pc.not_equal(codes, ""), pc.not_equal(codes, "NOCODE"))
    main = _concat(atoms.parts["main"], bool)[kept_idx.to_numpy()]
    # One row per (key, node); preferred when any of its atoms is a main heading.
    with_code = np.flatnonzero(has_code.to_numpy(zero_copy_only=False))
    encoded = pc.dictionary_encode(keys.take(pa.array(with_code)))
    key_ids = encoded.indices.to_numpy().astype(np.int64)
    xref_nodes = name_nodes[with_code].astype(np.int64)
    xref_main = main[with_code]
    # Sorted by (node, key, main heading first): nodes are already in order, so the sort is cheap.
    pair = xref_nodes * (int(key_ids.max(initial=0)) + 1) + key_ids
    order = np.argsort(pair * 2 + ~xref_main, kind="stable")
    sorted_pair = pair[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = sorted_pair[1:] != sorted_pair[:-1]
    rows = order[first]
    return pa.table(
        {
            "key": encoded.dictionary.take(pa.array(key_ids[rows])),
            "node_id": pa.array(xref_nodes[rows].astype(np.int32)),
            "preferred": pa.array(xref_main[rows]),
        }
    )


def _relations(edges: _Edges) -> list[Relation]:
    """The relation vocabulary: one entry per relation name met in MRREL, in code order."""
    relations = []
    for code, name in enumerate(edges.names.values):
        rel_code, rela = edges.rel_of_name[code]
        relations.append(Relation(name, rel=rel_code, rela=rela, phrase=phrase_for(rela, rel_code)))
    return relations


@dataclass
class _Pairs:
    """(CUI, text) rows of MRSTY/MRDEF restricted to kept nodes; unknown CUIs are bad input."""

    budget: ErrorBudget
    rrf: _RRF
    index: _CuiIndex
    text_column: str
    config: KGConfig | None = None
    parts: dict[str, list[Any]] = field(default_factory=dict)

    def reset(self) -> None:
        self.parts = {"node": [], "text": []}

    def __call__(self, start: int, batch: pa.RecordBatch) -> None:
        cui, valid = _cui_ints(batch.column("CUI"), self.rrf, start, self.budget, "CUI")
        pos = self.index.node_of[cui]
        known = (pos != _CuiIndex.UNKNOWN) & valid
        for row in np.nonzero(valid & ~known)[0]:
            self.budget.record(
                "unknown_concept",
                f"CUI C{cui[row]:07d} is not a concept of MRCONSO.RRF",
                self.rrf.path,
                self.rrf.line(start + int(row)),
            )
        keep = valid & (pos >= 0)
        if self.config is not None:
            sab_mask = _member(batch.column("SAB"), self.config.sab_include, self.config.sab_exclude)
            if sab_mask is not None:
                keep &= sab_mask
            if not self.config.keep_suppressed:
                keep &= ~pc.is_in(batch.column("SUPPRESS"), value_set=pa.array(SUPPRESSED)).to_numpy(
                    zero_copy_only=False
                )
        rows = np.nonzero(keep)[0]
        self.parts["node"].append(pos[rows])
        self.parts["text"].append(batch.column(self.text_column).take(pa.array(rows)))


def _semantic_types(
    budget: ErrorBudget,
    directory: Path,
    layout: dict[str, list[str]],
    scratch: Path,
    index: _CuiIndex,
) -> tuple[pa.Array, dict[str, int]]:
    """list<string> of STY names per node (empty lists when the release has no MRSTY.RRF)."""
    path = directory / "MRSTY.RRF"
    if not path.is_file():
        return pa.array([[]] * index.node_cuis.size, pa.list_(pa.string())), {"mrsty_missing": 1}
    rrf = _RRF(path, layout["MRSTY.RRF"])
    file_budget = _FileBudget(budget, threading.Lock())
    pairs = _Pairs(file_budget, rrf, index, "STY")
    _scan(rrf, ["CUI", "STY"], file_budget, scratch, pairs)
    nodes = _concat(pairs.parts["node"], np.int64)
    texts = pa.chunked_array(pairs.parts["text"], pa.string()).combine_chunks()
    return _group_lists(nodes, texts, index.node_cuis.size), {"semantic_type_rows": int(nodes.size)}


def _definitions(
    config: KGConfig,
    budget: ErrorBudget,
    directory: Path,
    layout: dict[str, list[str]],
    scratch: Path,
    index: _CuiIndex,
) -> pa.Table:
    """MRDEF definitions of kept nodes (same SAB and SUPPRESS filters as the atoms)."""
    path = directory / "MRDEF.RRF"
    if not path.is_file():
        return pa.table({"node_id": pa.array([], pa.int32()), "text": pa.array([], pa.string())})
    rrf = _RRF(path, layout["MRDEF.RRF"])
    file_budget = _FileBudget(budget, threading.Lock())
    pairs = _Pairs(file_budget, rrf, index, "DEF", config)
    _scan(rrf, ["CUI", "SAB", "DEF", "SUPPRESS"], file_budget, scratch, pairs)
    nodes = _concat(pairs.parts["node"], np.int64)
    texts = pa.chunked_array(pairs.parts["text"], pa.string()).combine_chunks()
    order = np.argsort(nodes, kind="stable")
    return pa.table({"node_id": pa.array(nodes[order].astype(np.int32)), "text": texts.take(pa.array(order))})
