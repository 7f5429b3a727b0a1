"""Stop a training run cleanly on SIGTERM or SIGINT: finish the step, save a checkpoint, exit.

Clusters end a job with SIGTERM and kill it some seconds later (SLURM's KillWait, 30 s by default;
``accelerate launch``/torchrun pass the signal on to every worker the same way), and Ctrl-C sends
SIGINT to the whole process group. Without a handler all work since the last ``save_every``
checkpoint is lost: a 3,000-step run with a checkpoint every 1,000 steps loses up to an hour on a
CPU. The handler only records the signal; the step loop asks every process after each optimiser
step (one gather of a scalar) so that all of them save the same step together, which DeepSpeed
and FSDP checkpoints need. Signals during setup, the final export or the last step keep their
usual effect; so does a second signal (``accelerate launch`` forwards a Ctrl-C it received itself,
so every worker sees SIGINT twice, and must not abort the save on the second).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from bali.errors import BaliError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """The first stop signal this process received, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum


class TrainingStopped(BaliError):
    """A run stopped by a signal after saving its state; the exit status is 128 + the signal."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        self.exit_code = 128 + signum
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after step {step}; state saved to {checkpoint}. "
            "Run the same command with --resume to continue (bali run resumes by itself)"
        )


@contextmanager
def catch_stop_signals(request: StopRequest) -> Iterator[StopRequest]:
    """Record SIGTERM and SIGINT in ``request`` instead of dying; the old handlers come back after.

    Signals can only be caught on the main thread; elsewhere (a caller's worker thread) the run
    keeps the process's own handling.
    """
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, request.handle)
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def agreed_stop_signal(accelerator: Any, request: StopRequest) -> int:
    """The stop signal any process received (the highest number if several), 0 if none.

    A collective call: every process makes it after each optimiser step, so all stop at one step
    and report the signal that was actually sent, whichever rank received it.
    """
    local = torch.tensor([request.signum or 0], device=accelerator.device)
    return int(accelerator.gather(local).max())


def ignore_stop_signals_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a scheduler's SIGTERM and a terminal's Ctrl-C reach every
    process, and a worker that dies of one (PyTorch's workers exit on SIGINT, and on a SIGTERM
    their parent did not send) fails the main process before it can save. The main process still
    ends its workers through the loader's own shutdown."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
