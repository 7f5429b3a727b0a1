"""Checkpoint directories: atomic writes, completion markers, retention and fallback on resume.

A checkpoint is ``checkpoints/step-N/`` holding Accelerate's full state (model, optimiser,
scheduler, RNG states), ``trainer_state.json`` (step, epoch, batches consumed in the epoch) and a
``COMPLETE`` marker written last. It is assembled in a temporary sibling and renamed into place, so a
crash leaves either a whole checkpoint or an ignorable temporary directory.

Resuming unpickles Accelerate's files, and Accelerate loads registered custom objects (the scheduler)
with ``weights_only=False``, under which a pickle can run any code. Before Accelerate reads a
checkpoint, every pickled file in it is therefore read with ``weights_only=True`` (tensors, numbers,
containers and numpy's RNG arrays only) and a checkpoint that fails is skipped. Resume only from
checkpoints you trust all the same: the check narrows what a crafted file can do, it is no sandbox.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bali.artifacts import write_json_atomic

logger = logging.getLogger(__name__)


def _drop_shared_tensor_notice(record: logging.LogRecord) -> bool:
    """GATv2 shares its source and target weights (one tensor under two names); safetensors stores it
    once and Accelerate warns about that on every save. Loading ties it again, so the notice is noise."""
    return "Removed shared tensor" not in record.getMessage()


logging.getLogger("accelerate.utils.other").addFilter(_drop_shared_tensor_notice)

MARKER = "COMPLETE"
STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class TrainerState:
    """Where the loop is: optimiser steps done, current epoch, micro-batches consumed in it."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0


def checkpoint_root(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """All ``step-N`` directories (complete or not), oldest first."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file() and (path / STATE_FILE).is_file()


def write_checkpoint(
    run_dir: str | Path,
    state: TrainerState,
    save_state: Callable[[str], None],
    keep: int,
    is_main: bool,
    barrier: Callable[[], None],
) -> Path:
    """Write ``step-N`` atomically and prune to the last ``keep`` complete checkpoints.

    ``save_state(dir)`` is Accelerate's ``save_state``; every process must call it (it gathers
    RNG states per rank), while only the main process touches the directory layout.
    """
    root = checkpoint_root(run_dir)
    final = root / f"step-{state.step}"
    tmp = root / f".tmp-step-{state.step}"
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    save_state(str(tmp))
    barrier()
    if is_main:
        write_json_atomic(tmp / STATE_FILE, asdict(state))
        (tmp / MARKER).write_text("ok\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        complete = [path for _, path in list_checkpoints(run_dir) if is_complete(path)]
        for old in complete[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def remove_partial_writes(run_dir: str | Path) -> list[Path]:
    """Delete the temporary directories of checkpoint writes that a kill interrupted."""
    root = checkpoint_root(run_dir)
    stale = sorted(root.glob(".tmp-step-*")) if root.is_dir() else []
    for path in stale:
        logger.info("removing %s: a checkpoint write that did not finish", path)
        shutil.rmtree(path, ignore_errors=True)
    return stale


def check_tensor_only(checkpoint: Path) -> None:
    """Read every pickled file of ``checkpoint`` with ``weights_only=True``; raise if one holds more.

    Accelerate's own loader with its allow-list of numpy types (the RNG states), so a genuine
    checkpoint passes, and a file naming any other global (code to run) raises before Accelerate
    unpickles it without that restriction.
    """
    from accelerate.utils.other import load

    for path in sorted(checkpoint.glob("*.bin")) + sorted(checkpoint.glob("*.pkl")):
        load(path, map_location="cpu", weights_only=True)


def load_latest(run_dir: str | Path, load_state: Callable[[str], None]) -> tuple[TrainerState, Path] | None:
    """Restore the newest loadable checkpoint; skip partial or corrupt ones with a warning.

    Returns None when there is nothing to resume from. ``load_state`` restores all state, so a
    failed attempt is simply overwritten by the next (older) one.
    """
    for step, path in reversed(list_checkpoints(run_dir)):
        if not is_complete(path):
            logger.warning("skipping checkpoint %s: incomplete (no %s marker)", path, MARKER)
            continue
        try:
            raw: dict[str, Any] = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
            state = TrainerState(**raw)
            if state.step != step:
                raise ValueError(f"{STATE_FILE} says step {state.step}")
            check_tensor_only(path)
            load_state(str(path))
        except Exception as exc:  # any failure means "not usable": fall back to an older one
            logger.warning("skipping checkpoint %s: cannot be loaded (%s: %s)", path, type(exc).__name__, exc)
            continue
        logger.info("resuming from %s", path)
        return state, path
    return None


def latest_complete(run_dir: str | Path) -> Path | None:
    """The newest checkpoint with a completion marker (what export reads)."""
    complete = [path for _, path in list_checkpoints(run_dir) if is_complete(path)]
    return complete[-1] if complete else None
