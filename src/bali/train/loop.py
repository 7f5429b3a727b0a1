"""The step loop of `bali train`: micro-steps, logging, validation, checkpoints and the export.

:func:`bali.train.trainer.train` opens the data and builds a :class:`TrainingRun` (model, optimiser,
loaders, resumed state); this module runs it to the end. Every position it keeps (step, epoch, micro-batch
in the epoch) goes into the checkpoints, so a resumed run carries on exactly where one stopped.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from bali.errors import BaliError
from bali.export import export_run
from bali.model.config import LOSS_KEYS
from bali.model.geometry import GeometryMeter
from bali.train.checkpoints import TrainerState, write_checkpoint
from bali.train.config import TrainConfig
from bali.train.rundir import FINAL_DIR, METRICS
from bali.train.stop import StopRequest, TrainingStopped, agreed_stop_signal, catch_stop_signals

# Backends whose processes each hold the whole model (DDP); ZeRO-3 and FSDP shard it.
_REPLICATED = ("NO", "MULTI_GPU", "MULTI_CPU")


class _Meter:
    """Running sums of the losses between two log lines."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(len(LOSS_KEYS), dtype=torch.float64)
        self.count = 0
        self.samples = 0
        self.start = time.perf_counter()

    def add(self, out: dict[str, torch.Tensor], samples: int) -> None:
        values = [float(out[k].detach()) for k in LOSS_KEYS]
        self.sums += torch.tensor(values, dtype=torch.float64)
        self.count += 1
        self.samples += samples

    def samples_per_second(self) -> float:
        return self.samples / max(time.perf_counter() - self.start, 1e-9)


def _evaluate(accelerator: Any, model: Any, loader: DataLoader) -> dict[str, float]:
    """Mean losses over the validation split (weighted by batch, summed over processes), and the
    alignment and uniformity of the embeddings (:mod:`bali.model.geometry`).

    The geometry calls the unwrapped model, so it is measured where every process holds whole
    weights (one process, DDP); DeepSpeed and FSDP runs log the losses only.
    """
    model.eval()
    sums = torch.zeros(len(LOSS_KEYS) + 1, device=accelerator.device, dtype=torch.float64)
    geometry = GeometryMeter(accelerator.device) if accelerator.distributed_type in _REPLICATED else None
    with torch.no_grad():
        for batch in loader:
            out = model(batch)
            sums += torch.tensor(
                [float(out[k]) for k in LOSS_KEYS] + [1.0], device=accelerator.device, dtype=torch.float64
            )
            if geometry is not None:
                geometry.add(accelerator.unwrap_model(model), batch)
    model.train()
    sums = accelerator.reduce(sums, reduction="sum")
    count = max(float(sums[-1]), 1.0)
    losses = {key: float(total) / count for key, total in zip(LOSS_KEYS, sums[:-1].tolist(), strict=True)}
    if geometry is None:
        return losses
    return {**losses, **geometry.result(lambda t: accelerator.reduce(t, reduction="sum"))}


def _replica_checksums(accelerator: Any, model: Any) -> list[float]:
    """One parameter checksum per process: data-parallel replicas must hold identical weights."""
    params = accelerator.unwrap_model(model).parameters()
    local = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1)
    return [float(v) for v in accelerator.gather(local.to(accelerator.device)).cpu()]


@dataclass
class TrainingRun:
    """Everything the step loop works on, built once by :func:`bali.train.trainer.train`."""

    accelerator: Any
    model: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: Any
    collator: Any
    val_loader: Any | None
    out: Path
    tcfg: TrainConfig
    total_steps: int
    per_device_batch: int
    state: TrainerState = field(default_factory=TrainerState)
    last_train: dict[str, float] = field(default_factory=dict)
    last_validation: dict[str, float] | None = None
    last_saved: Path | None = None
    started: float = 0.0
    stop: StopRequest = field(default_factory=StopRequest)

    @property
    def is_main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    def log(self, record: dict[str, Any]) -> None:
        if self.is_main:
            with (self.out / METRICS).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def checkpoint(self) -> Path:
        acc = self.accelerator
        self.last_saved = write_checkpoint(
            self.out,
            self.state,
            acc.save_state,
            self.tcfg.keep_checkpoints,
            self.is_main,
            acc.wait_for_everyone,
        )
        return self.last_saved


def _epoch_batches(run: TrainingRun) -> Any:
    """This epoch's loader, past the micro-batches a resumed run already consumed."""
    run.collator.set_epoch(run.state.epoch)
    loader = run.loader
    if run.state.batches_in_epoch:
        from accelerate import skip_first_batches

        loader = skip_first_batches(run.loader, run.state.batches_in_epoch)
    # Accelerate's loader re-sets the sampler's epoch from its own iteration counter when iterated;
    # set that counter, or a resumed run (whose loader starts counting at 0) replays epoch 0's order.
    loader.set_epoch(run.state.epoch)
    return loader


def _micro_step(run: TrainingRun, batch: Any) -> dict[str, torch.Tensor]:
    """Forward and backward one micro-batch; the optimiser steps when accumulation is complete."""
    acc = run.accelerator
    with acc.accumulate(run.model):
        losses = run.model(batch)
        acc.backward(losses["loss"])
        if acc.sync_gradients and run.tcfg.max_grad_norm is not None:
            acc.clip_grad_norm_(run.model.parameters(), run.tcfg.max_grad_norm)
        run.optimizer.step()
        if acc.sync_gradients and not acc.optimizer_step_was_skipped:
            run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    run.state.batches_in_epoch += 1
    return losses


