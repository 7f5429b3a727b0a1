"""`bali train`: continued pre-training with MLM + cross-modal alignment on Hugging Face Accelerate.

The same code runs on CPU, one GPU, DDP, DeepSpeed and several nodes: the topology comes from
``accelerate launch`` (configs in ``configs/accelerate/``). The run is exactly resumable: the data
order is a function of (seed, epoch), the collator's randomness of (seed, epoch, sample indices),
and checkpoints hold model, optimiser, scheduler, RNG states and the position in the epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from bali.artifacts import read_manifest, write_json_atomic
from bali.config import BaliConfig, dump_config
from bali.errors import BadInputError, BaliError
from bali.export import export_run
from bali.lm import load_tokenizer, tokenizer_fingerprint
from bali.model.bali import BaliModel
from bali.model.config import LOSS_KEYS
from bali.model.geometry import GeometryMeter
from bali.train.checkpoints import TrainerState, load_latest, remove_partial_writes, write_checkpoint
from bali.train.config import TrainConfig
from bali.train.distributed import launched_on_cpu
from bali.train.rundir import BASE_DIR, CONFIG_FILE, DATA_MANIFEST, FINAL_DIR, METRICS

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """What the loop needs from a dataset directory; tests and the pipeline may build it directly."""

    train: Any
    validation: Any | None
    make_collator: Callable[[Any], Any]
    tokenizer_fingerprint: dict[str, Any] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


def _find_fingerprint(manifest: Any) -> dict[str, Any] | None:
    """The tokenizer fingerprint anywhere in a dataset manifest (a dict with a ``probe`` key)."""
    if isinstance(manifest, dict):
        if "probe" in manifest and "vocab_size" in manifest:
            return manifest
        for value in manifest.values():
            found = _find_fingerprint(value)
            if found is not None:
                return found
    return None


def open_training_data(config: BaliConfig, data_dir: str | Path) -> TrainingData:
    """Open the train/validation splits of a `bali data build` directory and its collator."""
    from bali.data.dataset import BaliCollator, BaliDataset

    manifest = read_manifest(data_dir, "data")
    train_ds = BaliDataset(data_dir, split="train")
    try:
        validation = BaliDataset(data_dir, split="validation")
    except (BadInputError, FileNotFoundError, KeyError):
        validation = None
    graph_format = "linear" if config.model.graph_encoder == "linear" else "star"

    def make_collator(dataset: Any) -> Any:
        return BaliCollator.from_dataset(
            dataset,
            neighbours=config.data.neighbours,
            mlm_probability=config.data.mlm_probability,
            graph_format=graph_format,
            seed=config.train.seed,
            linear_max_length=config.data.linear_graph_max_length,
        )

    return TrainingData(train_ds, validation, make_collator, _find_fingerprint(manifest), manifest)


class EpochSampler(Sampler[int]):
    """A permutation drawn from its own generator seeded with ``seed + epoch``.

    Independent of the global RNG, so the data order does not depend on how much dropout or model
    initialisation consumed, and a resumed run sees exactly the order of an uninterrupted one.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def resolve_mixed_precision(setting: str) -> str:
    """'auto' = bf16 where the GPU supports it, else fp16 on GPU, none on CPU."""
    if setting != "auto":
        return setting
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _check_tokenizer(data: TrainingData, model_name: str) -> None:
    """A dataset tokenised for another model would train on garbage ids: refuse before training."""
    if data.tokenizer_fingerprint is None:
        logger.warning(
            "the dataset manifest records no tokenizer fingerprint; cannot check it matches the model"
        )
        return
    expected = tokenizer_fingerprint(load_tokenizer(model_name))
    mismatched = sorted(k for k in expected if data.tokenizer_fingerprint.get(k) != expected[k])
    if mismatched:
        raise BadInputError(
            f"the dataset was built with a different tokenizer than model '{model_name}' "
            f"(differs in: {', '.join(mismatched)}); rebuild it with `bali data build` for this model"
        )


# Settings a resumed run may change: they decide what is logged and kept, not what is computed.
_HARMLESS = ("save_every", "keep_checkpoints", "eval_every", "log_every", "num_workers")
# Settings that only move the end of the run: accepted on resume with ``allow_config_change``.
_EXTENDABLE = ("train.max_steps", "train.epochs")
RESUME_SETTINGS = "resume_settings.json"
# Backends whose processes each hold the whole model (DDP); ZeRO-3 and FSDP shard it.
_REPLICATED = ("NO", "MULTI_GPU", "MULTI_CPU")


def per_device_batch_size(tcfg: TrainConfig, processes: int) -> int:
    """``train.batch_size`` is the global batch: per device = global / (processes x accumulation)."""
    split = processes * tcfg.gradient_accumulation_steps
    if tcfg.batch_size % split:
        raise BadInputError(
            f"train.batch_size={tcfg.batch_size} is the global batch and must be divisible by processes "
            f"({processes}) x train.gradient_accumulation_steps ({tcfg.gradient_accumulation_steps}) = {split}"
        )
    return tcfg.batch_size // split


