"""Embedding short texts (dictionary names, mentions) with a frozen encoder.

Throughput matters: a UMLS-sized dictionary has millions of names. Texts are tokenised once, sorted by
length so each batch pads to almost nothing, run under ``torch.inference_mode``, and every requested
pooling is read off the same forward pass (mean and CLS cost one encoding, not two). On CUDA the
forward pass runs under bf16 (fp16 where bf16 is unsupported) autocast; pooled vectors are float32.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class Device:
    """Where inference runs and in which precision (``None``: the model's own float32)."""

    name: str
    autocast: torch.dtype | None = None

    @property
    def precision(self) -> str:
        return "float32" if self.autocast is None else str(self.autocast).removeprefix("torch.")

    def context(self) -> Any:
        """Autocast on CUDA, nothing on CPU."""
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast)


def resolve_device(device: str) -> Device:
    """``auto`` picks CUDA when present; CUDA runs in bf16 (fp16 without bf16 support), CPU in float32."""
    name = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if not name.startswith("cuda"):
        return Device(name)
    if not torch.cuda.is_available():
        from bali.errors import BadInputError

        raise BadInputError(f"--device {device}: CUDA is not available here (use auto or cpu)")
    return Device(name, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def token_lengths(tokenizer: Any, texts: Sequence[str], max_length: int, chunk: int = 65536) -> np.ndarray:
    """Token counts (with special tokens, truncated), tokenising ``chunk`` texts at a time (bounded memory)."""
    lengths = np.zeros(len(texts), dtype=np.int64)
    for begin in range(0, len(texts), chunk):
        ids = tokenizer(
            list(texts[begin : begin + chunk]),
            add_special_tokens=True,
            truncation=True,
            max_length=max_length,
        )["input_ids"]
        lengths[begin : begin + len(ids)] = [len(x) for x in ids]
    return lengths


def length_order(lengths: np.ndarray) -> np.ndarray:
    """Longest first (an out-of-memory shows up at once); stable, so equal lengths keep input order."""
    return np.argsort(-lengths, kind="stable")


def tokenize_sorted(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[list[list[int]], np.ndarray]:
    """Token ids of each text (with special tokens, truncated) and the longest-first order."""
    ids: list[list[int]] = tokenizer(
        list(texts), add_special_tokens=True, truncation=True, max_length=max_length
    )["input_ids"]
    return ids, length_order(np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids)))


def pad_batch(ids: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad a list of id lists into ``input_ids`` and ``attention_mask`` tensors."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean over real tokens, or the first ([CLS]) token."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    raise ValueError(f"unknown pooling '{pooling}' (expected one of {POOLINGS})")


def encode_batches(
    model: Any,
    ids: Sequence[list[int]],
    pad_id: int,
    poolings: Sequence[str],
    batch_size: int,
    device: Device,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """L2-normalised float32 vectors per pooling for consecutive batches of ``ids`` (start row, vectors).

    ``model`` must already be in eval mode on ``device``; callers run this under ``inference_mode``.
    """
    for begin in range(0, len(ids), batch_size):
        input_ids, mask = pad_batch(ids[begin : begin + batch_size], pad_id)
        mask = mask.to(device.name)
        with device.context():
            hidden = model(input_ids=input_ids.to(device.name), attention_mask=mask).last_hidden_state
        yield (
            begin,
            {
                p: torch.nn.functional.normalize(pool(hidden, mask, p).float(), dim=-1).cpu().numpy()
                for p in poolings
            },
        )


def check_poolings(poolings: Sequence[str]) -> None:
    """Unknown pooling names are a programming error here (the CLI restricts the choices)."""
    for p in poolings:
        if p not in POOLINGS:
            raise ValueError(f"unknown pooling '{p}' (expected one of {POOLINGS})")


def encode_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    poolings: Sequence[str] = ("mean",),
    batch_size: int = 256,
    max_length: int = 32,
    device: str | Device = "cpu",
    desc: str = "encoding",
) -> dict[str, np.ndarray]:
    """L2-normalised float32 embeddings ``[len(texts), hidden]`` per pooling, in input order.

    Holds everything in memory: for mentions and small text sets. Dictionaries go through
    :mod:`bali.evaluate.cache`, which streams blocks to disk.
    """
    check_poolings(poolings)
    device = device if isinstance(device, Device) else resolve_device(device)
    hidden_size = int(model.config.hidden_size)
    out = {p: np.zeros((len(texts), hidden_size), dtype=np.float32) for p in poolings}
    if not texts:
        return out
    ids, order = tokenize_sorted(tokenizer, texts, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    model.to(device.name)
    sorted_ids = [ids[i] for i in order]
    batches = encode_batches(model, sorted_ids, pad_id, poolings, batch_size, device)
    total = -(-len(order) // batch_size)
    with torch.inference_mode():
        for begin, vectors in tqdm(batches, desc=desc, unit="batch", total=total, disable=None, leave=False):
            rows = order[begin : begin + batch_size]
            for p in poolings:
                out[p][rows] = vectors[p]
    return out