def _log_train(run: TrainingRun, meter: _Meter, progress: Any) -> None:
    """Mean losses since the last log line, to ``metrics.jsonl`` (and stderr when it is no terminal)."""
    means = run.accelerator.reduce(meter.sums.to(run.accelerator.device), reduction="mean") / meter.count
    run.last_train = dict(zip(LOSS_KEYS, means.tolist(), strict=True))
    lr_lm, lr_other = (group["lr"] for group in run.optimizer.param_groups)
    rate = meter.samples_per_second()
    step = run.state.step
    run.log(
        {
            "split": "train",
            "step": step,
            "epoch": run.state.epoch,
            **run.last_train,
            "lr_lm": lr_lm,
            "lr_other": lr_other,
            "samples_per_s": rate,
        }
    )
    if run.is_main and progress.disable:  # no progress bar (output is a file or a pipe): one line instead
        elapsed = progress.format_interval(time.perf_counter() - run.started)
        remaining = (run.total_steps - step) * run.tcfg.batch_size / max(rate, 1e-9)
        print(
            f"train step {step}/{run.total_steps} loss {run.last_train['loss']:.4f} {rate:.1f} samples/s "
            f"elapsed {elapsed} ETA {progress.format_interval(remaining)}",
            file=sys.stderr,
            flush=True,
        )
    meter.reset()


def _after_step(run: TrainingRun, meter: _Meter, progress: Any, losses: dict[str, torch.Tensor]) -> bool:
    """Progress, logs, validation and checkpoints after optimiser step ``run.state.step``; True at the end.

    Raises :class:`TrainingStopped` once a stop signal reached any process, after saving this step.
    """
    step, tcfg = run.state.step, run.tcfg
    progress.update(1)
    progress.set_postfix(
        loss=f"{float(losses['loss'].detach()):.3f}",
        mlm=f"{float(losses['mlm_loss']):.3f}",
        align=f"{float(losses['align_loss']):.3f}",
        lr=f"{run.optimizer.param_groups[0]['lr']:.1e}",
        sps=f"{meter.samples_per_second():.1f}",
    )
    finished = step >= run.total_steps
    if step % tcfg.log_every == 0 or finished:
        _log_train(run, meter, progress)
    if run.val_loader is not None and (step % tcfg.eval_every == 0 or finished):
        run.last_validation = _evaluate(run.accelerator, run.model, run.val_loader)
        run.log({"split": "validation", "step": step, "epoch": run.state.epoch, **run.last_validation})
    signum = 0 if finished else agreed_stop_signal(run.accelerator, run.stop)
    if step % tcfg.save_every == 0 or finished or signum:
        run.checkpoint()
    if signum:
        raise TrainingStopped(signum, step, run.last_saved)
    return finished


def train_loop(run: TrainingRun) -> None:
    """Optimiser steps until ``total_steps``, across epochs, from wherever ``run.state`` stands."""
    from tqdm.auto import tqdm

    progress = tqdm(
        total=run.total_steps,
        initial=run.state.step,
        desc="train",
        disable=None if run.is_main else True,
    )
    run.started = time.perf_counter()
    samples_per_micro_batch = run.per_device_batch * run.accelerator.num_processes
    meter = _Meter()
    run.model.train()
    with catch_stop_signals(run.stop):
        while run.state.step < run.total_steps:
            for batch in _epoch_batches(run):
                losses = _micro_step(run, batch)
                meter.add(losses, samples_per_micro_batch)
                if not run.accelerator.sync_gradients:
                    continue
                run.state.step += 1
                if _after_step(run, meter, progress, losses):
                    break
            else:
                run.state.epoch += 1
                run.state.batches_in_epoch = 0
    progress.close()


def finish(run: TrainingRun) -> dict[str, Any]:
    """Final checkpoint, replica check and the Hugging Face export of the gathered weights."""
    acc = run.accelerator
    checksums = _replica_checksums(acc, run.model)
    identical = all(c == checksums[0] for c in checksums)
    if not identical and acc.distributed_type in _REPLICATED:
        raise BaliError(f"data-parallel replicas ended with different weights (checksums {checksums})")
    if run.last_saved is None:  # resumed at (or past) the end: make sure the final state is on disk
        run.checkpoint()
    # Every rank takes part in gathering (ZeRO-3 shards the weights); the main process exports them,
    # so DDP, DeepSpeed and FSDP runs export alike, whatever layout their checkpoints have.
    weights = acc.get_state_dict(run.model)
    final = run.out / FINAL_DIR
    if run.is_main:
        export_run(run.out, final, overwrite=True, weights=weights)
    acc.wait_for_everyone()
    return {
        "run_dir": str(run.out),
        "final_dir": str(final),
        "checkpoint": str(run.last_saved),
        "steps": run.state.step,
        "total_steps": run.total_steps,
        "epoch": run.state.epoch,
        "processes": acc.num_processes,
        "per_device_batch_size": run.per_device_batch,
        "replica_checksums": checksums,
        "replicas_identical": identical,
        "train": run.last_train,
        "validation": run.last_validation,
    }