def resume_settings(config: BaliConfig, processes: int) -> dict[str, Any]:
    """What an exact resume depends on, flattened to ``section.key``: model, data and schedule."""
    settings: dict[str, Any] = {"processes": processes}
    for section in ("model", "data", "train"):
        for key, value in getattr(config, section).model_dump(mode="json").items():
            if not (section == "train" and key in _HARMLESS):
                settings[f"{section}.{key}"] = value
    return settings


def check_resume(out: Path, settings: dict[str, Any], allow_config_change: bool) -> None:
    """Refuse a resume whose settings differ from the run's, naming each difference."""
    recorded_path = out / RESUME_SETTINGS
    if not recorded_path.is_file():
        return  # nothing was trained yet: the run starts from scratch with these settings
    recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
    changed = sorted(k for k in settings.keys() | recorded.keys() if settings.get(k) != recorded.get(k))
    blocking = [k for k in changed if not (allow_config_change and k in _EXTENDABLE)]
    if blocking:
        details = "; ".join(f"{k}: run has {recorded.get(k)!r}, now {settings.get(k)!r}" for k in blocking)
        hint = (
            " (--allow-config-change accepts max_steps/epochs)" if set(blocking) <= set(_EXTENDABLE) else ""
        )
        raise BadInputError(
            f"cannot resume with different settings: {details}{hint}; "
            "use a new run directory, or start over (`bali train --overwrite`, `bali run --from train`)",
            out,
        )


def _prepare_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    if resume and not out.is_dir():
        raise BadInputError("--resume: the run directory does not exist", out)
    if out.exists() and any(out.iterdir()) and not resume and not overwrite:
        raise BadInputError("run directory exists; pass --resume to continue it or --overwrite", out)


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


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the records up to ``step`` (the checkpoint resumed from; 0 = none): later ones are logged
    again. A line cut short by a kill is dropped, not fatal."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def _replica_checksums(accelerator: Any, model: Any) -> list[float]:
    """One parameter checksum per process: data-parallel replicas must hold identical weights."""
    params = accelerator.unwrap_model(model).parameters()
    local = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1)
    return [float(v) for v in accelerator.gather(local.to(accelerator.device)).cpu()]


@dataclass
class _Run:
    """Everything the step loop works on, built once by :func:`_setup`."""

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


def _build_model(config: BaliConfig, data: TrainingData, data_dir: str | Path) -> BaliModel:
    """The model, with a fresh MLM head's bias at the corpus token prior when configured."""
    model = BaliModel(config.model)
    if config.model.mlm_head == "fresh" and config.model.mlm_bias_init == "unigram":
        counts = torch.from_numpy(data.train.files.token_counts())
        size = model.mlm_head.decoder.bias.numel()
        if counts.numel() > size:
            raise BadInputError(
                f"the dataset's vocabulary ({counts.numel()} ids) is larger than the LM's ({size})", data_dir
            )
        model.mlm_head.set_unigram_prior(torch.cat([counts, counts.new_zeros(size - counts.numel())]))
    return model


def _write_run_files(
    out: Path, config: BaliConfig, model: BaliModel, data: TrainingData, settings: dict
) -> None:
    """What export and resume need later, written once by the main process."""
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    model.lm.config.save_pretrained(out / BASE_DIR)
    load_tokenizer(config.model.name).save_pretrained(out / BASE_DIR)
    write_json_atomic(out / DATA_MANIFEST, data.manifest)
    write_json_atomic(out / RESUME_SETTINGS, settings)


def _loader(
    dataset: Any, batch_size: int, collate: Any, tcfg: TrainConfig, sampler: Any = None
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        collate_fn=collate,
        num_workers=tcfg.num_workers,
        generator=torch.Generator().manual_seed(tcfg.seed),
    )


