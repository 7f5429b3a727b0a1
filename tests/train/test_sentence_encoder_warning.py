"""The trainer warns when MLM would continue on a sentence-transformers encoder (benchmarks/budget.md)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from bali.config import load_config
from bali.lm import is_sentence_encoder
from bali.train.trainer import _warn_mlm_on_sentence_encoder


def _sentence_encoder(tiny_bert_dir: str, tmp_path: Path) -> str:
    out = tmp_path / "st"
    shutil.copytree(tiny_bert_dir, out)
    (out / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "x"}]')
    return str(out)


def test_sentence_encoders_are_told_apart(tiny_bert_dir: str, tmp_path: Path) -> None:
    assert not is_sentence_encoder(tiny_bert_dir)
    assert is_sentence_encoder(_sentence_encoder(tiny_bert_dir, tmp_path))
    assert is_sentence_encoder("builtin")  # the embedded all-MiniLM-L6-v2


@pytest.mark.parametrize(
    ("sentence", "mlm_weight", "warned"), [(True, 1.0, True), (True, 0.0, False), (False, 1.0, False)]
)
def test_warning_only_for_mlm_on_a_sentence_encoder(
    tiny_bert_dir: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    sentence: bool,
    mlm_weight: float,
    warned: bool,
) -> None:
    model = _sentence_encoder(tiny_bert_dir, tmp_path) if sentence else tiny_bert_dir
    config = load_config(None, [f"model.name={model}", f"model.mlm_weight={mlm_weight}"])
    with caplog.at_level(logging.WARNING, logger="bali.train.trainer"):
        _warn_mlm_on_sentence_encoder(config)
    assert ("sentence-transformers encoder" in caplog.text) is warned
