"""A tiny real training dataset (KG + linked corpus + `bali data build`) and tiny-model configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.config import BaliConfig, load_config
from bali.corpus.artifact import CorpusWriter
from bali.data.config import DataConfig
from bali.data.encode import build_dataset
from bali.kg.graph import Relation
from tiny_kg import write_literal_kg

NAMES = {
    0: ["aspirin", "acetylsalicylic acid"],
    1: ["headache", "cephalgia"],
    2: ["fever", "pyrexia"],
    3: ["paracetamol", "acetaminophen"],
    4: ["pain"],
    5: ["nausea", "queasiness"],
}
EDGES = [(0, 1, 0), (0, 2, 0), (0, 3, 1), (1, 0, 1), (2, 0, 1), (3, 4, 0), (4, 3, 1), (5, 1, 1), (1, 5, 1)]
SENTENCES = [
    ("Aspirin treats headache and fever.", [(0, 7, [0]), (15, 23, [1]), (28, 33, [2])]),
    ("Paracetamol relieves pain and nausea.", [(0, 11, [3]), (21, 25, [4]), (30, 36, [5])]),
    ("Fever and headache after aspirin.", [(0, 5, [2]), (10, 18, [1]), (25, 32, [0])]),
    ("Nausea with pain.", [(0, 6, [5]), (12, 16, [4])]),
]


def build_tiny_dataset(root: Path, copies: int = 8, model: str = "builtin") -> Path:
    """KG of 6 concepts, a corpus of ``4 * copies`` sentences, and the dataset built from them."""
    relations = [Relation("may_treat", phrase="may treat"), Relation("related_to", phrase="is related to")]
    write_literal_kg(root / "kg", NAMES, EDGES, relations)
    with atomic_output_dir(root / "corpus") as tmp:
        with CorpusWriter(tmp, row_group=4) as writer:
            for i, (text, mentions) in enumerate(SENTENCES * copies):
                writer.add(f"d{i}", 0, text, [(s, e, list(ids), "gold") for s, e, ids in mentions])
        write_json_atomic(tmp / "manifest.json", make_manifest("corpus", {}, {}, {"sentences": 4 * copies}))
    build_dataset(
        root / "kg", root / "corpus", model, root / "dataset", DataConfig(validation_fraction=0.125)
    )
    return root / "dataset"


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("train_data"))


@pytest.fixture
def tiny_train_config(tiny_bert_dir: str) -> Callable[..., BaliConfig]:
    """A config that trains the tiny BERT for a handful of steps on CPU."""

    def build(*overrides: str) -> BaliConfig:
        base = [
            f"model.name={tiny_bert_dir}",
            "model.gnn_layers=2",
            "train.batch_size=4",
            "train.max_steps=4",
            "train.save_every=2",
            "train.eval_every=2",
            "train.log_every=1",
            "train.keep_checkpoints=5",
            "train.mixed_precision=no",
        ]
        return load_config(None, base + list(overrides))

    return build
