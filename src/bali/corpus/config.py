"""Settings of `bali corpus link`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CorpusConfig(BaseModel):
    """Which documents are read and how mentions are found."""

    model_config = ConfigDict(extra="forbid")

    builtin: bool = True
    inputs: list[str] = Field(default_factory=list)
    format: Literal["text", "jsonl", "pubtator", "bern2"] = "text"
    # Plain text: one document per line, or each file is one document.
    text_unit: Literal["line", "file"] = "line"
    # Where mentions come from: gold annotations (PubTator, BERN2), the dictionary linker, or "auto"
    # (gold when the format carries annotations, dictionary otherwise).
    mentions: Literal["auto", "gold", "dictionary"] = "auto"
    # Gold annotations of other entity types are counted and left out; empty keeps every type.
    entity_types: list[str] = Field(default_factory=list)
    # Gold ids the KG does not know: counted in the manifest ("count"), or bad input ("error").
    unknown_ids: Literal["count", "error"] = "count"
    min_name_length: int = Field(default=3, ge=1)
    acronym_max_length: int = Field(default=5, ge=0)
    ambiguous: Literal["all", "none"] = "all"
    stoplist: str | None = None
    expand_abbreviations: bool = True
    # Also match each name with its last word in the other number ("seizure" <-> "seizures").
    number_variants: bool = False
    max_errors: int = Field(default=0, ge=0)
    # Processes for dictionary linking (forked; they share the automaton).
    workers: int = Field(default=1, ge=1)
