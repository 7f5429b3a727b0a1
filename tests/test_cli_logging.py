"""`bali` keeps other libraries' INFO logs and progress bars quiet unless --verbose (issue 14)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bali.cli import configure_logging


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo configure_logging's global changes (logger levels, the env variable, transformers' bars)."""
    from transformers.utils import logging as hf_logging

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    levels = {name: logging.getLogger(name).level for name in ("", "bali")}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    hf_logging.enable_progress_bar()


def test_third_party_info_is_quiet_unless_verbose(restore_logging: None) -> None:
    from transformers.utils import logging as hf_logging

    configure_logging(verbose=False)
    assert not logging.getLogger("faiss.loader").isEnabledFor(logging.INFO)
    assert logging.getLogger("faiss.loader").isEnabledFor(logging.WARNING)
    assert logging.getLogger("bali.train.trainer").isEnabledFor(logging.INFO)
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert not hf_logging.is_progress_bar_enabled()  # the "Loading weights" bars
    configure_logging(verbose=True)
    assert logging.getLogger("faiss.loader").isEnabledFor(logging.DEBUG)


@pytest.mark.parametrize("verbose", [False, True])
def test_faiss_loader_lines_only_with_verbose(verbose: bool) -> None:
    code = f"from bali.cli import configure_logging; configure_logging({verbose}); import faiss"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert ("faiss.loader" in result.stderr) is verbose, result.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_load_report_of_an_mlm_checkpoint_only_with_verbose(
    restore_logging: None, tiny_mlm_bert_dir: str, verbose: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """PubMedBERT-style checkpoints carry an MLM head the encoder does not use: transformers' LOAD
    REPORT about it is noise on every rank, shown only with --verbose (bali says what matters)."""
    from bali.lm import LOAD_REPORT_LOGGER, load_encoder

    configure_logging(verbose)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    hf_logger = logging.getLogger(LOAD_REPORT_LOGGER)
    hf_logger.addHandler(handler)
    try:
        with caplog.at_level(logging.DEBUG if verbose else logging.INFO, logger="bali"):
            encoder = load_encoder(tiny_mlm_bert_dir)
    finally:
        hf_logger.removeHandler(handler)
    assert encoder.config.hidden_size == 32
    assert any("LOAD REPORT" in message for message in seen) == verbose
    assert ("checkpoint weights the encoder does not use" in caplog.text) == verbose
    assert "start random" not in caplog.text  # only the unused pooler is missing: nothing to warn about
