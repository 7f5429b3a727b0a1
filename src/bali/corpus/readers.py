"""Streaming readers for the corpus formats: plain text, JSONL, PubTator and BERN2 JSON lines.

Every reader is a generator over :class:`Document` objects, so a PubMed-sized input never sits in
memory. Files are read as bytes and decoded line by line, so bad UTF-8 is reported with its line
number. Everything wrong with a record (malformed line, span outside the text, mention string that
does not match its span, empty document) goes through the :class:`~bali.errors.ErrorBudget`: an
error naming file and line by default, a count in the manifest under ``--max-errors``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bali.errors import BadInputError, ErrorBudget

FORMATS: tuple[str, ...] = ("text", "jsonl", "pubtator", "bern2")
NO_ID = frozenset({"", "-", "-1", "cui-less", "cuiless", "none", "null"})
# BERN2's variant ids (``tmVar:p|SUB|V|600|E;HGVS:p.V600E;VariantGroup:0;...``) are one id each but
# hold the ``|``, ``,`` and ``+`` that separate ids and composite parts in a gold id field.
TMVAR = "tmvar:"


class InputBudget(ErrorBudget):
    """The error budget plus the lines skipped on purpose (blank lines, PubTator relation lines).

    Those are not errors, but the manifest still lists them, so every input line is accounted for.
    """

    def __init__(self, max_errors: int = 0) -> None:
        super().__init__(max_errors)
        self.skipped: Counter[str] = Counter()


@dataclass
class GoldAnnotation:
    """A gold mention: document character span, surface string, entity type and raw id field.

    ``ids`` keeps the source's spelling (PubTator ``D001|D002`` alternatives, ``D001+D002``
    composites; BERN2 id lists joined with ``|``); :mod:`bali.corpus.link` maps it to KG nodes.
    """

    start: int
    end: int
    mention: str
    type: str
    ids: str
    line: int


@dataclass
class Document:
    """One document with where it came from (for error messages) and its gold annotations."""

    doc_id: str
    text: str
    path: str
    line: int
    annotations: list[GoldAnnotation] = field(default_factory=list)


def _lines(path: Path, budget: InputBudget) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its newline); undecodable lines are recorded."""
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise BadInputError("input file not found", path) from exc
    except IsADirectoryError as exc:
        raise BadInputError("input is a directory, expected a file", path) from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                budget.record("bad_utf8", f"invalid UTF-8 at byte {exc.start} of the line", path, number)
                continue
            yield number, line.rstrip("\r\n")


def _check_span(doc: Document, ann: GoldAnnotation, budget: InputBudget, path: Path) -> bool:
    """Record and reject a reversed span, a span outside the text, or a mention string that differs
    from its span."""
    if ann.end <= ann.start:
        budget.record(
            "bad_span",
            f"span {ann.start}-{ann.end} of '{ann.mention}': its end {ann.end} is not after its start "
            f"{ann.start}",
            path,
            ann.line,
        )
        return False
    if not 0 <= ann.start < ann.end <= len(doc.text):
        budget.record(
            "span_out_of_range",
            f"span {ann.start}-{ann.end} of '{ann.mention}' is outside document {doc.doc_id} "
            f"(length {len(doc.text)})",
            path,
            ann.line,
        )
        return False
    if ann.mention and doc.text[ann.start : ann.end] != ann.mention:
        budget.record(
            "mention_mismatch",
            f"mention '{ann.mention}' does not match the text at {ann.start}-{ann.end} "
            f"('{doc.text[ann.start : ann.end]}') in document {doc.doc_id}",
            path,
            ann.line,
        )
        return False
    return True


def _non_empty(doc: Document, budget: InputBudget) -> bool:
    if doc.text.strip():
        return True
    budget.record("empty_document", f"document {doc.doc_id} has no text", doc.path, doc.line)
    return False


def read_text(path: Path, budget: InputBudget, unit: Literal["line", "file"] = "line") -> Iterator[Document]:
    """Plain text: one document per non-blank line (id ``file:line``), or the whole file as one."""
    if unit == "file":
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise BadInputError("input file not found", path) from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            budget.record("bad_utf8", f"invalid UTF-8 at byte {exc.start}", path, line)
            return
        doc = Document(path.name, text, str(path), 1)
        if _non_empty(doc, budget):
            yield doc
        return
    for number, line in _lines(path, budget):
        if line.strip():
            yield Document(f"{path.name}:{number}", line, str(path), number)
        else:
            budget.skipped["blank_lines"] += 1


