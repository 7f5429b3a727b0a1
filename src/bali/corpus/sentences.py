"""Sentence splitting for biomedical abstracts: a rule-based splitter with an abbreviation list.

Why not pysbd or spaCy: pysbd splits BC5CDR abstracts at ~800 sentences/s on this machine (measured
in ``benchmarks/corpus.md``), i.e. hours for the paper's 1.5M sentences and days for BERN2-scale
PubMed; spaCy's parser needs a model download. The rules below run at >100,000 sentences/s and cover
what abstracts contain: "e.g."/"i.e."/"et al."/"vs."/"Fig. 2" never end a sentence, decimals and
"E. coli" never contain a candidate boundary, and a boundary needs a following token that can start
a sentence (not a lower-case word).

A sentence is returned as a character span ``(start, end)`` of the document, whitespace trimmed, so
gold annotations can be moved to sentence offsets exactly.
"""

from __future__ import annotations

import re

# Lower-cased tokens (without their final period) after which a period does not end a sentence.
ABBREVIATIONS: frozenset[str] = frozenset(
    [
        "e.g",
        "eg",
        "i.e",
        "ie",
        "viz",
        "cf",
        "vs",
        "v",
        "etc",
        "al",
        "approx",
        "ca",
        "resp",
        "incl",
        "esp",
        "fig",
        "figs",
        "tab",
        "eq",
        "eqs",
        "ref",
        "refs",
        "no",
        "nos",
        "vol",
        "vols",
        "p",
        "pp",
        "suppl",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "corp",
        "dept",
        "univ",
        "spp",
        "sp",
        "ssp",
        "subsp",
        "var",
        "cv",
        "jan",
        "feb",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)

# A run of sentence-final punctuation, optional closing quotes/brackets, then whitespace.
_CANDIDATE = re.compile(r"[.!?]+['\"”’)\]]*(\s+)")
# Hard boundaries: blank lines (paragraphs, title/abstract on separate lines).
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_ENUMERATOR = re.compile(r"^(?:\d{1,3}|[ivxIVX]{1,4}|[a-zA-Z])$")
_DOTTED = re.compile(r"^(?:[a-z]\.)+[a-z]$")
_OPENERS = "([{\"'“‘"
_NOT_A_START = ",;:)]}%"


def _is_boundary(text: str, punct_start: int, punct: str, next_start: int) -> bool:
    """Decide whether the punctuation at ``punct_start`` (followed by whitespace) ends a sentence."""
    if next_start >= len(text):
        return False
    nxt = text[next_start]
    if nxt.isascii() and nxt.islower():
        return False
    if nxt in _NOT_A_START:
        return False
    if punct[0] != ".":
        return True  # "?" and "!"
    if len(punct) > 1 and punct.startswith(".."):
        return True  # ellipsis followed by a capital
    # The token before the period.
    start = text.rfind(" ", 0, punct_start) + 1
    newline = text.rfind("\n", 0, punct_start) + 1
    token = text[max(start, newline) : punct_start].lstrip(_OPENERS)
    if not token:
        return True
    lowered = token.lower()
    if lowered in ABBREVIATIONS or _DOTTED.match(lowered):
        return False
    if len(token) == 1 and token.isalpha() and token.isupper():
        # "E. coli", "J. Smith": an initial; "vitamin A. The", "hepatitis B. We": a sentence end.
        prev_end = max(start, newline) - 1
        prev_start = text.rfind(" ", 0, max(prev_end, 0)) + 1
        previous = text[prev_start:prev_end].strip()
        return (
            not nxt.isdigit()
            and bool(previous)
            and previous.isalpha()
            and previous.islower()
            and len(previous) > 3
        )
    return True


def _split_paragraph(text: str, offset: int, end: int, out: list[tuple[int, int]]) -> None:
    start = offset
    for match in _CANDIDATE.finditer(text, offset, end):
        punct = text[match.start() : match.start(1)]
        punct_only = punct.rstrip("'\"”’)]")
        piece = text[start : match.start()].strip()
        if len(piece) <= 4 and (_ENUMERATOR.match(piece) or not any(c.isalnum() for c in piece)):
            continue  # an enumerator ("1.", "III.") or stray punctuation starts the next sentence
        opened = text.rfind("(", max(start, match.start() - 60), match.start())
        if opened >= 0 and text.find(")", opened, match.start() + 1) < 0:
            continue  # inside an open parenthesis: "(N. 8, ...)", "(approx. 5 mg)"
        if _is_boundary(text, match.start(), punct_only, match.end()):
            out.append((start, match.start(1)))
            start = match.end()
    out.append((start, end))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``, in order, whitespace trimmed, none empty."""
    raw: list[tuple[int, int]] = []
    position = 0
    for para in _PARAGRAPH.finditer(text):
        _split_paragraph(text, position, para.start(), raw)
        position = para.end()
    _split_paragraph(text, position, len(text), raw)
    spans: list[tuple[int, int]] = []
    for start, end in raw:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans
