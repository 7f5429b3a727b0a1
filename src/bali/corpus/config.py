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
    min_name_length: int = Field(default=3, ge=1)
    ambiguous: Literal["all", "none"] = "all"
    stoplist: str | None = None
    expand_abbreviations: bool = True
    max_errors: int = Field(default=0, ge=0)
