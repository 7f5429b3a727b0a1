"""Sentence splitting on the cases biomedical abstracts are full of."""

from __future__ import annotations

import pytest

from bali.corpus.sentences import split_sentences


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Drugs, e.g. aspirin, help. Results were good.",
            ["Drugs, e.g. aspirin, help.", "Results were good."],
        ),
        ("The dose, i.e. 5 mg, was safe. It worked.", ["The dose, i.e. 5 mg, was safe.", "It worked."]),
        ("Smith et al. reported it. We agree.", ["Smith et al. reported it.", "We agree."]),
        ("Smith et al. (2001) reported it. We agree.", ["Smith et al. (2001) reported it.", "We agree."]),
        ("Drug A vs. Placebo was tested. It worked.", ["Drug A vs. Placebo was tested.", "It worked."]),
        (
            "As in Fig. 2, it rose 2.5 times. This is new.",
            ["As in Fig. 2, it rose 2.5 times.", "This is new."],
        ),
        ("E. coli and S. aureus grew. Both resisted.", ["E. coli and S. aureus grew.", "Both resisted."]),
        ("Lack of vitamin A. The eyes suffer.", ["Lack of vitamin A.", "The eyes suffer."]),
        ("It rose (p < 0.05). Then it fell.", ["It rose (p < 0.05).", "Then it fell."]),
        ("Seen in the U.S. and Canada. Fine.", ["Seen in the U.S. and Canada.", "Fine."]),
        ("Was it? Yes! Indeed.", ["Was it?", "Yes!", "Indeed."]),
        ("We saw 30 cases. 12 died.", ["We saw 30 cases.", "12 died."]),
        (
            "Title without period\n\nAbstract here. Second.",
            ["Title without period", "Abstract here.", "Second."],
        ),
        ("  Padded sentence.   ", ["Padded sentence."]),
        (
            "Aims. 1. Find it. 2. Fix it. III. Test it.",
            ["Aims.", "1. Find it.", "2. Fix it.", "III. Test it."],
        ),
        ("Levels rose (N. 8, PRL: 183%) in all. Fine.", ["Levels rose (N. 8, PRL: 183%) in all.", "Fine."]),
        ("Low in vitamin E. 5 rats died.", ["Low in vitamin E. 5 rats died."]),
        ("", []),
    ],
)
def test_biomedical_edge_cases(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_spans_index_the_original_text() -> None:
    text = "First one.  Second one.\nThird one."
    spans = split_sentences(text)
    assert spans == [(0, 10), (12, 23), (24, 34)]
