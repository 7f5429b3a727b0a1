"""The training loader's workers outlive a stop signal, so the main process can finish its step and save."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch.utils.data import Dataset

from bali.train.config import TrainConfig
from bali.train.trainer import _loader


class _SignalledWhileLoading(Dataset[int]):
    """Each item sends ``signum`` to the process that loads it: a stop signal reaching the loader's worker."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> int:
        os.kill(os.getpid(), self.signum)
        return index


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_loader_worker_ignores_stop_signals(signum: int) -> None:
    # Without the worker's own handling the first item ends the worker (PyTorch's worker loop returns on
    # KeyboardInterrupt; its SIGTERM handler exits unless the parent sent it) and the main process fails
    # with "DataLoader worker ... exited unexpectedly". With gradient accumulation the main process still
    # needs micro-batches to finish the step it saves.
    loader = _loader(_SignalledWhileLoading(signum), 2, torch.tensor, TrainConfig(num_workers=1))
    assert [batch.tolist() for batch in loader] == [[0, 1], [2, 3], [4, 5]]
