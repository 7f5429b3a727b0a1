"""``ID<TAB>text`` / ``ID||text`` lines: the CODER/SapBERT layout of mention files and candidate lists.

One parser for both, so a mention file and a dictionary in this layout accept exactly the same
quoting: a field may be CSV-quoted, a doubled quote inside it standing for one quote character.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from bali.errors import BadInputError, decode_line


def read_id_lines(path: Path, what: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, id field, text)`` of every non-blank line; ``what`` names the text in errors."""
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, line_no)
            if line.strip():
                yield (line_no, *split_id_line(line, path, line_no, what))


def split_id_line(line: str, path: Path, line_no: int, what: str) -> tuple[str, str]:
    """``ID<TAB>text`` or ``ID||text`` with CSV quoting (doubled quotes inside) into (id, text)."""
    try:
        if "\t" in line:
            fields = next(csv.reader([line], delimiter="\t", quotechar='"', strict=True))
        else:
            fields = [_unquote(f) for f in line.split("||")]
    except csv.Error as exc:  # bad quoting, a carriage return or NUL inside the line, an oversized field
        raise BadInputError(f"bad CSV quoting ({exc})", path, line_no) from exc
    if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
        raise BadInputError(f"expected 'ID<TAB>{what}' or 'ID||{what}' (two non-empty fields)", path, line_no)
    return fields[0].strip(), fields[1].strip()


def _unquote(field: str) -> str:
    """A CSV-quoted field without its quotes and with doubled quotes undone; others as they are."""
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field