def _json_lines(path: Path, budget: InputBudget) -> Iterator[tuple[int, Any]]:
    """Parsed JSON lines; blank lines are counted as skipped, unparsable ones against the budget."""
    for number, line in _lines(path, budget):
        if not line.strip():
            budget.skipped["blank_lines"] += 1
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            budget.record("malformed_line", f"not a JSON object: {exc.msg}", path, number)
            continue
        except RecursionError:
            budget.record("malformed_line", "not a JSON object: nested too deeply", path, number)
            continue
        if "\\u" in line and _has_lone_surrogate(record):
            budget.record(
                "bad_unicode",
                "a \\uXXXX escape is a lone surrogate (\\ud800-\\udfff), which is not a character",
                path,
                number,
            )
            continue
        yield number, record


def _has_lone_surrogate(record: Any) -> bool:
    """True when a string of the record holds half of a surrogate pair, which no file can store.

    Only ``\\uXXXX`` escapes produce one (the line itself was valid UTF-8), so callers test this only
    for lines with an escape.
    """
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_jsonl(path: Path, budget: InputBudget) -> Iterator[Document]:
    """JSON lines ``{"id": ..., "text": ...}``; blank lines are skipped."""
    for number, record in _json_lines(path, budget):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            budget.record("malformed_line", 'expected an object with a string "text" field', path, number)
            continue
        doc_id = record.get("id", f"{path.name}:{number}")
        doc = Document(str(doc_id), record["text"], str(path), number)
        if _non_empty(doc, budget):
            yield doc


def read_pubtator(path: Path, budget: InputBudget) -> Iterator[Document]:
    """PubTator: ``PMID|t|title``, ``PMID|a|abstract``, ``PMID\\tstart\\tend\\tmention\\ttype\\tids``.

    Offsets are over ``title + " " + abstract``. Relation lines (``PMID\\tCID\\t...``) are ignored.
    A document ends at a blank line or when another PMID starts.
    """
    pmid: str | None = None
    title: str | None = None
    abstract: str | None = None
    first_line = 0
    pending: list[GoldAnnotation] = []

    def finish() -> Iterator[Document]:
        """The document read so far, if any and not empty, with its annotations that fit its text."""
        if pmid is None:
            return
        text = title or ""
        if abstract is not None:
            text = f"{text} {abstract}" if text else abstract
        doc = Document(pmid, text, str(path), first_line)
        if not _non_empty(doc, budget):
            return
        doc.annotations = [a for a in pending if _check_span(doc, a, budget, path)]
        yield doc

    for number, line in _lines(path, budget):
        if not line.strip():
            yield from finish()
            pmid, title, abstract, pending = None, None, None, []
            continue
        head = line[:40]
        if "|" in head and ("\t" not in head or head.index("|") < head.index("\t")):
            parts = line.split("|", 2)
            if len(parts) < 3 or parts[1] not in ("t", "a"):
                budget.record("malformed_line", "expected PMID|t|title or PMID|a|abstract", path, number)
                continue
            if parts[0] != pmid:
                yield from finish()
                pmid, title, abstract, pending, first_line = parts[0], None, None, [], number
            if parts[1] == "t":
                title = parts[2]
            else:
                abstract = parts[2]
            continue
        ann = _pubtator_annotation(line, pmid, path, number, budget)
        if ann is not None:
            pending.append(ann)
    yield from finish()


def _pubtator_annotation(
    line: str, pmid: str | None, path: Path, number: int, budget: InputBudget
) -> GoldAnnotation | None:
    """The annotation on a tab-separated PubTator line of document ``pmid``, or None for a relation
    line (counted as skipped) or a bad one (recorded)."""
    fields = line.split("\t")
    if len(fields) >= 3 and fields[1].isalpha() and fields[1].isupper():
        budget.skipped["relation_lines"] += 1  # PMID  CID  id1  id2
        return None
    if len(fields) < 5:
        budget.record(
            "malformed_line",
            "expected PMID<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>ids]",
            path,
            number,
        )
        return None
    if fields[0] != pmid:
        budget.record(
            "malformed_line",
            f"annotation for PMID {fields[0]} outside its document (current: {pmid})",
            path,
            number,
        )
        return None
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        budget.record("malformed_line", "start and end must be integers", path, number)
        return None
    ids = fields[5] if len(fields) > 5 else ""
    return GoldAnnotation(start, end, fields[3], fields[4], ids, number)


