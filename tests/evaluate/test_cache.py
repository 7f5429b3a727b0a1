"""The embedding cache: reuse, resume after kill -9, rebuild of corrupt entries, block search."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bali
from bali.evaluate import cache
from bali.evaluate.cache import dictionary_embeddings
from bali.evaluate.encode import encode_texts, resolve_device
from bali.evaluate.search import ApproxIndex, ArrayVectors, ExactIndex, recall_at_k

NAMES = [f"disease {w} type {i}" for i in range(16) for w in ("alpha", "beta gamma", "d")]
BATCH, PER_BLOCK = 4, 2  # 8 names per block: 6 blocks


def _embed(model_dir: str, cache_dir: Path, **kwargs):  # type: ignore[no-untyped-def]
    from bali.lm import load_encoder, load_tokenizer

    return dictionary_embeddings(
        load_encoder(model_dir),
        load_tokenizer(model_dir),
        NAMES,
        ["mean", "cls"],
        cache_dir,
        batch_size=BATCH,
        batches_per_block=PER_BLOCK,
        device=resolve_device("cpu"),
        **kwargs,
    )


def _in_name_order(vectors) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.zeros((vectors.rows, vectors.dim), dtype=np.float32)
    for block, names in vectors.blocks(5):
        out[names] = block
    return out


def test_cache_is_reused_and_equals_in_memory_encoding(
    tiny_bert_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bali.lm import load_encoder, load_tokenizer

    first = _embed(tiny_bert_dir, tmp_path)
    assert first.status == "encoded"
    expected = encode_texts(
        load_encoder(tiny_bert_dir), load_tokenizer(tiny_bert_dir), NAMES, ["mean", "cls"], BATCH
    )
    for p in ("mean", "cls"):
        assert np.array_equal(_in_name_order(first.vectors[p]), expected[p])  # same batches, same bits
    monkeypatch.setattr(cache, "encode_blocks", lambda *a, **k: pytest.fail("a reused entry was re-encoded"))
    second = _embed(tiny_bert_dir, tmp_path)
    assert second.status == "reused"
    assert np.array_equal(_in_name_order(second.vectors["mean"]), expected["mean"])
    assert len(list(tmp_path.iterdir())) == 2  # one entry per pooling
    monkeypatch.undo()
    assert _embed(tiny_bert_dir, tmp_path, max_length=8).status == "encoded"  # another key, another entry
    assert _embed(tiny_bert_dir, tmp_path, dtype="float16").status == "encoded"
    assert len(list(tmp_path.iterdir())) == 6


KILLER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from bali.evaluate import cache
from test_cache import _embed

real = cache.CacheEntry.write_block

def write_then_die(self, block, vectors, crcs):
    if block == 2:  # a torn write: garbage in block 2's place, then kill -9 before its checksum
        with open(self.dir / cache.VECTORS, "r+b") as handle:
            handle.seek(cache.header_size(self.dir / cache.VECTORS) + block * self.block_rows * self.dim * 4)
            handle.write(os.urandom(64))
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, block, vectors, crcs)

cache.CacheEntry.write_block = write_then_die
_embed({model!r}, Path({cache_dir!r}))
"""


@pytest.mark.slow
def test_cache_survives_kill_9_during_encoding(tiny_bert_dir: str, tmp_path: Path) -> None:
    script = tmp_path / "killer.py"
    cache_dir = tmp_path / "cache"
    script.write_text(
        KILLER.format(tests=str(Path(__file__).parent), model=tiny_bert_dir, cache_dir=str(cache_dir))
    )
    env = {**os.environ, "PYTHONPATH": str(Path(bali.__file__).parents[1])}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    resumed = _embed(tiny_bert_dir, cache_dir)
    assert resumed.status == "resumed" and resumed.resumed_blocks == 2  # blocks 0-1 kept, 2 redone
    clean = _embed(tiny_bert_dir, tmp_path / "clean")
    for p in ("mean", "cls"):
        assert np.array_equal(_in_name_order(resumed.vectors[p]), _in_name_order(clean.vectors[p]))


