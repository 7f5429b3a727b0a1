"""Settings of `bali train`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrainConfig(BaseModel):
    """Optimisation, schedule, checkpoints; defaults follow the published command."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(default=None, ge=1)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=256, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    lr_lm: float = Field(default=2e-5, gt=0.0)
    lr_other: float = Field(default=1e-4, gt=0.0)
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    max_warmup_steps: int = Field(default=10_000, ge=0)
    # Clip the global gradient norm at this value; null turns clipping off (the reference's own loop
    # does not clip; its DeepSpeed config, which might, was never released). 1.0 keeps the early
    # steps of a fresh MLM head from moving the LM far.
    max_grad_norm: float | None = Field(default=1.0, gt=0.0)
    seed: int = 29
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    save_every: int = Field(default=1000, ge=1)
    keep_checkpoints: int = Field(default=3, ge=1)
    eval_every: int = Field(default=1000, ge=1)
    log_every: int = Field(default=10, ge=1)
    num_workers: int = Field(default=0, ge=0)

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no_is_false(cls, value: object) -> object:
        """YAML 1.1 reads a bare ``no`` (``--set train.mixed_precision=no``) as False."""
        return "no" if value is False else value
