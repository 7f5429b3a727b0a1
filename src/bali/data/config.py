"""Settings of `bali data build` and of batch assembly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    """Tokenisation lengths, subgraph sampling and MLM masking."""

    model_config = ConfigDict(extra="forbid")

    max_length: int = Field(default=128, ge=8)
    name_max_length: int = Field(default=32, ge=3)
    neighbours: int = Field(default=3, ge=0)
    mlm_probability: float = Field(default=0.15, ge=0.0, le=1.0)
    lowercase: bool = True
    drop_sentences_without_mentions: bool = True
    validation_fraction: float = Field(default=0.01, ge=0.0, lt=1.0)
    linear_graph_max_length: int = Field(default=128, ge=8)
