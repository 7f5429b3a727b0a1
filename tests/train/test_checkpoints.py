"""Resume reads only checkpoints whose pickled files hold tensors and plain data."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from bali.train.checkpoints import MARKER, STATE_FILE, load_latest

RAN: list[str] = []


def _record(message: str) -> None:
    RAN.append(message)


class _Crafted:
    """A pickle that calls a function when it is loaded, as a crafted checkpoint file would."""

    def __reduce__(self) -> tuple:
        return _record, ("code ran while loading",)


def _checkpoint(run: Path, step: int, scheduler_state: object) -> Path:
    path = run / "checkpoints" / f"step-{step}"
    path.mkdir(parents=True)
    (path / STATE_FILE).write_text(json.dumps({"step": step, "epoch": 0, "batches_in_epoch": step}))
    torch.save({"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": []}, path / "optimizer.bin")
    torch.save(scheduler_state, path / "custom_checkpoint_0.pkl")
    rng = {"random_state": (3, (1, 2), None), "numpy_random_seed": np.random.get_state()}
    torch.save({**rng, "torch_manual_seed": torch.get_rng_state()}, path / "random_states_0.pkl")
    (path / MARKER).write_text("ok\n")
    return path


def test_resume_skips_a_checkpoint_whose_pickles_hold_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = _checkpoint(tmp_path, 4, {"base_lrs": [1e-4], "last_epoch": 4, "lr_lambdas": [None]})
    crafted = _checkpoint(tmp_path, 8, _Crafted())
    loaded: list[str] = []
    with caplog.at_level(logging.WARNING, logger="bali.train.checkpoints"):
        restored = load_latest(tmp_path, loaded.append)
    assert RAN == []  # the crafted file was refused, never run
    assert "step-8" in caplog.text and "cannot be loaded" in caplog.text
    assert loaded == [str(good)] and restored is not None and restored[0].step == 4
    assert crafted.is_dir()
