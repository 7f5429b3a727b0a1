"""`bali train`: continued pre-training with MLM + cross-modal alignment on Hugging Face Accelerate.

The same code runs on CPU, one GPU, DDP, DeepSpeed and several nodes: the topology comes from
``accelerate launch`` (configs in ``configs/accelerate/``). The run is exactly resumable: the data
order is a function of (seed, epoch), the collator's randomness of (seed, epoch, sample indices),
and checkpoints hold model, optimiser, scheduler, RNG states and the position in the epoch.

This module sets a run up: it opens the data, checks the run directory and a resume against the
run's settings, and builds the accelerator, model, optimiser and loaders; :mod:`bali.train.loop`
runs the steps and exports the result.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from bali.artifacts import read_manifest, write_json_atomic
from bali.config import BaliConfig, dump_config
from bali.errors import BadInputError
from bali.lm import is_sentence_encoder, load_tokenizer, tokenizer_fingerprint
from bali.model.bali import BaliModel
from bali.train.checkpoints import load_latest, remove_partial_writes
from bali.train.config import TrainConfig
from bali.train.distributed import launched_on_cpu
from bali.train.loop import TrainingRun, finish, train_loop
from bali.train.rundir import BASE_DIR, CONFIG_FILE, DATA_MANIFEST, METRICS
from bali.train.stop import ignore_stop_signals_in_worker

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


def _warn_mlm_on_sentence_encoder(config: BaliConfig) -> None:
    """Continuing MLM on a contrastively trained encoder erodes the embeddings BALI is meant to
    improve: on the demo's MiniLM, MLM alone cost 15.7 points of dev linking in 1,000 steps and the
    preset 1.8, while alignment alone held the base at 1,000 steps (benchmarks/budget.md)."""
    if config.model.mlm_weight > 0 and is_sentence_encoder(config.model.name):
        logger.warning(
            "model '%s' is a sentence-transformers encoder: the MLM term (model.mlm_weight=%s) moves "
            "its contrastively trained embeddings and lowered linking accuracy on the demo as training "
            "went on (benchmarks/budget.md); consider model.mlm_weight=0 for such a base",
            config.model.name,
            config.model.mlm_weight,
        )


def _build_model(config: BaliConfig, data: TrainingData, data_dir: str | Path) -> BaliModel:
    """The model, with a fresh MLM head's bias at the corpus token prior when configured."""
    _warn_mlm_on_sentence_encoder(config)
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
        worker_init_fn=ignore_stop_signals_in_worker,
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
) -> TrainingRun:
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
) -> TrainingRun:
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
    return TrainingRun(
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


def _restore(run: TrainingRun) -> None:
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
    train_loop(run)
    return finish(run)
