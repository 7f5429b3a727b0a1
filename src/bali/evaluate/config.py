"""Settings of `bali eval`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Tokens kept of a dictionary name or a mention when embedding them for linking (names are short;
# the export's sentence-transformers config uses the same, so it reproduces the evaluation).
NAME_MAX_LENGTH = 32
# Tokens of a mention's sentence in the in-context protocol (bali.evaluate.context); the training
# default of data.max_length.
CONTEXT_MAX_LENGTH = 128


class EvalConfig(BaseModel):
    """Zero-shot linking protocol and downstream tasks to run after training."""

    model_config = ConfigDict(extra="forbid")

    linking_mentions: str | None = None
    linking_format: Literal["pubtator", "biosyn", "heldout", "tsv"] = "heldout"
    linking_dictionary: str | None = None
    entity_types: list[str] = Field(default_factory=list)
    # Training-corpus mention files (PubTator): rows for test mentions whose normalised string is a
    # training gold mention (seen) and the rest (unseen), as `bali eval linking --train-mentions`.
    linking_train_mentions: list[str] = Field(default_factory=list)
    # Also score each PubTator mention pooled in its own sentence (`bali eval linking --in-context`).
    linking_in_context: bool = False
    pooling: list[Literal["mean", "cls"]] = Field(default_factory=lambda: ["mean"])
    heldout_max_concepts: int = Field(default=2000, ge=1)
    batch_size: int = Field(default=128, ge=1)
    # auto: CUDA (bf16/fp16 inference) when present, else CPU; or cpu, cuda, cuda:N.
    device: str = "auto"
    seed: int = 42
