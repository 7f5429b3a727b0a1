"""Readable phrases for relation names, and the inverse of each directed ontology relation.

Every phrase reads "neighbour PHRASE target": the CSR row of the target lists the neighbour. For
UMLS that is "CUI2 PHRASE CUI1" (MRREL's REL and RELA describe CUI2 relative to CUI1), for an OBO
statement "A is_a B" it is "A is a B" on B's row and "B has subclass A" on A's row. The linear-graph
encoder puts these phrases between two concept names, so they must read as English.
"""

from __future__ import annotations

# UMLS REL codes (MRDOC "REL"), phrased as "CUI2 PHRASE CUI1".
UMLS_REL_PHRASES: dict[str, str] = {
    "AQ": "is an allowed qualifier for",
    "CHD": "is a child of",
    "DEL": "has a deleted relationship with",
    "PAR": "is a parent of",
    "QB": "can be qualified by",
    "RB": "is broader than",
    "RL": "is similar to",
    "RN": "is narrower than",
    "RO": "has a relationship with",
    "RQ": "is related and possibly synonymous to",
    "RU": "is related to",
    "SIB": "is a sibling of",
    "SY": "is a synonym of",
    "XR": "is not related to",
}

# Common UMLS RELA values whose generic reading (underscores to spaces) would be ungrammatical.
RELA_PHRASES: dict[str, str] = {
    "isa": "is a",
    "inverse_isa": "has subtype",
    "part_of": "is part of",
    "has_part": "has part",
    "may_treat": "may treat",
    "may_be_treated_by": "may be treated by",
    "may_prevent": "may prevent",
    "may_be_prevented_by": "may be prevented by",
    "may_diagnose": "may diagnose",
    "may_be_diagnosed_by": "may be diagnosed by",
    "mapped_to": "is mapped to",
    "mapped_from": "is mapped from",
    "classifies": "classifies",
    "classified_as": "is classified as",
    "tradename_of": "is a tradename of",
    "has_tradename": "has tradename",
    "associated_with": "is associated with",
    "member_of": "is a member of",
    "has_member": "has member",
    "same_as": "is the same as",
    "possibly_equivalent_to": "is possibly equivalent to",
    "finding_site_of": "is the finding site of",
    "has_finding_site": "has finding site",
    "active_ingredient_of": "is an active ingredient of",
    "has_active_ingredient": "has active ingredient",
    "ingredient_of": "is an ingredient of",
    "has_ingredient": "has ingredient",
    "causative_agent_of": "is the causative agent of",
    "has_causative_agent": "has causative agent",
    "due_to": "is due to",
    "cause_of": "is a cause of",
    "occurs_in": "occurs in",
    "location_of": "is the location of",
    "has_location": "has location",
    "constitutes": "constitutes",
    "contraindicated_with_disease": "is contraindicated with disease",
    "has_contraindicated_drug": "has contraindicated drug",
    "physiologic_effect_of": "is a physiologic effect of",
    "has_physiologic_effect": "has physiologic effect",
    "mechanism_of_action_of": "is the mechanism of action of",
    "has_mechanism_of_action": "has mechanism of action",
}

# OBO relations (relation names as written in OBO files and the builtin graph).
OBO_PHRASES: dict[str, str] = {
    "is_a": "is a",
    "has_subclass": "has subclass",
    "part_of": "is part of",
    "has_part": "has part",
    "regulates": "regulates",
    "regulated_by": "is regulated by",
    "negatively_regulates": "negatively regulates",
    "negatively_regulated_by": "is negatively regulated by",
    "positively_regulates": "positively regulates",
    "positively_regulated_by": "is positively regulated by",
    "occurs_in": "occurs in",
    "site_of": "is the site of",
    "has_phenotype": "has phenotype",
    "phenotype_of": "is a phenotype of",
    "has_mode_of_inheritance": "has mode of inheritance",
    "mode_of_inheritance_of": "is the mode of inheritance of",
}

# Inverse of each directed relation stored in both directions (OBO, TSV, builtin).
INVERSES: dict[str, str] = {
    "is_a": "has_subclass",
    "part_of": "has_part",
    "regulates": "regulated_by",
    "negatively_regulates": "negatively_regulated_by",
    "positively_regulates": "positively_regulated_by",
    "occurs_in": "site_of",
    "has_phenotype": "phenotype_of",
    "has_mode_of_inheritance": "mode_of_inheritance_of",
}
INVERSES.update({v: k for k, v in list(INVERSES.items())})


def phrase_for(name: str, rel: str = "") -> str:
    """The readable phrase of a relation name (a RELA, a REL code or an OBO relation).

    Known names use the tables above; anything else falls back to underscores -> spaces, so every
    relation gets a phrase without a curated entry.
    """
    if not name:
        return UMLS_REL_PHRASES.get(rel, rel.lower())
    for table in (RELA_PHRASES, OBO_PHRASES, UMLS_REL_PHRASES):
        if name in table:
            return table[name]
    if name.startswith("inverse_of_"):
        return f"is the inverse {name[len('inverse_of_') :].replace('_', ' ')} of"
    return name.replace("_", " ")


def inverse_of(name: str) -> str:
    """The relation name stored on the other end of a directed statement."""
    if name in INVERSES:
        return INVERSES[name]
    if name.startswith("inverse_of_"):
        return name[len("inverse_of_") :]
    return f"inverse_of_{name}"
