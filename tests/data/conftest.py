"""Session fixtures for the training-data tests: the tiny KG and the dataset built from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_data import SENTENCES, write_corpus, write_tiny_kg

from bali.data.config import DataConfig
from bali.data.encode import build_dataset


@pytest.fixture(scope="session")
def tiny_kg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_kg(tmp_path_factory.mktemp("kg") / "kg")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, tiny_kg: Path) -> Path:
    root = tmp_path_factory.mktemp("data")
    corpus = write_corpus(root / "corpus", SENTENCES * 20)
    build_dataset(tiny_kg, corpus, "builtin", root / "dataset", DataConfig(validation_fraction=0.2))
    return root / "dataset"
