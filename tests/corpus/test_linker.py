"""The dictionary linker: boundaries, longest match, case, acronyms, ambiguity, stop-list, abbreviations."""

from __future__ import annotations

from pathlib import Path

import pytest

from bali.corpus.abbreviations import find_abbreviations
from bali.corpus.linker import DictionaryLinker, LinkerOptions, normalise_text, read_stoplist
from bali.errors import BadInputError

NAMES = [
    ("lung cancer", 0),
    ("lung", 1),
    ("cancer", 2),
    ("pain", 3),
    ("ALL", 4),
    ("acute lymphoblastic leukemia", 4),
    ("WAS", 5),
    ("cold", 6),
    ("cold", 7),
    ("common cold", 7),
    ("Crohn's disease", 8),
    ("ALS", 9),
    ("autosomal dominant polycystic kidney disease", 10),
    ("Parkinson disease", 11),
    ("PD", 11),
    ("MS", 12),
    ("IL-2", 13),
    ("ab", 14),
    ("123", 15),
]


def make(**options: object) -> DictionaryLinker:
    names, nodes = zip(*NAMES, strict=True)
    stoplist = options.pop("stoplist", ())
    return DictionaryLinker(list(names), list(nodes), LinkerOptions(**options), stoplist, show_progress=False)  # type: ignore[arg-type]


def surfaces(text: str, linker: DictionaryLinker, abbreviations: dict | None = None) -> list[tuple]:
    return [(text[s:e], nodes, origin) for s, e, nodes, origin in linker.link(text, abbreviations)]


def test_longest_non_overlapping_match() -> None:
    text = "Lung cancer and lung pain."
    assert surfaces(text, make()) == [
        ("Lung cancer", (0,), "dictionary"),
        ("lung", (1,), "dictionary"),
        ("pain", (3,), "dictionary"),
    ]


def test_word_boundaries() -> None:
    linker = make()
    assert surfaces("Spain, FALSE, painful, lungs, cancerous.", linker) == []
    assert surfaces("(pain)", linker) == [("pain", (3,), "dictionary")]
    # A longer match that fails the boundary does not hide the shorter one inside it.
    assert surfaces("lung cancers", linker) == [("lung", (1,), "dictionary")]


def test_case_and_unicode_normalisation_keep_original_offsets() -> None:
    linker = make()
    text = "Patients with CROHN’S DISEASE and crohn's disease."
    assert surfaces(text, linker) == [
        ("CROHN’S DISEASE", (8,), "dictionary"),
        ("crohn's disease", (8,), "dictionary"),
    ]
    text = "Ｌｕｎｇ ｃａｎｃｅｒ, then pain."
    assert surfaces(text, linker) == [
        ("Ｌｕｎｇ ｃａｎｃｅｒ", (0,), "dictionary"),
        ("pain", (3,), "dictionary"),
    ]
    norm, starts, ends = normalise_text("Straße x")
    assert norm == "strasse x" and starts is not None and ends is not None
    assert starts[5] == starts[4] == 4 and ends[5] == 5


def test_short_all_capital_names_match_case_sensitively() -> None:
    linker = make()
    assert surfaces("All patients was treated, can ALL be cured?", linker) == [("ALL", (4,), "dictionary")]
    assert surfaces("It WAS seen in MS and ms.", make(min_length=2)) == [
        ("WAS", (5,), "dictionary"),
        ("MS", (12,), "dictionary"),
    ]
    assert surfaces("IL-2 and il-2", linker) == [("IL-2", (13,), "dictionary")]
    # With acronym matching off, case no longer matters.
    assert [s for s, _, _ in surfaces("all", make(acronym_max_length=0))] == ["all"]


def test_minimum_length_and_names_without_letters() -> None:
    linker = make()
    assert surfaces("ab 123", linker) == []
    assert linker.skipped["too_short"] == 3 and linker.skipped["no_letter"] == 1
    assert surfaces("ab", make(min_length=2)) == [("ab", (14,), "dictionary")]


def test_ambiguous_names_link_to_all_or_none() -> None:
    assert surfaces("a cold", make()) == [("cold", (6, 7), "dictionary")]
    none = make(ambiguous="none")
    assert surfaces("a cold and a common cold", none) == [("common cold", (7,), "dictionary")]
    assert none.skipped["ambiguous"] == 1


def test_stoplist(tmp_path: Path) -> None:
    path = tmp_path / "stop.txt"
    path.write_text("# short ambiguous names\nPain\n\ncold  # English word\n", encoding="utf-8")
    stop = read_stoplist(path)
    linker = make(stoplist=stop)
    assert surfaces("pain and a cold but lung", linker) == [("lung", (1,), "dictionary")]
    assert linker.skipped["stoplist"] == 3
    with pytest.raises(BadInputError, match="not found"):
        read_stoplist(tmp_path / "missing.txt")


def test_abbreviations_defined_in_the_document_are_expanded() -> None:
    linker = make()
    text = (
        "Patients with autosomal dominant polycystic kidney disease (ADPKD) were seen. "
        "ADPKD is frequent; xADPKD is not a match."
    )
    defined = linker.resolve_abbreviations(find_abbreviations(text))
    assert defined == {"ADPKD": (10,)}
    assert surfaces(text, linker, defined) == [
        ("autosomal dominant polycystic kidney disease", (10,), "dictionary"),
        ("ADPKD", (10,), "abbreviation"),
        ("ADPKD", (10,), "abbreviation"),
    ]


def test_abbreviation_defined_otherwise_shadows_the_dictionary() -> None:
    linker = make(min_length=2)
    text = "Under peritoneal dialysis (PD), PD patients did well."
    defined = linker.resolve_abbreviations(find_abbreviations(text))
    assert defined == {"PD": ()}
    assert surfaces(text, linker, defined) == []
    # Without the document's definition the dictionary's PD is Parkinson disease.
    assert surfaces("PD patients did well.", linker) == [("PD", (11,), "dictionary")]


def test_document_definition_beats_dictionary_acronym() -> None:
    linker = make()
    text = "In acute lymphoblastic leukemia (ALL), ALL relapses."
    defined = linker.resolve_abbreviations(find_abbreviations(text))
    assert [o for _, _, o in surfaces(text, linker, defined)] == [
        "dictionary",
        "abbreviation",
        "abbreviation",
    ]


def test_eponym_possessives_match_either_spelling() -> None:
    linker = make()
    text = "Parkinson's disease, Parkinson’s disease and Parkinson disease."
    assert [s for s, _, _ in surfaces(text, linker)] == [
        "Parkinson's disease",
        "Parkinson’s disease",
        "Parkinson disease",
    ]
    graves = DictionaryLinker(["Graves disease"], [0], show_progress=False)
    assert [m[:2] for m in graves.link("In Graves' disease.")] == [(3, 18)]


def test_number_variants_are_optional() -> None:
    text = "Seizures, toxicities and one arrhythmia."
    assert [s for s, _, _ in surfaces(text, make())] == []
    names = ["seizure", "toxicity", "arrhythmias"]
    linker = DictionaryLinker(names, [0, 1, 2], LinkerOptions(number_variants=True), show_progress=False)
    assert [(text[s:e], n) for s, e, n, _ in linker.link(text)] == [
        ("Seizures", (0,)),
        ("toxicities", (1,)),
        ("arrhythmia", (2,)),
    ]
