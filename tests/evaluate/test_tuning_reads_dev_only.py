"""Tuning never reads the held-out test split: the demo's reported queries stay unseen until the end."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.corpus.artifact import CorpusWriter

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
HELDOUT_READERS = {"read_heldout", "heldout_file"}


def _corpus(out: Path) -> Path:
    """A linked corpus whose one sentence mentions node 1 (the dev concept)."""
    with atomic_output_dir(out) as tmp:
        with CorpusWriter(tmp) as writer:
            writer.add("d", 0, "Diabetes is common.", [(0, 8, [1], "dictionary")])
        write_json_atomic(tmp / "manifest.json", make_manifest("corpus", {}, {}, {}))
    return out


def _fake_encode(encoder: object, tokenizer: object, texts: list[str], desc: str) -> dict[str, np.ndarray]:
    """One fixed random unit vector per distinct lower-cased text: exact matches only."""
    vectors = np.stack([np.random.default_rng(abs(hash(t.lower())) % 2**32).normal(size=16) for t in texts])
    return {"mean": vectors / np.linalg.norm(vectors, axis=1, keepdims=True)}


def test_demo_ablation_scores_the_dev_split_and_never_opens_test(
    tiny_kg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("demo_ablation", BENCHMARKS / "demo_ablation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "load_tokenizer", lambda model: None)
    monkeypatch.setattr(module, "load_encoder", lambda model: None)
    monkeypatch.setattr(module, "encode_texts", _fake_encode)
    # A test split that cannot be parsed: reading it at all would raise.
    (tiny_kg / "heldout_synonyms.tsv").write_text("not a held-out file\n", encoding="utf-8")

    module.main(["--kg", str(tiny_kg), "--corpus", str(_corpus(tmp_path / "c")), "--distractors", "1", "m2"])
    out = capsys.readouterr().out
    assert "1 dev held-out synonyms (1 of concepts the corpus mentions)" in out
    assert out.count("\nm2 ") == 1


def test_every_benchmark_script_reads_the_dev_split_only() -> None:
    """Each call of a held-out reader in benchmarks/ names ``split="dev"``, so none can read test."""
    calls = []
    for script in sorted(BENCHMARKS.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                HELDOUT_READERS
            ):
                split = {k.arg: k.value for k in node.keywords}.get("split")
                calls.append((script.name, isinstance(split, ast.Constant) and split.value == "dev"))
    assert calls and all(dev for _, dev in calls), calls
