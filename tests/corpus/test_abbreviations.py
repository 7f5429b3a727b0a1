"""Schwartz-Hearst abbreviation definitions."""

from __future__ import annotations

from bali.corpus.abbreviations import find_abbreviations


def pairs(text: str) -> list[tuple[str, str]]:
    return [(a.short, a.long) for a in find_abbreviations(text)]


def test_long_form_before_parentheses() -> None:
    text = "Patients with autosomal dominant polycystic kidney disease (ADPKD) were studied."
    (found,) = find_abbreviations(text)
    assert (found.short, found.long) == ("ADPKD", "autosomal dominant polycystic kidney disease")
    assert text[found.long_start : found.long_end] == found.long
    assert text[found.short_start : found.short_start + 5] == "ADPKD"


def test_several_definitions_and_extra_text_in_parentheses() -> None:
    text = (
        "A dose of indomethacin (IDM) lowered plasma renin activity (PRA). "
        "In acute lymphoblastic leukemia (ALL; n = 5) and non-small cell lung cancer (NSCLC)."
    )
    assert pairs(text) == [
        ("IDM", "indomethacin"),
        ("PRA", "plasma renin activity"),
        ("ALL", "acute lymphoblastic leukemia"),
        ("NSCLC", "non-small cell lung cancer"),
    ]


def test_not_abbreviations() -> None:
    assert pairs("The drug (see below) at 5 mg (n) and 2001 (2001) and fever (ALL).") == []


def test_first_definition_wins() -> None:
    text = "Parkinson disease (PD) differs from peritoneal dialysis (PD)."
    assert pairs(text) == [("PD", "Parkinson disease")]
