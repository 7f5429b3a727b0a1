"""Normalised concept identifiers shared by the KG, the corpus readers and the evaluation.

Gold annotations and dictionaries spell the same concept many ways (``D012345``, ``MESH:D012345``,
``mesh:D012345``, ``OMIM:601234``, ``MIM:601234``, a bare OMIM number, ``NCBITaxon:9606``,
``HP_0001250``, ``UMLS:C0012345``). Everything is reduced to ``PREFIX:CODE`` with a canonical
upper-case prefix, so one dictionary lookup serves every source.

The one exception is the UMLS CUI: its canonical spelling is the bare ``C0012345``, because that is
the source id a UMLS KG stores for its nodes (and the spelling of MRCONSO, MRREL and ``--restrict-to``
files). ``UMLS:C0012345``, ``CUI:C0012345`` and ``umls:c0012345`` all become ``C0012345``. A bare
``C`` + 7 digits is therefore a CUI, never MeSH: MeSH supplementary concept codes are ``C`` + 6 or
9 digits.
"""

from __future__ import annotations

import re

# Canonical prefix for each spelling seen in UMLS SABs, OBO xrefs, BERN2 and PubTator ids.
PREFIX_ALIASES: dict[str, str] = {
    "MESH": "MESH",
    "MSH": "MESH",
    "OMIM": "OMIM",
    "MIM": "OMIM",
    "NCBITAXON": "NCBITAXON",
    "NCBI": "NCBITAXON",
    "TAXON": "NCBITAXON",
    "CVCL": "CVCL",
    "CELLOSAURUS": "CVCL",
    "NCI_CELLOSAURUS": "CVCL",
    "UMLS": "UMLS",
    "UMLS_CUI": "UMLS",
    "CUI": "UMLS",
    "SNOMEDCT": "SNOMEDCT",
    "SNOMEDCT_US": "SNOMEDCT",
    "SCTID": "SNOMEDCT",
    "ICD10CM": "ICD10CM",
    "NCI": "NCIT",
    "NCIT": "NCIT",
    "ORPHA": "ORPHANET",
    "ORPHANET": "ORPHANET",
    "DOID": "DOID",
    "HP": "HP",
    "MONDO": "MONDO",
    "GO": "GO",
    "CHEBI": "CHEBI",
}

_MESH_CODE = re.compile(r"^[CD]\d{6,9}$")
_CUI = re.compile(r"^[Cc]\d{7}$")
_OMIM_CODE = re.compile(r"^\d{6}$")
# ``PREFIX:CODE`` first (prefixes such as SNOMEDCT_US contain "_"), then OBO-style ``HP_0001250``.
_SPLIT_COLON = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):(.+)$")
_SPLIT_UNDERSCORE = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_(.+)$")


def is_cui(code: str) -> bool:
    """Whether ``code`` is a UMLS CUI (``C`` + 7 digits; case-insensitive)."""
    return bool(_CUI.match(code))


def is_recognised(key: str) -> bool:
    """Whether a normalised id names its source: ``PREFIX:CODE``, or a bare CUI (their canonical form)."""
    return ":" in key or is_cui(key)


def _with_prefix(prefix: str, code: str) -> str:
    """``PREFIX:CODE``, except UMLS CUIs, which are canonical bare and upper-case (see the module doc)."""
    if prefix == "UMLS" and is_cui(code):
        return code.upper()
    return f"{prefix}:{code}"


def normalise_id(raw: str, default_prefix: str | None = None) -> str:
    """Return ``PREFIX:CODE`` for one identifier (a bare ``C0012345`` for a CUI); unknown prefixes
    are kept, upper-cased.

    A bare code is recognised when unambiguous (``C`` + 7 digits is a CUI and stays bare, other MeSH
    ``D``/``C`` + digits get ``MESH:``, six digits ``OMIM:``); otherwise ``default_prefix`` is used,
    and without one the code is returned as is.
    """
    text = raw.strip()
    if not text:
        return text
    match = _SPLIT_COLON.match(text) or _SPLIT_UNDERSCORE.match(text)
    if match and match.group(1).upper() in PREFIX_ALIASES:
        prefix = PREFIX_ALIASES[match.group(1).upper()]
        code = match.group(2).strip()
        if prefix == "NCBITAXON" and code.lower().startswith("txid"):
            code = code[4:]
        return _with_prefix(prefix, code)
    if match and ":" in text:  # an unknown but explicit prefix
        return f"{match.group(1).upper()}:{match.group(2).strip()}"
    if default_prefix is not None:
        return _with_prefix(PREFIX_ALIASES.get(default_prefix.upper(), default_prefix.upper()), text)
    if is_cui(text):
        return text.upper()
    if _MESH_CODE.match(text):
        return f"MESH:{text}"
    if _OMIM_CODE.match(text):
        return f"OMIM:{text}"
    return text


def split_gold_ids(field: str) -> tuple[list[list[str]], bool]:
    """Parse a gold id field into alternatives of composite parts.

    ``|`` separates alternative ids and ``+`` the parts of a composite mention (PubTator/BioSyn
    conventions; NLM-Chem uses ``,``). Returns ``(alternatives, is_composite)`` where each
    alternative is the list of its parts, normalised. ``-1`` and empty fields give no alternatives.
    """
    field = field.strip()
    if field in ("", "-1", "-"):
        return [], False
    composite = "+" in field
    alternatives: list[list[str]] = []
    for alt in re.split(r"[|,]", field):
        parts = [normalise_id(p) for p in alt.split("+") if p.strip() and p.strip() != "-1"]
        if parts:
            alternatives.append(parts)
    return alternatives, composite
