"""Embedding short texts (dictionary names, mentions) with a frozen encoder.

Throughput matters: a UMLS-sized dictionary has millions of names. Texts are tokenised once, sorted by
length so each batch pads to almost nothing, run under ``torch.inference_mode``, and every requested
pooling is read off the same forward pass (mean and CLS cost one encoding, not two).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

POOLINGS = ("mean", "cls")


def tokenize_sorted(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[list[list[int]], np.ndarray]:
    """Token ids of each text (with special tokens, truncated) and the longest-first order."""
    ids: list[list[int]] = tokenizer(
        list(texts), add_special_tokens=True, truncation=True, max_length=max_length
    )["input_ids"]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    order = np.argsort(-lengths, kind="stable")  # longest first: an out-of-memory shows up at once
    return ids, order


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


def encode_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    poolings: Sequence[str] = ("mean",),
    batch_size: int = 256,
    max_length: int = 32,
    device: str | torch.device = "cpu",
    desc: str = "encoding",
) -> dict[str, np.ndarray]:
    """L2-normalised float32 embeddings ``[len(texts), hidden]`` per pooling, in input order."""
    for p in poolings:
        if p not in POOLINGS:
            raise ValueError(f"unknown pooling '{p}' (expected one of {POOLINGS})")
    hidden_size = int(model.config.hidden_size)
    out = {p: np.zeros((len(texts), hidden_size), dtype=np.float32) for p in poolings}
    if not texts:
        return out
    ids, order = tokenize_sorted(tokenizer, texts, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    model.to(device)
    with torch.inference_mode():
        for begin in tqdm(
            range(0, len(order), batch_size), desc=desc, unit="batch", disable=None, leave=False
        ):
            rows = order[begin : begin + batch_size]
            input_ids, mask = pad_batch([ids[i] for i in rows], pad_id)
            hidden = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            mask = mask.to(device)
            for p in poolings:
                vectors = torch.nn.functional.normalize(pool(hidden, mask, p).float(), dim=-1)
                out[p][rows] = vectors.cpu().numpy()
    return out
