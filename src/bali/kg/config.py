"""Settings of `bali kg build`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KGConfig(BaseModel):
    """Which source the KG is built from and how it is filtered."""

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