def _setup(
    config: BaliConfig,
    data: TrainingData,
    data_dir: str | Path,
    out: Path,
    resume: bool,
    overwrite: bool,
    allow_config_change: bool,
) -> _Run:
    """Accelerator, the run directory, the model; then :func:`_prepare` and the resumed state."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    tcfg = config.train
    accelerator = Accelerator(
        gradient_accumulation_steps=tcfg.gradient_accumulation_steps,
        mixed_precision=resolve_mixed_precision(tcfg.mixed_precision),
        cpu=launched_on_cpu(),
    )
    per_device = per_device_batch_size(tcfg, accelerator.num_processes)
    settings = resume_settings(config, accelerator.num_processes)
    if resume:
        check_resume(out, settings, allow_config_change)
    accelerator.wait_for_everyone()  # every rank has checked the directory before the main one writes
    if accelerator.is_main_process and out.exists() and overwrite and not resume:
        shutil.rmtree(out)
    set_seed(tcfg.seed)
    model = _build_model(config, data, data_dir)
    if accelerator.is_main_process:
        _write_run_files(out, config, model, data, settings)
    run = _prepare(accelerator, model, data, tcfg, per_device, out)
    if resume:
        _restore(run)
    return run


def build_optimizer(model: BaliModel, tcfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with the LM at ``lr_lm`` and the graph side and MLM head at ``lr_other``.

    Fused: one kernel over all tensors instead of a Python loop per tensor. On 2 CPU cores the
    per-tensor update took 0.28 s of a ~3 s demo step, the fused one 0.04 s (benchmarks/train_step.md).
    """
    return torch.optim.AdamW(
        [
            {"params": model.lm_parameters(), "lr": tcfg.lr_lm},
            {"params": model.other_parameters(), "lr": tcfg.lr_other},
        ],
        weight_decay=tcfg.weight_decay,
        fused=True,
    )


def _prepare(
    accelerator: Any, model: BaliModel, data: TrainingData, tcfg: TrainConfig, per_device: int, out: Path
) -> _Run:
    """Optimiser, loaders and the cosine schedule, passed through Accelerate."""
    from transformers import get_cosine_schedule_with_warmup

    optimizer = build_optimizer(model, tcfg)
    collator = data.make_collator(data.train)
    loader = _loader(data.train, per_device, collator, tcfg, EpochSampler(len(data.train), tcfg.seed))
    prepared, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    steps_per_epoch = max(1, math.ceil(len(loader) / tcfg.gradient_accumulation_steps))
    total_steps = tcfg.max_steps or tcfg.epochs * steps_per_epoch
    warmup = min(int(tcfg.warmup_ratio * total_steps), tcfg.max_warmup_steps)
    # Stepped by hand once per optimiser step (not prepared: Accelerate would step it once per process).
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    accelerator.register_for_checkpointing(scheduler)
    val_loader = None
    if data.validation is not None and len(data.validation) > 0:
        val_collator = data.make_collator(data.validation)
        val_collator.set_epoch(0)
        val_loader = accelerator.prepare(_loader(data.validation, per_device, val_collator, tcfg))
    return _Run(
        accelerator,
        prepared,
        optimizer,
        scheduler,
        loader,
        collator,
        val_loader,
        out,
        tcfg,
        total_steps,
        per_device,
    )


def _restore(run: _Run) -> None:
    """Load the newest usable checkpoint and make ``metrics.jsonl`` agree with it."""
    restored = load_latest(run.out, run.accelerator.load_state)
    if restored is None:
        logger.info("no usable checkpoint in %s: starting from scratch", run.out)
    else:
        run.state = restored[0]
    if run.is_main:
        truncate_metrics(run.out / METRICS, run.state.step)
        remove_partial_writes(run.out)
    run.accelerator.wait_for_everyone()


def _epoch_batches(run: _Run) -> Any:
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


def _micro_step(run: _Run, batch: Any) -> dict[str, torch.Tensor]:
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


def _log_train(run: _Run, meter: _Meter, progress: Any) -> None:
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


def _after_step(run: _Run, meter: _Meter, progress: Any, losses: dict[str, torch.Tensor]) -> bool:
    """Progress, logs, validation and checkpoints after optimiser step ``run.state.step``; True at the end."""
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
    if step % tcfg.save_every == 0 or finished:
        run.checkpoint()
    return finished


def _train_loop(run: _Run) -> None:
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


def _finish(run: _Run) -> dict[str, Any]:
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


def train(
    config: BaliConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    *,
    allow_config_change: bool = False,
    data: TrainingData | None = None,
) -> dict[str, Any]:
    """Train BALI on the dataset in ``data_dir``; write the run directory ``out_dir``.

    ``data`` replaces opening ``data_dir`` (for callers that already hold the datasets). A resume
    with settings other than the run's is refused, except a new ``max_steps``/``epochs`` with
    ``allow_config_change``. Returns a summary: steps, final losses, the last validation losses,
    run and export directories. The process group stays up: the caller may run more collective
    work (the pipeline's evaluation barrier) and ends it (:func:`bali.train.distributed.end_distributed`).
    """
    out = Path(out_dir)
    _prepare_run_dir(out, resume, overwrite)
    if data is None:
        if not Path(data_dir).is_dir():
            raise BadInputError("training dataset directory does not exist", data_dir)
        data = open_training_data(config, data_dir)
    if len(data.train) == 0:
        raise BadInputError("the training split is empty", data_dir)
    _check_tokenizer(data, config.model.name)
    run = _setup(config, data, data_dir, out, resume, overwrite, allow_config_change)
    _train_loop(run)
    return _finish(run)