def test_corrupt_or_truncated_entries_are_rebuilt_not_used(
    tiny_bert_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = _in_name_order(_embed(tiny_bert_dir, tmp_path).vectors["mean"])
    entry = next(d for d in tmp_path.iterdir() if "-mean-" in d.name)
    vectors = entry / cache.VECTORS
    data = bytearray(vectors.read_bytes())
    data[-100] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = _embed(tiny_bert_dir, tmp_path)
    assert again.status == "encoded" and "checksum" in caplog.text
    assert np.array_equal(_in_name_order(again.vectors["mean"]), good)
    vectors.write_bytes(vectors.read_bytes()[:-10])
    (next(d for d in tmp_path.iterdir() if "-cls-" in d.name) / cache.PROGRESS).write_text("{not json")
    assert [c.check()[2] for c in _entries(tmp_path)] == ["wrong size", "unreadable (JSONDecodeError)"]
    assert _embed(tiny_bert_dir, tmp_path).status == "encoded"
    assert _embed(tiny_bert_dir, tmp_path).status == "reused"


def _entries(root: Path) -> list[cache.CacheEntry]:
    """The mean and cls entries of NAMES in ``root``, rebuilt from their meta.json."""
    import json

    found = []
    for pooling in ("mean", "cls"):
        directory = next(d for d in root.iterdir() if f"-{pooling}-" in d.name)
        meta = json.loads((directory / cache.META).read_text())
        key = cache.CacheKey(**meta["key"])
        found.append(cache.CacheEntry(root, key, meta["rows"], meta["dim"], meta["block_rows"]))
    return found


def test_block_search_equals_brute_force_whatever_the_block_size() -> None:
    rng = np.random.default_rng(0)  # small integers: exact dot products, so ties are real ties
    vectors = rng.integers(-2, 3, (500, 16)).astype(np.float32)
    vectors[10] = vectors[400]  # the lower index must come first
    queries = np.concatenate([vectors[[400]], rng.integers(-2, 3, (20, 16)).astype(np.float32)])
    scores = queries @ vectors.T
    expected = np.lexsort((np.broadcast_to(np.arange(500), scores.shape), -scores), axis=1)[:, :7]
    for block_rows in (1, 7, 64, 1000):
        _, ids = ExactIndex(ArrayVectors(vectors), block_rows=block_rows, query_batch=6).search(queries, 7)
        assert np.array_equal(ids, expected), block_rows
    assert ids[0, :2].tolist() == [10, 400]


def test_approximate_index_reports_its_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = ExactIndex(ArrayVectors(vectors))
    for kind in ("ivf", "hnsw"):
        approx = ApproxIndex(ArrayVectors(vectors), kind, train_size=2000)
        found = recall_at_k(exact, approx, vectors[:50], k=10)
        assert found["queries"] == 50 and found["k"] == 10 and 0.5 < found["recall"] <= 1.0
        assert approx.search(vectors[:5], 1)[1][:, 0].tolist() == [0, 1, 2, 3, 4]  # each finds itself


def test_device_auto_falls_back_to_cpu_and_cuda_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from bali.errors import BadInputError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").name == "cpu" and resolve_device("auto").precision == "float32"
    with pytest.raises(BadInputError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_device_auto_uses_cuda_in_half_precision() -> None:  # pragma: no cover - CPU-only CI
    device = resolve_device("auto")
    assert device.name == "cuda" and device.precision in ("bfloat16", "float16")


def test_names_with_identical_token_ids_are_encoded_once(
    tiny_bert_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MiniLM tokenizer is uncased: case variants are one id sequence, one forward row, one vector."""
    from bali.evaluate import encode
    from bali.lm import load_encoder, load_tokenizer

    names = ["Heart attack", "renal failure", "HEART ATTACK", "heart attack", "Renal Failure", "gout"]
    encoder, tokenizer = load_encoder(tiny_bert_dir), load_tokenizer(tiny_bert_dir)
    seen: list[list[int]] = []
    real = encode.encode_batches

    def counting(model, ids, *args):  # type: ignore[no-untyped-def]
        seen.extend(ids)
        return real(model, ids, *args)

    monkeypatch.setattr(encode, "encode_batches", counting)
    vectors = encode_texts(encoder, tokenizer, names, ["mean"], 2)["mean"]
    assert len(seen) == 3 and len({tuple(x) for x in seen}) == 3
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[0], vectors[3])
    assert np.array_equal(vectors[1], vectors[4]) and not np.array_equal(vectors[0], vectors[5])
    seen.clear()
    cached = dictionary_embeddings(
        encoder, tokenizer, names, ["mean"], tmp_path, batch_size=2, device=resolve_device("cpu")
    )
    assert len(seen) == 3
    out = np.zeros_like(vectors)
    for block, rows in cached.vectors["mean"].blocks(4):
        out[rows] = block
    assert np.array_equal(out, vectors)  # same batches as the in-memory path, same bits
