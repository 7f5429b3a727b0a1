"""One process topology for every stage: what `accelerate launch` started, on GPUs or on CPUs.

Accelerate picks DDP over gloo on a machine without GPUs only when told it runs on CPU; a
``PartialState()`` created without ``cpu=True`` there makes every rank a lone main process, and the
ranks then race on the same directories. Every caller goes through :func:`process_state` so the
pipeline's barriers and the trainer's ``Accelerator`` share one correctly initialised state.
"""

from __future__ import annotations

import os
from typing import Any


def launched_on_cpu() -> bool:
    """True under a distributed launcher (torchrun sets LOCAL_RANK) on a machine without CUDA."""
    import torch

    return not torch.cuda.is_available() and "LOCAL_RANK" in os.environ


def process_state() -> Any:
    """Accelerate's shared ``PartialState`` for this process, gloo on CPU-only machines."""
    from accelerate import PartialState

    return PartialState(cpu=launched_on_cpu())


def is_distributed() -> bool:
    """Started as one of several processes (`accelerate launch --num_processes N`, N > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def end_distributed() -> None:
    """Tear the process group down once a command's last collective call is over."""
    if is_distributed():
        process_state().destroy_process_group()
