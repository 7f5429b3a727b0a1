"""Embedding short texts (dictionary names, mentions) with a frozen encoder.

Throughput matters: a UMLS-sized dictionary has millions of names. Texts are tokenised once and
sorted by length, so each batch pads to almost nothing; texts with identical token ids (case variants
for an uncased tokenizer) are encoded once; batches run under ``torch.inference_mode``; and every
requested pooling is read off the same forward pass (mean and CLS cost one encoding, not two). On
CUDA the forward pass runs under bf16 (fp16 where bf16 is unsupported) autocast; pooled vectors are
float32.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bali.evaluate.config import NAME_MAX_LENGTH
from bali.model.pooling import mean_pool

POOLINGS = ("mean", "cls")
BATCHES_PER_BLOCK = 64  # batches per block of the length-sorted texts (a cache block, a dedup window)


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


@dataclass(frozen=True)
class Tokenized:
    """Token ids of many texts back to back (int32) with their offsets: about 4 bytes a token, not a
    Python list per text, so a UMLS dictionary (10M names) is tokenised once and kept."""

    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def key(self, row: int) -> bytes:
        """The ids of one text as bytes: equal keys, equal encodings."""
        return self.ids[self.offsets[row] : self.offsets[row + 1]].tobytes()

    def row(self, row: int) -> list[int]:
        return self.ids[self.offsets[row] : self.offsets[row + 1]].tolist()


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int, chunk: int = 65536) -> Tokenized:
    """Ids of every text (with special tokens, truncated), ``chunk`` texts per tokenizer call."""
    parts: list[np.ndarray] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for begin in range(0, len(texts), chunk):
        ids = tokenizer(
            list(texts[begin : begin + chunk]),
            add_special_tokens=True,
            truncation=True,
            max_length=max_length,
        )["input_ids"]
        lengths[begin : begin + len(ids)] = [len(x) for x in ids]
        parts.append(np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Tokenized(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32), offsets)


def encoding_order(tokens: Tokenized) -> np.ndarray:
    """Longest first (an out-of-memory shows up at once), texts with identical ids next to each other
    (so a block encodes them once), then input order. Deterministic: a resumed cache checks it."""
    checksums = np.fromiter((zlib.crc32(tokens.key(r)) for r in range(len(tokens))), np.int64, len(tokens))
    return np.lexsort((np.arange(len(tokens)), checksums, -tokens.lengths()))


def encode_blocks(
    model: Any,
    tokens: Tokenized,
    order: np.ndarray,
    pad_id: int,
    poolings: Sequence[str],
    batch_size: int,
    device: Device,
    blocks: Iterable[int],
    block_rows: int,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Vectors of the rows ``order[block * block_rows:][:block_rows]`` for each block, per pooling.

    Rows whose ids are identical (names that differ only in case for an uncased tokenizer, say) are
    encoded once per block and copied. ``model`` must be in eval mode on ``device``, under
    ``inference_mode``.
    """
    dim = int(model.config.hidden_size)
    for block in blocks:
        rows = order[block * block_rows : (block + 1) * block_rows]
        slot: dict[bytes, int] = {}  # token ids -> index among the block's unique texts
        inverse = np.array([slot.setdefault(tokens.key(r), len(slot)) for r in rows], dtype=np.int64)
        unique = rows[np.unique(inverse, return_index=True)[1]]  # first row of each slot, slot order
        out = {p: np.empty((len(unique), dim), dtype=np.float32) for p in poolings}
        ids = [tokens.row(r) for r in unique]
        for begin, vectors in encode_batches(model, ids, pad_id, poolings, batch_size, device):
            for p in poolings:
                out[p][begin : begin + len(vectors[p])] = vectors[p]
        yield block, {p: v[inverse] for p, v in out.items()}


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
        return mean_pool(hidden, mask)
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
    max_length: int = NAME_MAX_LENGTH,
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
    tokens = tokenize(tokenizer, texts, max_length)
    order = encoding_order(tokens)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    model.to(device.name)
    block_rows = batch_size * BATCHES_PER_BLOCK
    blocks = range(-(-len(order) // block_rows))
    with torch.inference_mode():
        for block, vectors in tqdm(
            encode_blocks(model, tokens, order, pad_id, poolings, batch_size, device, blocks, block_rows),
            desc=desc,
            unit="block",
            total=len(blocks),
            disable=None,
            leave=False,
        ):
            rows = order[block * block_rows : (block + 1) * block_rows]
            for p in poolings:
                out[p][rows] = vectors[p]
    return out
