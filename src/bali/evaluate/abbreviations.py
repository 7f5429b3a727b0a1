"""Schwartz-Hearst abbreviation detection ("long form (SF)"), for expanding mentions from their document.

BioSyn's reported BC5CDR numbers depend on an unreleased abbreviation step (BioSyn#4); running it
as a separate, named protocol makes the gap visible instead of hiding it in the default numbers.
Reference: Schwartz & Hearst, "A simple algorithm for identifying abbreviation definitions in
biomedical text", PSB 2003.
"""

from __future__ import annotations

import re

_PAREN = re.compile(r"\(([^()]{1,20})\)")


def _valid_short_form(short: str) -> bool:
    """2-10 characters, at least one letter, starting with a letter or digit, at most two words."""
    return (
        2 <= len(short) <= 10
        and any(c.isalpha() for c in short)
        and short[0].isalnum()
        and len(short.split()) <= 2
    )


def _best_long_form(short: str, candidate: str) -> str | None:
    """Match the short form's characters right to left inside the candidate (the S-H core loop)."""
    s_index = len(short) - 1
    l_index = len(candidate) - 1
    while s_index >= 0:
        char = short[s_index].lower()
        if not char.isalnum():
            s_index -= 1
            continue
        while l_index >= 0 and (
            candidate[l_index].lower() != char
            or (s_index == 0 and l_index > 0 and candidate[l_index - 1].isalnum())
        ):
            l_index -= 1
        if l_index < 0:
            return None
        l_index -= 1
        s_index -= 1
    start = candidate.rfind(" ", 0, l_index + 1) + 1
    long_form = candidate[start:].strip()
    return long_form or None


def find_abbreviations(text: str) -> dict[str, str]:
    """Map each short form defined as ``long form (SF)`` in ``text`` to its long form (first wins)."""
    found: dict[str, str] = {}
    for match in _PAREN.finditer(text):
        short = match.group(1).strip()
        if not _valid_short_form(short) or short in found:
            continue
        before = text[: match.start()].rstrip()
        sentence_start = max(before.rfind(". "), before.rfind("; "), -1) + 1
        words = before[sentence_start:].split()
        max_words = min(len(short) + 5, len(short) * 2)
        candidate = " ".join(words[-max_words:])
        if not candidate:
            continue
        long_form = _best_long_form(short, candidate)
        if long_form is None or len(long_form) <= len(short) or short.lower() in long_form.lower().split():
            continue
        found[short] = long_form
    return found
