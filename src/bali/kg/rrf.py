"""Reading UMLS RRF files at full-UMLS scale: layouts, columnar blocks, bad lines, CUIs as integers.

Shared by the readers of MRCONSO (:mod:`bali.kg.mrconso`), MRREL (:mod:`bali.kg.mrrel`) and
MRSTY/MRDEF (:mod:`bali.kg.mrsty`). Nothing here makes a Python object per row: files are read block
by block with pyarrow's streaming CSV reader (delimiter ``|``, quoting disabled: UMLS strings
contain quotes; the empty column after the trailing ``|`` is declared and dropped), only the needed
columns are converted, and CUIs are parsed to integers (``C0000005`` -> 5, straight from the
column's byte buffer) and mapped to dense node ids through one int32 table over the 10^7 CUI numbers.

Bad input: the fast columnar pass stops at the first malformed line without knowing its number.
Only then a slow line-by-line pass finds every bad line (wrong column count, invalid UTF-8), sends
each through the :class:`ErrorBudget` with its line number, and writes the good lines to a
temporary copy that the fast pass reads again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tqdm import tqdm

from bali.errors import BadInputError, ErrorBudget

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
BLOCK_SIZE = 4 << 20
CUI_SPACE = 10_000_000


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
class RRF:
    """One RRF file: path, declared columns, and the map from rows of the copy read to original lines."""

    path: Path
    columns: list[str]
    line_of_row: np.ndarray | None = None
    read_path: Path | None = None

    def line(self, row: int) -> int:
        return int(self.line_of_row[row]) if self.line_of_row is not None else row + 1


def _batches(rrf: RRF, needed: list[str], desc: str) -> Iterator[tuple[int, pa.RecordBatch]]:
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


def _clean_copy(rrf: RRF, budget: ErrorBudget, scratch: Path) -> None:
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


class Accumulator(Protocol):
    """Collects arrays from the batches of one file; ``reset`` empties it for a second pass."""

    def reset(self) -> None: ...

    def __call__(self, start: int, batch: pa.RecordBatch) -> None: ...


class FileBudget(ErrorBudget):
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


def scan(rrf: RRF, needed: list[str], budget: FileBudget, scratch: Path, acc: Accumulator) -> None:
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


def cui_ints(
    cuis: pa.Array, rrf: RRF, start: int, budget: ErrorBudget, column: str
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


def member(values: pa.Array, include: list[str], exclude: list[str]) -> np.ndarray | None:
    """Mask of rows passing an include/exclude filter; None when there is no filter."""
    mask = None
    if include:
        mask = pc.is_in(values, value_set=pa.array(include)).to_numpy(zero_copy_only=False)
    if exclude:
        out = ~pc.is_in(values, value_set=pa.array(exclude)).to_numpy(zero_copy_only=False)
        mask = out if mask is None else mask & out
    return mask


def not_suppressed(batch: pa.RecordBatch) -> np.ndarray:
    """Mask of the rows whose SUPPRESS flag is none of ``SUPPRESSED`` (obsolete, suppressible)."""
    return ~pc.is_in(batch.column("SUPPRESS"), value_set=pa.array(SUPPRESSED)).to_numpy(zero_copy_only=False)


class Codes:
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


def concat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def group_lists(nodes: np.ndarray, values: pa.Array, num_nodes: int) -> pa.Array:
    """A list<string> per node from (node, value) pairs, values sorted by node (stable)."""
    order = np.argsort(nodes, kind="stable")
    offsets = np.zeros(num_nodes + 1, dtype=np.int32)
    np.cumsum(np.bincount(nodes, minlength=num_nodes), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(order)))


class CuiIndex:
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
