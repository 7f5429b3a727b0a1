"""Counter-based randomness and BERT-style MLM masking.

Every random decision is a hash of (seed, epoch, sample index, purpose, position), computed with the
SplitMix64 finaliser over numpy arrays. Nothing depends on generator state, worker id or the order in
which samples meet in a batch, so the same seed, epoch and indices give the same batch under any
DataLoader layout, and a run resumed at step N sees exactly the batches it would have seen. It is
also fully vectorised, which a per-sample ``np.random.Generator`` (tens of microseconds to create)
is not.
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64
_INCREMENT = _U64(0x9E3779B97F4A7C15)
_MUL1 = _U64(0xBF58476D1CE4E5B9)
_MUL2 = _U64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53

# Purposes: each random decision draws from its own stream so they are independent.
STREAM_MASK_SELECT = 1
STREAM_MASK_RANDOM_TOKEN = 3
STREAM_NEIGHBOUR = 4
STREAM_NAME = 5
STREAM_SPLIT = 6
STREAM_RELATION = 7


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijective, well-mixing hash of 64-bit integers (wraps on overflow)."""
    x = np.asarray(x, dtype=_U64)
    with np.errstate(over="ignore"):
        x = x + _INCREMENT
        x = (x ^ (x >> _U64(30))) * _MUL1
        x = (x ^ (x >> _U64(27))) * _MUL2
    return x ^ (x >> _U64(31))


def base_key(*parts: int) -> np.ndarray:
    """Key of a (seed, epoch, ...) tuple, as a 0-d uint64 array to combine with per-element keys."""
    key = np.zeros((), dtype=_U64)
    for part in parts:
        key = mix64(key ^ _U64(part & 0xFFFFFFFFFFFFFFFF))
    return key


def keyed_bits(base: np.ndarray, *keys: np.ndarray | int) -> np.ndarray:
    """64 random bits per element of the broadcast ``keys``, a pure function of ``base`` and keys."""
    out = base
    for key in keys:
        out = mix64(out ^ np.asarray(key).astype(_U64))
    return out


def keyed_uniform(base: np.ndarray, *keys: np.ndarray | int) -> np.ndarray:
    """Uniform floats in [0, 1), one per element of the broadcast ``keys``."""
    return (keyed_bits(base, *keys) >> _U64(11)).astype(np.float64) * _TO_UNIT


def keyed_integers(base: np.ndarray, high: np.ndarray | int, *keys: np.ndarray | int) -> np.ndarray:
    """Uniform integers in [0, high) (``high`` > 0, broadcast with ``keys``)."""
    draws = np.floor(keyed_uniform(base, *keys) * np.asarray(high, dtype=np.float64)).astype(np.int64)
    return np.minimum(draws, np.asarray(high, dtype=np.int64) - 1)


def mask_tokens(
    input_ids: np.ndarray,
    maskable: np.ndarray,
    base: np.ndarray,
    sample_keys: np.ndarray,
    mlm_probability: float,
    mask_token_id: int,
    vocab_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking of a padded [B, L] batch: returns (corrupted ids, labels with -100 elsewhere).

    Each maskable position is selected with ``mlm_probability``; a selected token becomes
    ``mask_token_id`` 80% of the time, a uniformly random vocabulary id 10%, and stays 10%. The
    draws are keyed by (sample key, position), so padding and batch composition change nothing.
    Mention tokens are maskable like any other token (BALI pools the entity embedding from the
    corrupted sentence on purpose).
    """
    positions = np.arange(input_ids.shape[1], dtype=np.int64)[None, :]
    keys = sample_keys.astype(np.int64)[:, None]
    # One 64-bit hash per (sample, position): its top 24 bits decide selection, the next 24 the
    # action (24-bit resolution is ample for 15% / 80-10-10); random ids are drawn separately.
    bits = keyed_bits(base, STREAM_MASK_SELECT, keys, positions)
    selected = maskable & ((bits >> _U64(40)).astype(np.float64) * 2.0**-24 < mlm_probability)
    labels = np.where(selected, input_ids, -100)
    rows, cols = np.nonzero(selected)
    action = ((bits[rows, cols] >> _U64(16)) & _U64(0xFFFFFF)).astype(np.float64) * 2.0**-24
    corrupted = input_ids.copy()
    to_mask = action < 0.8
    corrupted[rows[to_mask], cols[to_mask]] = mask_token_id
    to_random = (action >= 0.8) & (action < 0.9)
    rows, cols = rows[to_random], cols[to_random]
    corrupted[rows, cols] = keyed_integers(base, vocab_size, STREAM_MASK_RANDOM_TOKEN, keys[rows, 0], cols)
    return corrupted, labels
