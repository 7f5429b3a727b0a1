"""Settings of `bali data build` and of batch assembly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    """Tokenisation lengths, subgraph sampling and MLM masking.

    The first group is fixed when the dataset is built (`bali data build` records it in the
    manifest); ``neighbours``, ``mlm_probability`` and ``linear_graph_max_length`` act at batch
    time, so changing them needs no rebuild. Defaults are BALI's README settings.
    """

    model_config = ConfigDict(extra="forbid")

    # Build time.
    max_length: int = Field(default=128, ge=8, description="sentence tokens incl. [CLS]/[SEP]")
    name_max_length: int = Field(default=32, ge=3, description="name tokens incl. [CLS]/[SEP]")
    lowercase: bool = Field(
        default=True,
        description="lower-case names and relation phrases (sentences follow the tokenizer's own casing)",
    )
    drop_sentences_without_mentions: bool = True
    validation_fraction: float = Field(default=0.01, ge=0.0, lt=1.0)
    # Batch time.
    neighbours: int = Field(default=3, ge=0, description="1-hop neighbours sampled per entity")
    mlm_probability: float = Field(default=0.15, ge=0.0, le=1.0)
    linear_graph_max_length: int = Field(default=128, ge=8)