def read_bern2(path: Path, budget: InputBudget) -> Iterator[Document]:
    """BERN2 JSON lines: ``pmid``, ``text``, ``annotations`` with ``id`` (list), ``mention``,
    ``obj`` and ``span`` {``begin``, ``end``}."""
    for number, record in _json_lines(path, budget):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "pmid" not in record:
            budget.record("malformed_line", 'expected a record with "pmid" and a string "text"', path, number)
            continue
        doc = Document(str(record["pmid"]), record["text"], str(path), number)
        if not _non_empty(doc, budget):
            continue
        annotations = record.get("annotations") or []
        if not isinstance(annotations, list):
            budget.record("malformed_line", '"annotations" must be a list', path, number)
            continue
        for item in annotations:
            ann = _bern2_annotation(item, doc, budget, path, number)
            if ann is not None and _check_span(doc, ann, budget, path):
                doc.annotations.append(ann)
        yield doc


def _bern2_annotation(
    item: Any, doc: Document, budget: InputBudget, path: Path, number: int
) -> GoldAnnotation | None:
    """One BERN2 annotation, or None after recording what is wrong with it."""
    span = item.get("span") if isinstance(item, dict) else None
    begin, end = (span.get("begin"), span.get("end")) if isinstance(span, dict) else (None, None)
    if not (_is_int(begin) and _is_int(end)):
        budget.record(
            "malformed_line",
            f"annotation without a valid span {{begin, end}} (two integers) in document {doc.doc_id}",
            path,
            number,
        )
        return None
    raw_ids = item.get("id") or []
    raw_ids = [raw_ids] if isinstance(raw_ids, str) else raw_ids
    if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
        budget.record(
            "malformed_line",
            f'"id" must be a string or a list of strings, got {json.dumps(item["id"])[:80]} '
            f"in document {doc.doc_id}",
            path,
            number,
        )
        return None
    ids = "|".join(_bern2_id(i) for i in raw_ids if i.strip().lower() not in NO_ID)
    return GoldAnnotation(
        int(begin), int(end), str(item.get("mention") or ""), str(item.get("obj") or ""), ids, number
    )


def _bern2_id(raw: str) -> str:
    """One BERN2 id as one gold id. A tmVar id keeps its variant, separators written as ``_``
    (``TMVAR:p_SUB_V_600_E``): counted once under its own prefix, not split into fragments whose
    unknown prefixes would be counted as unmapped ids."""
    text = raw.strip()
    if not text.lower().startswith(TMVAR):
        return text
    variant = text[len(TMVAR) :].split(";", 1)[0]
    return "TMVAR:" + re.sub(r"[|,+]", "_", variant)


def _is_int(value: Any) -> bool:
    """A JSON integer (``true`` is a bool in Python, and ``1.5`` is no offset)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_input_file(path: Path) -> None:
    """A clear error for an input that is missing or not a regular file."""
    if not path.is_file():
        raise BadInputError("input file not found" if not path.exists() else "input is not a file", path)


def read_documents(
    paths: list[str | Path], fmt: str, budget: InputBudget, text_unit: Literal["line", "file"] = "line"
) -> Iterator[Document]:
    """Documents of every input file in order."""
    if fmt not in FORMATS:
        raise BadInputError(f"unknown input format '{fmt}' (expected one of {', '.join(FORMATS)})")
    for raw in paths:
        path = Path(raw)
        check_input_file(path)
        if fmt == "text":
            yield from read_text(path, budget, text_unit)
        elif fmt == "jsonl":
            yield from read_jsonl(path, budget)
        elif fmt == "pubtator":
            yield from read_pubtator(path, budget)
        else:
            yield from read_bern2(path, budget)
