"""Normalised concept identifiers shared by the KG, the corpus readers and the evaluation.

Gold annotations and dictionaries spell the same concept many ways (``D012345``, ``MESH:D012345``,
``mesh:D012345``, ``OMIM:601234``, ``MIM:601234``, a bare OMIM number, ``NCBITaxon:9606``,
``HP_0001250``). Everything is reduced to ``PREFIX:CODE`` with a canonical upper-case prefix, so one
dictionary lookup serves every source.
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
_CUI = re.compile(r"^C\d{7}$")
_OMIM_CODE = re.compile(r"^\d{6}$")
# ``PREFIX:CODE`` first (prefixes such as SNOMEDCT_US contain "_"), then OBO-style ``HP_0001250``.
_SPLIT_COLON = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):(.+)$")
_SPLIT_UNDERSCORE = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_(.+)$")


def normalise_id(raw: str, default_prefix: str | None = None) -> str:
    """Return ``PREFIX:CODE`` for one identifier; unknown prefixes are kept, upper-cased.

    A bare code is recognised when unambiguous (MeSH ``D``/``C`` + digits, CUI ``C`` + 7 digits is
    taken as MeSH only when ``default_prefix`` says so, six digits as OMIM); otherwise
    ``default_prefix`` is used, and without one the code is returned as is.
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
        return f"{prefix}:{code}"
    if match and ":" in text:  # an unknown but explicit prefix
        return f"{match.group(1).upper()}:{match.group(2).strip()}"
    if default_prefix is not None:
        return f"{PREFIX_ALIASES.get(default_prefix.upper(), default_prefix.upper())}:{text}"
    if _MESH_CODE.match(text) and not _CUI.match(text):
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
