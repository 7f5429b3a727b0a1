"""Strict JSON-lines reading: one object per line, errors name the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bali.errors import BadInputError


def read_json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for every non-blank line; anything else is bad input."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInputError(f"not a JSON line: {exc.msg}", path, line_no) from exc
            if not isinstance(record, dict):
                raise BadInputError("expected a JSON object per line", path, line_no)
            yield line_no, record
