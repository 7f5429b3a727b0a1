"""Abbreviations defined in a document, found with the Schwartz-Hearst algorithm.

Why: on BC5CDR about half the disease mentions a dictionary tagger misses are short forms the
abstract itself defines ("autosomal dominant polycystic kidney disease (ADPKD)"); a dictionary cannot
know them, the document does. Schwartz & Hearst (PSB 2003): a short form in parentheses after its
long form; walking both right to left, every character of the short form must appear in the long form
in order, its first character at the start of a word; the long form has at most
``min(|SF| + 5, 2 |SF|)`` words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "long form (SF)" or "long form (SF; ...)" / "(SF, ...)".
_PAREN = re.compile(r"\(([^()]{1,40})\)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Abbreviation:
    """A short form and the long form the document defines for it (character offsets in the document)."""

    short: str
    long: str
    short_start: int
    long_start: int
    long_end: int


def _valid_short_form(short: str) -> bool:
    if not 2 <= len(short) <= 10 or len(short.split()) > 2:
        return False
    if not short[0].isalnum() or not any(c.isalpha() for c in short):
        return False
    # Plain lower-case words in parentheses ("(see below)", "(n)") are not abbreviations.
    return any(c.isupper() or c.isdigit() for c in short)


def _best_long_form(short: str, long: str) -> int | None:
    """Start index in ``long`` of the shortest suffix that the short form abbreviates, or None."""
    s = len(short) - 1
    l_index = len(long) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while l_index >= 0 and (
            long[l_index].lower() != c or (s == 0 and l_index > 0 and long[l_index - 1].isalnum())
        ):
            l_index -= 1
        if l_index < 0:
            return None
        l_index -= 1
        s -= 1
    start = long.rfind(" ", 0, l_index + 1) + 1
    return start


def find_abbreviations(text: str) -> list[Abbreviation]:
    """Every ``long form (SHORT)`` definition in ``text``; the first definition of a short form wins."""
    found: list[Abbreviation] = []
    seen: set[str] = set()
    for match in _PAREN.finditer(text):
        inner = match.group(1)
        short = re.split(r"[;,]\s", inner, maxsplit=1)[0].strip()
        if not _valid_short_form(short) or short in seen:
            continue
        # Candidate long form: the words before "(" within this sentence-ish window.
        before_end = match.start()
        while before_end > 0 and text[before_end - 1].isspace():
            before_end -= 1
        window_start = max(
            text.rfind(". ", 0, before_end) + 2 if text.rfind(". ", 0, before_end) >= 0 else 0,
            text.rfind(")", 0, before_end) + 1,
            text.rfind("; ", 0, before_end) + 2 if text.rfind("; ", 0, before_end) >= 0 else 0,
        )
        words = list(_WORD.finditer(text, window_start, before_end))
        max_words = min(len(short) + 5, 2 * len(short))
        words = words[-max_words:]
        if not words:
            continue
        long_start = words[0].start()
        candidate = text[long_start:before_end]
        offset = _best_long_form(short, candidate)
        if offset is None:
            continue
        long_form = candidate[offset:]
        if len(long_form) <= len(short) or short.lower() in long_form.lower().split():
            continue
        seen.add(short)
        short_start = match.start(1) + inner.index(short)
        found.append(Abbreviation(short, long_form, short_start, long_start + offset, before_end))
    return found
