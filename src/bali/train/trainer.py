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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from bali.artifacts import read_manifest, write_json_atomic
from bali.config import BaliConfig, dump_config
from bali.errors import BadInputError
from bali.lm import load_tokenizer, tokenizer_fingerprint
from bali.model.bali import BaliModel
from bali.model.config import LOSS_KEYS
from bali.train.checkpoints import TrainerState, load_latest, write_checkpoint

logger = logging.getLogger(__name__)

METRICS = "metrics.jsonl"
BASE_DIR = "base"  # LM config + tokenizer of the run, so export needs nothing outside the run dir
DATA_MANIFEST = "data_manifest.json"


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


def _prepare_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
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


def _evaluate(accelerator: Any, model: Any, loader: DataLoader) -> dict[str, float]:
    """Mean losses over the validation split (weighted by batch, summed over processes)."""
    model.eval()
    sums = torch.zeros(len(LOSS_KEYS) + 1, device=accelerator.device, dtype=torch.float64)
    with torch.no_grad():
        for batch in loader:
            out = model(batch)
            sums += torch.tensor(
                [float(out[k]) for k in LOSS_KEYS] + [1.0], device=accelerator.device, dtype=torch.float64
            )
    model.train()
    sums = accelerator.reduce(sums, reduction="sum")
    count = max(float(sums[-1]), 1.0)
    return {key: float(total) / count for key, total in zip(LOSS_KEYS, sums[:-1].tolist(), strict=True)}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records logged after the checkpoint a run resumes from; they will be logged again."""
    if not path.is_file():
        return
    kept = [
        line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] <= step
    ]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _replica_checksums(accelerator: Any, model: Any) -> list[float]:
    """One parameter checksum per process: data-parallel replicas must hold identical weights."""
    params = accelerator.unwrap_model(model).parameters()
    local = torch.stack([p.detach().double().sum() for p in params]).sum().reshape(1)
    return [float(v) for v in accelerator.gather(local.to(accelerator.device)).cpu()]


def train(
    config: BaliConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    *,
    data: TrainingData | None = None,
) -> dict[str, Any]:
    """Train BALI on the dataset in ``data_dir``; write the run directory ``out_dir``.

    ``data`` replaces opening ``data_dir`` (for callers that already hold the datasets). Returns a
    summary: steps, final losses, the last validation losses, run and export directories.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    out = Path(out_dir)
    tcfg = config.train
    _prepare_run_dir(out, resume, overwrite)
    if data is None:
        if not Path(data_dir).is_dir():
            raise BadInputError("training dataset directory does not exist", data_dir)
        data = open_training_data(config, data_dir)
    if len(data.train) == 0:
        raise BadInputError("the training split is empty", data_dir)
    model_name = config.model.name
    _check_tokenizer(data, model_name)

    accelerator = Accelerator(
        gradient_accumulation_steps=tcfg.gradient_accumulation_steps,
        mixed_precision=resolve_mixed_precision(tcfg.mixed_precision),
        # Started by torchrun (`accelerate launch --multi_gpu`, configs/accelerate/cpu.yaml) on a machine
        # without GPUs: Accelerate only picks DDP over gloo when told it is on CPU.
        cpu=not torch.cuda.is_available() and "LOCAL_RANK" in os.environ,
    )
    is_main = accelerator.is_main_process
    if is_main and out.exists() and overwrite and not resume:
        shutil.rmtree(out)
    accelerator.wait_for_everyone()
    set_seed(tcfg.seed)
    model = BaliModel(config.model)
    if config.model.mlm_head == "fresh" and config.model.mlm_bias_init == "unigram":
        counts = torch.from_numpy(data.train.files.token_counts())
        size = model.mlm_head.decoder.bias.numel()
        if counts.numel() > size:
            raise BadInputError(
                f"the dataset's vocabulary ({counts.numel()} ids) is larger than the LM's ({size})", data_dir
            )
        model.mlm_head.set_unigram_prior(torch.cat([counts, counts.new_zeros(size - counts.numel())]))
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(dump_config(config), encoding="utf-8")
        model.lm.config.save_pretrained(out / BASE_DIR)
        load_tokenizer(model_name).save_pretrained(out / BASE_DIR)
        write_json_atomic(out / DATA_MANIFEST, data.manifest)

    optimizer = torch.optim.AdamW(
        [
            {"params": model.lm_parameters(), "lr": tcfg.lr_lm},
            {"params": model.other_parameters(), "lr": tcfg.lr_other},
        ],
        weight_decay=tcfg.weight_decay,
    )
    sampler = EpochSampler(len(data.train), tcfg.seed)
    collator = data.make_collator(data.train)
    loader = DataLoader(
        data.train,
        batch_size=tcfg.batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=tcfg.num_workers,
        generator=torch.Generator().manual_seed(tcfg.seed),
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
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
        val_loader = accelerator.prepare(
            DataLoader(
                data.validation,
                batch_size=tcfg.batch_size,
                shuffle=False,
                collate_fn=val_collator,
                num_workers=tcfg.num_workers,
                generator=torch.Generator().manual_seed(tcfg.seed),
            )
        )

    state = TrainerState()
    if resume:
        restored = load_latest(out, accelerator.load_state)
        if restored is None:
            logger.info("no usable checkpoint in %s: starting from scratch", out)
        else:
            state = restored[0]
            if is_main:
                _truncate_metrics(out / METRICS, state.step)

    def checkpoint() -> Path:
        return write_checkpoint(
            out, state, accelerator.save_state, tcfg.keep_checkpoints, is_main, accelerator.wait_for_everyone
        )

    def log(record: dict[str, Any]) -> None:
        if is_main:
            with (out / METRICS).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    from tqdm.auto import tqdm

    progress = tqdm(total=total_steps, initial=state.step, desc="train", disable=None if is_main else True)
    samples_per_batch = tcfg.batch_size * accelerator.num_processes
    meter = _Meter()
    last_train: dict[str, float] = {}
    last_validation: dict[str, float] | None = None
    last_saved: Path | None = None
    model.train()
    while state.step < total_steps:
        collator.set_epoch(state.epoch)
        epoch_loader = loader
        if state.batches_in_epoch:
            from accelerate import skip_first_batches

            epoch_loader = skip_first_batches(loader, state.batches_in_epoch)
        # Accelerate's loader re-sets the sampler's epoch from its own iteration counter when iterated;
        # set that counter, or a resumed run (whose loader starts counting at 0) replays epoch 0's order.
        epoch_loader.set_epoch(state.epoch)
        for batch in epoch_loader:
            with accelerator.accumulate(model):
                out_losses = model(batch)
                accelerator.backward(out_losses["loss"])
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), tcfg.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            state.batches_in_epoch += 1
            meter.add(out_losses, samples_per_batch)
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            lr_lm, lr_other = (group["lr"] for group in optimizer.param_groups)
            progress.update(1)
            progress.set_postfix(
                loss=f"{float(out_losses['loss'].detach()):.3f}",
                mlm=f"{float(out_losses['mlm_loss']):.3f}",
                align=f"{float(out_losses['align_loss']):.3f}",
                lr=f"{lr_lm:.1e}",
                sps=f"{meter.samples / max(time.perf_counter() - meter.start, 1e-9):.1f}",
            )
            finished = state.step >= total_steps
            if state.step % tcfg.log_every == 0 or finished:
                means = accelerator.reduce(meter.sums.to(accelerator.device), reduction="mean") / meter.count
                last_train = dict(zip(LOSS_KEYS, means.tolist(), strict=True))
                elapsed = max(time.perf_counter() - meter.start, 1e-9)
                log(
                    {
                        "split": "train",
                        "step": state.step,
                        "epoch": state.epoch,
                        **last_train,
                        "lr_lm": lr_lm,
                        "lr_other": lr_other,
                        "samples_per_s": meter.samples / elapsed,
                    }
                )
                meter.reset()
            if val_loader is not None and (state.step % tcfg.eval_every == 0 or finished):
                last_validation = _evaluate(accelerator, model, val_loader)
                log({"split": "validation", "step": state.step, "epoch": state.epoch, **last_validation})
            if state.step % tcfg.save_every == 0 or finished:
                last_saved = checkpoint()
            if finished:
                break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()
    checksums = _replica_checksums(accelerator, model)
    if last_saved is None:  # resumed at (or past) the end: make sure the final state is on disk
        last_saved = checkpoint()
    accelerator.wait_for_everyone()
    final = out / "final"
    if is_main:
        from bali.export import export_run

        export_run(out, final, overwrite=True)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {
        "run_dir": str(out),
        "final_dir": str(final),
        "checkpoint": str(last_saved),
        "steps": state.step,
        "total_steps": total_steps,
        "epoch": state.epoch,
        "processes": accelerator.num_processes,
        "replica_checksums": checksums,
        "replicas_identical": all(c == checksums[0] for c in checksums),
        "train": last_train,
        "validation": last_validation,
    }
