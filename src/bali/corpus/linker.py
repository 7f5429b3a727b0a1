"""Dictionary linker: Aho-Corasick over every KG name, for text that has no gold annotations.

Matching happens on a normalised copy of the text (NFKC + casefold, punctuation and whitespace as spaces) with
an offset map back to the original characters, so "Crohn’s Disease" and "crohn's disease" match the
same name and the mention span still points into the original sentence. Pure-ASCII text (nearly all
of PubMed) skips the map: ``str.lower`` keeps every offset.

Rules, each one there because a plain substring tagger gets it wrong:

* word boundaries: "ALS" must not fire inside "FALSE", "pain" not inside "Spain";
* longest non-overlapping match: "lung cancer" wins over "lung" and "cancer";
* minimum length (default 3) and an optional stop-list of short ambiguous names;
* short all-capitals names (acronyms, <= ``acronym_max_length`` characters) match case-sensitively,
  so the English words "WAS", "ALL", "CAN" in running text are not read as Wiskott-Aldrich syndrome,
  acute lymphoblastic leukaemia or a cancer;
* a name shared by several concepts links to all of them (BALI's behaviour) or, with
  ``ambiguous="none"``, is left out of the dictionary;
* abbreviations a document defines (see :mod:`bali.corpus.abbreviations`) link like their long form
  (origin ``"abbreviation"``); a short form whose long form is not in the dictionary is not linked
  through the dictionary either ("PD (peritoneal dialysis)" is not Parkinson disease).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ahocorasick
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from bali.corpus.abbreviations import Abbreviation
from bali.errors import BadInputError

DICTIONARY = "dictionary"
ABBREVIATION = "abbreviation"

# A linked mention: (start, end, node ids, origin), offsets into the text given to `link`.
LinkedMention = tuple[int, int, tuple[int, ...], str]

# Every ASCII character that is not a letter or digit becomes a space (length-preserving).
_SEPARATOR_RUNS = re.compile(r"(?:[^\w]|_)+")
_ASCII_BOUNDARIES = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})


@dataclass(frozen=True)
class LinkerOptions:
    """How names become dictionary keys; recorded in the corpus manifest."""

    min_length: int = 3
    ambiguous: Literal["all", "none"] = "all"
    acronym_max_length: int = 5
    expand_abbreviations: bool = True
    number_variants: bool = False


def normalise_text(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """NFKC + casefold ``text``; every character that is not a letter or digit becomes a space.

    Punctuation as spaces makes "Crohn's disease", "Crohn’s disease" and "crohn s disease" one key,
    "IL-2" and "IL 2" another, and lets the automaton enforce word boundaries itself (keys are
    stored between two spaces), so matches inside words are never even produced.

    Returns ``(normalised, starts, ends)``: for normalised character i, ``starts[i]``/``ends[i]`` are
    the original offsets of the character cluster (a base character and its combining marks) it came
    from. ASCII text keeps every offset, so the maps are ``None``.
    """
    if text.isascii():
        return text.lower().translate(_ASCII_BOUNDARIES), None, None
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    n = len(text)
    i = 0
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        norm = unicodedata.normalize("NFKC", text[i:j]).casefold()
        norm = "".join(c if c.isalnum() else " " for c in norm)
        pieces.append(norm)
        starts.extend([i] * len(norm))
        ends.extend([j] * len(norm))
        i = j
    return "".join(pieces), starts, ends


def normalise_name(name: str) -> str:
    """A dictionary key: :func:`normalise_text` with space runs collapsed and ends stripped."""
    return " ".join(normalise_text(name)[0].split())


# Heads after which an eponym is written with or without a possessive: "Parkinson disease",
# "Parkinson's disease", "Graves' disease".
_EPONYM_HEADS = frozenset(
    [
        "disease",
        "diseases",
        "syndrome",
        "syndromes",
        "disorder",
        "palsy",
        "sign",
        "phenomenon",
        "anomaly",
        "anemia",
        "anaemia",
        "tumor",
        "tumour",
        "sarcoma",
        "lymphoma",
        "ataxia",
        "dystrophy",
        "encephalopathy",
        "neuralgia",
        "paralysis",
        "chorea",
        "ulcer",
        "contracture",
        "cyst",
    ]
)


def possessive_variants(key: str) -> list[str]:
    """``key`` plus its eponym-possessive spellings, as :func:`normalise_text` writes them.

    With punctuation as spaces "Parkinson's disease" reads "parkinson s disease" and "Graves'
    disease" reads "graves  disease"; a dictionary that lists only one spelling (MEDIC has
    "Parkinson Disease") would miss the others, which are the usual spelling in abstracts.
    """
    words = key.split(" ")
    variants = [key]
    for i in range(len(words) - 1):
        head, word = words[i + 1], words[i]
        if head not in _EPONYM_HEADS or not word.isalpha():
            continue
        if word == "s" and i > 0:  # "parkinson s disease" -> "parkinson disease"
            variants.append(" ".join(words[:i] + words[i + 1 :]))
        elif len(word) > 2 and word.endswith("s"):  # "graves disease" -> "graves  disease"
            variants.append(" ".join([*words[: i + 1], "", *words[i + 1 :]]))
        elif len(word) > 2:
            variants.append(" ".join([*words[: i + 1], "s", *words[i + 1 :]]))
    return variants


def number_variant(key: str) -> str | None:
    """The key with its last word in the other grammatical number, or None when unsure.

    "seizure" <-> "seizures", "arrhythmia" <-> "arrhythmias", "toxicity" <-> "toxicities",
    "metastasis" -> "metastases": dictionaries list one form, abstracts use both. Off by default:
    it doubles the automaton and adds a few false "plurals" ("diabetes" -> "diabete").
    """
    head, _, word = key.rpartition(" ")
    if len(word) < 4 or not word.isalpha():
        return None
    if word.endswith("ies"):
        other = word[:-3] + "y"
    elif word.endswith("is"):
        other = word[:-2] + "es"
    elif word.endswith(("ss", "us", "x", "ch", "sh")):
        other = word + "es"
    elif word.endswith("s"):
        other = word[:-1]
    elif word.endswith("y") and word[-2] not in "aeiou":
        other = word[:-1] + "ies"
    else:
        other = word + "s"
    return f"{head} {other}" if head else other


def _case_key(surface: str) -> str:
    """How an acronym is compared case-sensitively: NFKC, punctuation as single spaces."""
    surface = unicodedata.normalize("NFKC", surface)
    return " ".join("".join(c if c.isalnum() else " " for c in surface).split())


def is_acronym(name: str, max_length: int) -> bool:
    """Short and written in capitals (digits and punctuation allowed): "ALL", "WAS", "IL-2", "HIV"."""
    return len(name) <= max_length and any(c.isalpha() for c in name) and not any(c.islower() for c in name)


def read_stoplist(path: str | Path) -> frozenset[str]:
    """One name per line (``#`` starts a comment); compared after normalisation."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise BadInputError("stop-list file not found", path) from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(f"stop-list is not valid UTF-8: {exc.reason}", path) from exc
    names = (line.split("#", 1)[0].strip() for line in lines)
    return frozenset(normalise_name(n) for n in names if n)


def normalise_names(names: Sequence[str]) -> tuple[list[str], list[bool], list[bool]]:
    """Keys of many names at once: ``(keys, has a letter, may have a possessive variant)``.

    ASCII names (nearly all of UMLS) are normalised column-wise by Arrow, which is what makes a
    1M-name dictionary build in seconds; the rest go through :func:`normalise_name`.
    """
    column = pa.array(names, pa.string())
    spaced = pc.replace_substring_regex(pc.utf8_lower(column), r"[^a-z0-9]+", " ")
    keys: list[str] = pc.utf8_trim(spaced, " ").to_pylist()
    has_letter: list[bool] = pc.match_substring_regex(spaced, "[a-z]").to_pylist()
    heads = "|".join(sorted(_EPONYM_HEADS))
    possessive: list[bool] = pc.match_substring_regex(spaced, f" ({heads})( |$)").to_pylist()
    for i in np.nonzero(~pc.string_is_ascii(column).to_numpy(zero_copy_only=False))[0].tolist():
        keys[i] = normalise_name(names[i])
        has_letter[i] = any(c.isalpha() for c in keys[i])
        possessive[i] = True
    return keys, has_letter, possessive


# Dictionary keys -> node ids, and keys -> case-sensitive acronym spelling -> node ids.
_Insensitive = dict[str, set[int]]
_Sensitive = dict[str, dict[str, set[int]]]


def _index_names(
    names: Sequence[str],
    node_ids: Sequence[int] | np.ndarray,
    opts: LinkerOptions,
    stoplist: Iterable[str],
    skipped: dict[str, int],
    show_progress: bool | None,
) -> tuple[_Insensitive, _Sensitive]:
    """The nodes of every dictionary key: case-insensitive keys (with their spelling variants), and
    acronyms by their case-sensitive spelling; names left out are counted in ``skipped``."""
    stop = {normalise_name(s) for s in stoplist}
    insensitive: _Insensitive = {}
    sensitive: _Sensitive = {}
    nodes = np.asarray(node_ids).tolist()
    keys, has_letter, possessive = normalise_names(names)
    for name, node, key, letter, variants in tqdm(
        zip(names, nodes, keys, has_letter, possessive, strict=True),
        total=len(names),
        desc="dictionary",
        unit=" names",
        disable=True if show_progress is False else None,
        mininterval=2.0,
    ):
        if len(key) < opts.min_length:
            skipped["too_short"] += 1
            continue
        if not letter:
            skipped["no_letter"] += 1
            continue
        if key in stop:
            skipped["stoplist"] += 1
            continue
        if is_acronym(name.strip(), opts.acronym_max_length):
            sensitive.setdefault(key, {}).setdefault(_case_key(name), set()).add(node)
        else:
            spellings = possessive_variants(key) if variants else [key]
            if opts.number_variants:
                spellings += [v for k in spellings if (v := number_variant(k))]
            for spelling in spellings:
                insensitive.setdefault(spelling, set()).add(node)
    return insensitive, sensitive


def _build_automaton(
    insensitive: _Insensitive,
    sensitive: _Sensitive,
    ambiguous: Literal["all", "none"],
    skipped: dict[str, int],
) -> ahocorasick.Automaton:
    """An automaton entry per key: ``(length, nodes, acronym spelling -> nodes or None)``; with
    ``ambiguous="none"`` what several concepts share is left out and counted in ``skipped``."""
    automaton = ahocorasick.Automaton()
    for key in set(insensitive) | set(sensitive):
        plain = tuple(sorted(insensitive.get(key, ())))
        exact = {s: tuple(sorted(v)) for s, v in sensitive.get(key, {}).items()}
        if ambiguous == "none":
            if len(plain) > 1:
                skipped["ambiguous"] += 1
                plain = ()
            for surface in [s for s, v in exact.items() if len(v) > 1]:
                skipped["ambiguous"] += 1
                del exact[surface]
            if not plain and not exact:
                continue
        # Stored between spaces: a match starts and ends at a word boundary by construction.
        automaton.add_word(f" {key} ", (len(key) + 1, plain, exact or None))
    return automaton


class DictionaryLinker:
    """Longest-match dictionary linker over KG names; build once per run, then call :meth:`link`."""

    def __init__(
        self,
        names: Sequence[str],
        node_ids: Sequence[int] | np.ndarray,
        options: LinkerOptions | None = None,
        stoplist: Iterable[str] = (),
        show_progress: bool | None = None,
    ) -> None:
        self.options = options or LinkerOptions()
        skipped = {"too_short": 0, "no_letter": 0, "stoplist": 0, "ambiguous": 0}
        insensitive, sensitive = _index_names(names, node_ids, self.options, stoplist, skipped, show_progress)
        automaton = _build_automaton(insensitive, sensitive, self.options.ambiguous, skipped)
        self.num_keys = len(automaton)
        self.skipped = skipped
        if self.num_keys:
            automaton.make_automaton()
        self._automaton = automaton

    @classmethod
    def from_kg(
        cls,
        kg: object,
        options: LinkerOptions | None = None,
        stoplist: Iterable[str] = (),
        show_progress: bool | None = None,
    ) -> DictionaryLinker:
        """Dictionary over every name of every node of a :class:`~bali.kg.graph.KnowledgeGraph`."""
        names, node_ids = kg.all_names()  # type: ignore[attr-defined]
        return cls(names, node_ids, options, stoplist, show_progress)

    def stats(self) -> dict[str, object]:
        return {"keys": self.num_keys, "names_skipped": dict(self.skipped)}

    def _candidates(self, text: str) -> list[LinkedMention]:
        """All dictionary matches at word boundaries, possibly overlapping."""
        if not self.num_keys:
            return []
        norm, starts, ends = normalise_text(text)
        found: list[LinkedMention] = []
        # In " " + norm + " ", a key " k " ending at index `last` spans norm[last - len(k) - 1 : last - 1].
        for last, (length, plain, exact) in self._automaton.iter(f" {norm} "):
            end = last - 1
            start = last - length
            if starts is not None and ends is not None:
                o_start, o_end = starts[start], ends[end - 1]
                if (start > 0 and starts[start - 1] == o_start) or (end < len(norm) and starts[end] < o_end):
                    continue  # starts or ends inside an expanded character ("½" -> "1⁄2")
            else:
                o_start, o_end = start, end
            nodes = plain
            if exact is not None:
                extra = exact.get(_case_key(text[o_start:o_end]))
                if extra:
                    nodes = tuple(sorted(set(plain) | set(extra))) if plain else extra
            if nodes:
                found.append((o_start, o_end, nodes, DICTIONARY))
        return found

    def occurs_in(self, text: str) -> bool:
        """Whether any dictionary name occurs in ``text``: word-bounded, normalised as in :meth:`link`.

        Runs of punctuation and spaces count as one space here ("senile  dementia", "reactive -
        airway"), so a filter built on this is at least as broad as linking; case is kept for the
        case-sensitive acronyms.
        """
        return bool(self._candidates(_SEPARATOR_RUNS.sub(" ", text)))

    def link(
        self, text: str, abbreviations: Mapping[str, tuple[int, ...]] | None = None
    ) -> list[LinkedMention]:
        """Longest non-overlapping mentions in ``text``, sorted by start.

        ``abbreviations`` maps a short form defined in the document to the node ids of its long form
        (empty: defined, but not a dictionary concept); see :meth:`resolve_abbreviations`.
        """
        found = self._candidates(text)
        if abbreviations:
            found = self._apply_abbreviations(text, found, abbreviations)
        if len(found) <= 1:
            return found
        # Longest first; at equal length a document-defined abbreviation beats the dictionary.
        found.sort(key=lambda m: (m[0] - m[1], m[3] != ABBREVIATION, m[0]))
        taken: list[LinkedMention] = []
        for mention in found:
            start, end = mention[0], mention[1]
            if all(end <= t[0] or start >= t[1] for t in taken):
                taken.append(mention)
        taken.sort(key=lambda m: m[0])
        return taken

    @staticmethod
    def _apply_abbreviations(
        text: str, found: list[LinkedMention], abbreviations: Mapping[str, tuple[int, ...]]
    ) -> list[LinkedMention]:
        shadowed: set[tuple[int, int]] = set()
        extra: list[LinkedMention] = []
        n = len(text)
        for short, nodes in abbreviations.items():
            position = text.find(short)
            while position >= 0:
                end = position + len(short)
                if not (position > 0 and text[position - 1].isalnum()) and not (
                    end < n and text[end].isalnum()
                ):
                    shadowed.add((position, end))
                    if nodes:
                        extra.append((position, end, nodes, ABBREVIATION))
                position = text.find(short, position + 1)
        if shadowed:
            found = [m for m in found if (m[0], m[1]) not in shadowed]
        return found + extra

    def resolve_abbreviations(self, abbreviations: Sequence[Abbreviation]) -> dict[str, tuple[int, ...]]:
        """Node ids for each defined short form: those of the dictionary match ending its long form.

        The long form's own match must end where the long form ends ("severe acute renal failure
        (ARF)" -> the concept of "acute renal failure"); with none, the short form maps to ``()``.
        """
        resolved: dict[str, tuple[int, ...]] = {}
        for abbreviation in abbreviations:
            long_form = abbreviation.long
            nodes: tuple[int, ...] = ()
            for start, end, ids, _ in self.link(long_form):
                if end == len(long_form) and end - start >= len(abbreviation.short):
                    nodes = ids
            resolved[abbreviation.short] = nodes
        return resolved
