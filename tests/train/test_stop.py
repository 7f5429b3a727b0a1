"""The training loader's workers outlive a Ctrl-C, so the main process can finish its step and save."""

from __future__ import annotations

import os
import signal

import torch
from torch.utils.data import Dataset

from bali.train.config import TrainConfig
from bali.train.trainer import _loader


class _InterruptedWhileLoading(Dataset[int]):
    """Each item raises SIGINT in the process that loads it: a Ctrl-C reaching the loader's worker."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> int:
        os.kill(os.getpid(), signal.SIGINT)
        return index


def test_a_loader_worker_ignores_ctrl_c() -> None:
    # Without the worker's own handling, the first item ends the worker (PyTorch's worker loop returns on
    # KeyboardInterrupt) and the main process fails with "DataLoader worker exited unexpectedly". With
    # gradient accumulation, the main process still needs micro-batches to finish the step it saves.
    loader = _loader(_InterruptedWhileLoading(), 2, torch.tensor, TrainConfig(num_workers=1))
    assert [batch.tolist() for batch in loader] == [[0, 1], [2, 3], [4, 5]]
