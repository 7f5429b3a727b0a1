"""Stop a training run cleanly on SIGTERM or SIGINT: finish the step, save a checkpoint, exit.

Clusters end a job with SIGTERM and kill it some seconds later (SLURM's KillWait, 30 s by default;
``accelerate launch``/torchrun pass the signal on to every worker the same way), and Ctrl-C sends
SIGINT to the whole process group. Without a handler all work since the last ``save_every``
checkpoint is lost: a 3,000-step run with a checkpoint every 1,000 steps loses up to an hour on a
CPU. The handler only records the signal; the step loop asks every process after each optimiser
step (Accelerate's trigger, one all-reduce of a scalar) so that all of them save the same step
together, which DeepSpeed and FSDP checkpoints need.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

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


def stop_agreed(accelerator: Any, request: StopRequest) -> bool:
    """True on every process once any of them has a stop request (a collective call: all must make it)."""
    if request.signum is not None:
        accelerator.set_trigger()
    return bool(accelerator.check_trigger())


def ignore_interrupt_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C reaches every process of the group, and a worker that
    dies of it breaks the loader before the main process can save; the main process stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
