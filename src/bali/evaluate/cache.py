"""An on-disk cache of dictionary embeddings, written in blocks and resumable after a crash.

Encoding a dictionary is most of an evaluation's time (76k MEDIC names: minutes on a CPU; 10M UMLS
names: hours), and its result depends only on the model weights, the name strings, the pooling and
the maximum length. One cache entry holds exactly that: a directory named by those four (and the
storage dtype) with

- ``meta.json``: the key, the shape, the storage dtype and the block size;
- ``order.npy``: the encoding order, longest first (row r of the vectors is name ``order[r]``);
- ``vectors.npy``: ``[names, dim]`` float16 or float32 in that order (a regular .npy, so
  ``np.load(..., mmap_mode="r")`` opens it), written block by block with ``pwrite`` and ``fsync``;
- ``progress.json``: one CRC32 per finished block, rewritten atomically after each block, and
  ``complete`` once every block is in.

A killed encoder leaves finished blocks and their checksums: the next call checks them and goes on
from the first missing block. Anything that does not check out (missing files, wrong sizes, a
checksum mismatch, a different key) is deleted and rebuilt, never used. Reads and writes go through
plain file I/O, not a memory map, so the vectors in memory are one block however large the
dictionary; while encoding, the token ids of every name are held too (int32, about 0.5 GB for 10M
UMLS names), so each name is tokenised once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bali.artifacts import write_json_atomic
from bali.evaluate.config import NAME_MAX_LENGTH
from bali.evaluate.encode import (
    BATCHES_PER_BLOCK,
    Device,
    check_poolings,
    encode_blocks,
    encoding_order,
    tokenize,
)
from bali.evaluate.search import VectorBlocks

log = logging.getLogger(__name__)

CACHE_DTYPES = ("float32", "float16")
VECTORS, ORDER, META, PROGRESS = "vectors.npy", "order.npy", "meta.json", "progress.json"
FORMAT_VERSION = 1


def model_fingerprint(encoder: Any, tokenizer: Any) -> str:
    """SHA-256 of every parameter and buffer (name, dtype, shape, bytes) and of the tokenizer.

    Content, not paths or mtimes: a re-exported identical model reuses its entry, and a fine-tuned
    model saved over the same directory does not.
    """
    from bali.lm import tokenizer_fingerprint

    digest = hashlib.sha256(json.dumps(tokenizer_fingerprint(tokenizer), sort_keys=True).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def strings_fingerprint(strings: Sequence[str]) -> str:
    """SHA-256 of the distinct name strings in dictionary order (the rows the vectors must match)."""
    digest = hashlib.sha256()
    for s in strings:
        digest.update(s.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """What an entry's vectors depend on."""

    model: str
    dictionary: str
    pooling: str
    max_length: int
    dtype: str

    @property
    def dirname(self) -> str:
        return f"{self.model[:16]}-{self.dictionary[:16]}-{self.pooling}-L{self.max_length}-{self.dtype}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dictionary": self.dictionary,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "dtype": self.dtype,
        }


