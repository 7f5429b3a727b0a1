"""Settings of `bali kg build`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bali.evaluate.dictionary import DictionaryFormat


class KGConfig(BaseModel):
    """Which source the KG is built from and how it is filtered.

    UMLS filters: ``languages`` (MRCONSO LAT), ``sab_include``/``sab_exclude`` (MRCONSO and MRREL
    SAB), ``keep_suppressed`` (default drops atoms and relations with SUPPRESS O/E/Y),
    ``rel_*``/``rela_*`` (MRREL REL and RELA), ``restrict_to`` (a file of CUIs, one per line) with
    ``hops`` of MRREL neighbourhood around them. ``obo_name_scopes``: which OBO synonym scopes become
    names (every synonym is kept with its scope in ``obo_synonyms.parquet`` anyway).
    ``holdout_synonyms``/``holdout_dev_synonyms``/``holdout_seed``: withhold one synonym of that many
    concepts for the held-out-synonym linking evaluation, in two disjoint splits: test
    (``heldout_synonyms.tsv``, what results report) and dev (``heldout_synonyms.dev.tsv``, the only
    one tuning may read). ``dictionary_concepts``: a linking dictionary (``dictionary_concepts_format``
    ``medic``: ``ID[|altID]||name|synonym``; ``tsv``: ``ID<TAB>name``) whose concepts no node carries
    as an id are added as isolated nodes with its names (:mod:`bali.kg.dictionary_concepts`).
    """

    model_config = ConfigDict(extra="forbid")

    source: Literal["builtin", "umls", "obo", "tsv"] = "builtin"
    umls_dir: str | None = None
    obo_files: list[str] = Field(default_factory=list)
    tsv_concepts: str | None = None
    tsv_edges: str | None = None
    languages: list[str] = Field(default_factory=lambda: ["ENG"])
    sab_include: list[str] = Field(default_factory=list)
    sab_exclude: list[str] = Field(default_factory=list)
    keep_suppressed: bool = False
    rel_include: list[str] = Field(default_factory=list)
    rel_exclude: list[str] = Field(default_factory=list)
    rela_include: list[str] = Field(default_factory=list)
    rela_exclude: list[str] = Field(default_factory=list)
    restrict_to: str | None = None
    hops: int = Field(default=1, ge=0)
    keep_self_loops: bool = True
    max_errors: int = Field(default=0, ge=0)
    obo_name_scopes: list[Literal["EXACT", "RELATED", "BROAD", "NARROW"]] = Field(
        default_factory=lambda: ["EXACT", "RELATED"]
    )
    holdout_synonyms: int = Field(default=0, ge=0)
    holdout_dev_synonyms: int = Field(default=0, ge=0)
    holdout_seed: int = 0
    dictionary_concepts: str | None = None
    dictionary_concepts_format: DictionaryFormat = "medic"