class DiskVectors:
    """Read access to a complete entry: blocks of float32 vectors with the name index of each row."""

    def __init__(self, path: Path, order: np.ndarray, dim: int, dtype: str) -> None:
        self.path, self.order, self.dim, self.dtype = path, order, dim, np.dtype(dtype)
        self.rows = len(order)
        self.offset = header_size(path)

    def blocks(self, block_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(vectors [b, dim] float32, name indices [b])`` for consecutive row blocks."""
        buffer = np.empty((block_rows, self.dim), dtype=self.dtype)
        with self.path.open("rb", buffering=0) as handle:
            for begin in range(0, self.rows, block_rows):
                n = min(block_rows, self.rows - begin)
                handle.seek(self.offset + begin * self.dim * self.dtype.itemsize)
                view = buffer[:n]
                if handle.readinto(memoryview(view).cast("B")) != view.nbytes:
                    raise OSError(f"{self.path} is shorter than its header says")
                yield view.astype(np.float32), self.order[begin : begin + n]

    def vectors_of(self, names: np.ndarray) -> np.ndarray:
        """Float32 vectors of the given name indices (a few rows: the t-SNE sample)."""
        position = np.empty(self.rows, dtype=np.int64)
        position[self.order] = np.arange(self.rows)
        return np.asarray(np.load(self.path, mmap_mode="r")[position[names]], dtype=np.float32)


def header_size(path: Path) -> int:
    """Byte offset of the data in a .npy file."""
    with path.open("rb") as handle:
        major, _ = np.lib.format.read_magic(handle)
        read_header = (
            np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        )
        read_header(handle)
        return handle.tell()


def _block_crc(handle: Any, offset: int, nbytes: int) -> int:
    handle.seek(offset)
    data = handle.read(nbytes)
    return zlib.crc32(data) if len(data) == nbytes else -1


class CacheEntry:
    """One (model, dictionary, pooling, max length, dtype) entry directory; see the module doc."""

    def __init__(self, root: Path, key: CacheKey, rows: int, dim: int, block_rows: int) -> None:
        self.key, self.rows, self.dim, self.block_rows = key, rows, dim, block_rows
        self.dir = root / key.dirname
        self.itemsize = np.dtype(key.dtype).itemsize

    @property
    def num_blocks(self) -> int:
        return -(-self.rows // self.block_rows)

    def _meta(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "key": self.key.as_dict(),
            "rows": self.rows,
            "dim": self.dim,
            "block_rows": self.block_rows,
        }

    def _block_bytes(self, block: int) -> int:
        return min(self.block_rows, self.rows - block * self.block_rows) * self.dim * self.itemsize

    def check(self) -> tuple[int, bool, str]:
        """(verified finished blocks, complete, why not usable): a bad entry reports 0 blocks."""
        try:
            meta = json.loads((self.dir / META).read_text(encoding="utf-8"))
            progress = json.loads((self.dir / PROGRESS).read_text(encoding="utf-8"))
            order = np.load(self.dir / ORDER, allow_pickle=False)
            vectors = self.dir / VECTORS
            offset = header_size(vectors)
        except (OSError, ValueError) as exc:
            return 0, False, f"unreadable ({exc.__class__.__name__})"
        if {**meta, "block_rows": self.block_rows} != self._meta():
            return 0, False, "its settings differ"
        self.block_rows = int(meta["block_rows"])  # a complete entry reads the same whatever its block size
        if (
            order.shape != (self.rows,)
            or vectors.stat().st_size != offset + self.rows * self.dim * self.itemsize
        ):
            return 0, False, "wrong size"
        crcs = progress.get("blocks", [])
        with vectors.open("rb") as handle:
            for block, crc in enumerate(crcs):
                start = offset + block * self.block_rows * self.dim * self.itemsize
                if _block_crc(handle, start, self._block_bytes(block)) != crc:
                    return 0, False, f"block {block} fails its checksum"
        complete = bool(progress.get("complete")) and len(crcs) == self.num_blocks
        return len(crcs), complete, ""

    def start(self, order: np.ndarray, done: int) -> None:
        """Create a fresh entry (``done == 0``) or check the order of a resumed one."""
        if done and np.array_equal(np.load(self.dir / ORDER), order):
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        np.save(self.dir / ORDER, order)
        header = np.lib.format.open_memmap(
            self.dir / VECTORS, mode="w+", dtype=self.key.dtype, shape=(self.rows, self.dim)
        )
        del header  # only the header and the file size; data goes in by pwrite
        write_json_atomic(self.dir / META, self._meta())
        write_json_atomic(self.dir / PROGRESS, {"blocks": [], "complete": False})

    def write_block(self, block: int, vectors: np.ndarray, crcs: list[int]) -> None:
        """Write one block, make it durable, then record its checksum (so a crash never leaves a lie)."""
        data = np.ascontiguousarray(vectors, dtype=self.key.dtype).tobytes()
        path = self.dir / VECTORS
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, header_size(path) + block * self.block_rows * self.dim * self.itemsize)
            os.fsync(fd)
        finally:
            os.close(fd)
        crcs.append(zlib.crc32(data))
        write_json_atomic(self.dir / PROGRESS, {"blocks": crcs, "complete": len(crcs) == self.num_blocks})

    def reader(self) -> DiskVectors:
        return DiskVectors(self.dir / VECTORS, np.load(self.dir / ORDER), self.dim, self.key.dtype)


@dataclass
class CachedEmbeddings:
    """The outcome for one model: vectors per pooling and what the cache did (reused, encoded, resumed)."""

    vectors: dict[str, VectorBlocks]
    status: str
    resumed_blocks: int
    directory: str

    def describe(self) -> dict[str, Any]:
        """For results.json and the terminal: what happened and where."""
        return {"status": self.status, "resumed_blocks": self.resumed_blocks, "directory": self.directory}


def dictionary_embeddings(
    encoder: Any,
    tokenizer: Any,
    strings: Sequence[str],
    poolings: Sequence[str],
    cache_dir: str | Path,
    *,
    max_length: int = NAME_MAX_LENGTH,
    batch_size: int = 256,
    device: Device,
    dtype: str = "float32",
    batches_per_block: int = BATCHES_PER_BLOCK,
    desc: str = "names",
) -> CachedEmbeddings:
    """Vectors of every dictionary string per pooling, from the cache or encoded into it.

    Blocks are ``batches_per_block`` batches of the length-sorted names, texts with identical token
    ids encoded once per block; with the default, the batches (and hence the vectors) are those of an
    uninterrupted in-memory encoding (:func:`bali.evaluate.encode.encode_texts`) with the same batch size.
    """
    check_poolings(poolings)
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"cache dtype must be one of {CACHE_DTYPES}")
    root = Path(cache_dir)
    key_base = (model_fingerprint(encoder, tokenizer), strings_fingerprint(strings))
    dim, rows = int(encoder.config.hidden_size), len(strings)
    entries = {
        p: CacheEntry(
            root, CacheKey(*key_base, p, max_length, dtype), rows, dim, batch_size * batches_per_block
        )
        for p in poolings
    }
    state = {p: e.check() for p, e in entries.items()}
    missing = {p: entries[p] for p, (_, complete, _) in state.items() if not complete}
    for p, (_, _, why) in state.items():
        if why and entries[p].dir.exists():
            log.warning("embedding cache entry %s is not usable (%s): rebuilding it", entries[p].dir, why)
    block_rows = batch_size * batches_per_block
    for p, entry in missing.items():
        if entry.block_rows != block_rows:  # a partial entry of another batch size: its batches differ
            entry.block_rows, state[p] = block_rows, (0, False, "")
    resumed = min((state[p][0] for p in missing), default=0)
    if missing:
        _encode_into(encoder, tokenizer, strings, missing, resumed, max_length, batch_size, device, desc)
    return CachedEmbeddings(
        {p: e.reader() for p, e in entries.items()},
        ("resumed" if resumed else "encoded") if missing else "reused",
        resumed,
        str(root),
    )


def _encode_into(
    encoder: Any,
    tokenizer: Any,
    strings: Sequence[str],
    entries: dict[str, CacheEntry],
    first_block: int,
    max_length: int,
    batch_size: int,
    device: Device,
    desc: str,
) -> None:
    """Encode blocks ``first_block``.. of the length-sorted strings into every entry."""
    tokens = tokenize(tokenizer, strings, max_length)
    order = encoding_order(tokens)
    for entry in entries.values():
        entry.start(order, first_block)
    crcs = {p: json.loads((e.dir / PROGRESS).read_text())["blocks"][:first_block] for p, e in entries.items()}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoder.eval()
    encoder.to(device.name)
    block_rows = next(iter(entries.values())).block_rows
    blocks = range(first_block, next(iter(entries.values())).num_blocks)
    encoded = encode_blocks(
        encoder, tokens, order, pad_id, list(entries), batch_size, device, blocks, block_rows
    )
    with torch.inference_mode():
        for block, vectors in tqdm(
            encoded, desc=desc, unit="block", total=len(blocks), disable=None, leave=False
        ):
            for p, entry in entries.items():
                entry.write_block(block, vectors[p], crcs[p])
