"""Fine-tune a model on a downstream task over several seeds and report test metrics (mean, std).

The protocol of BALI's released scripts (method.md E.1): independent runs with seeds
``initial_seed + i`` on one fixed split, the epoch with the best dev score kept, then scored on test.
A plain torch loop (AdamW, linear warm-up/decay) keeps it small and runs on a CPU with the
``subsample``/``epochs``/``max_length`` options.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bali.errors import BadInputError
from bali.evaluate.tasks import get_task
from bali.evaluate.tasks.base import SPLITS, Example, TaskData, TaskSpec, baselines

log = logging.getLogger(__name__)
SUBSAMPLE_SEED = 0


def subsample(examples: list[Example], n: int | None) -> list[Example]:
    """The same ``n`` examples for every seed (a fixed shuffle), so seeds differ only in training."""
    if n is None or n >= len(examples):
        return examples
    order = list(range(len(examples)))
    random.Random(SUBSAMPLE_SEED).shuffle(order)
    return [examples[i] for i in sorted(order[:n])]


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_model(model: str, spec: TaskSpec) -> Any:
    """A task head on top of MODEL, resolved offline (``builtin``, a directory or a cached id)."""
    from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification

    from bali.lm import resolve_model

    path = resolve_model(model)
    try:
        if spec.kind == "multiple_choice":
            return AutoModelForMultipleChoice.from_pretrained(path, local_files_only=True)
        problem = {
            "single_label": "single_label_classification",
            "multi_label": "multi_label_classification",
            "regression": "regression",
        }[spec.kind]
        return AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(spec.labels), problem_type=problem, local_files_only=True
        )
    except OSError as exc:
        raise BadInputError(f"cannot load '{model}' offline ({exc.__class__.__name__})") from exc


def make_batch(
    tokenizer: Any, spec: TaskSpec, examples: Sequence[Example], max_length: int
) -> dict[str, torch.Tensor]:
    """Tokenise with dynamic padding; labels shaped for the head's loss."""
    if spec.kind == "multiple_choice":
        firsts = [e.text for e in examples for _ in e.choices]
        seconds = [c for e in examples for c in e.choices]
        enc = tokenizer(
            firsts, seconds, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        )
        n_choices = len(examples[0].choices)
        batch = {k: v.view(len(examples), n_choices, -1) for k, v in enc.items()}
    else:
        pairs = [e.text_pair for e in examples]
        enc = tokenizer(
            [e.text for e in examples],
            pairs if any(p is not None for p in pairs) else None,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        batch = dict(enc)
    if spec.kind == "multi_label":
        labels = torch.zeros(len(examples), len(spec.labels))
        for row, e in enumerate(examples):
            labels[row, list(e.label)] = 1.0
    elif spec.kind == "regression":
        labels = torch.tensor([float(e.label) for e in examples])
    else:
        labels = torch.tensor([int(e.label) for e in examples])
    batch["labels"] = labels
    return batch


def predict(
    model: Any,
    tokenizer: Any,
    spec: TaskSpec,
    examples: Sequence[Example],
    max_length: int,
    batch_size: int,
    device: str,
) -> np.ndarray:
    """Class indices, multi-hot rows (sigmoid > 0.5) or scores, by task kind."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for begin in range(0, len(examples), batch_size):
            batch = make_batch(tokenizer, spec, examples[begin : begin + batch_size], max_length)
            batch.pop("labels")
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
            if spec.kind == "multi_label":
                outputs.append((torch.sigmoid(logits) > 0.5).int().numpy())
            elif spec.kind == "regression":
                outputs.append(logits.view(-1).numpy())
            else:
                outputs.append(logits.argmax(-1).numpy())
    if not outputs:
        return np.zeros(0)
    return np.concatenate(outputs)


def train_one_seed(
    model_name: str,
    spec: TaskSpec,
    train: list[Example],
    dev: list[Example],
    test: list[Example],
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    max_length: int,
    warmup_ratio: float,
    weight_decay: float,
    device: str,
) -> dict[str, Any]:
    """Train, keep the best dev epoch, score it on test."""
    from bali.lm import load_tokenizer

    set_seed(seed)
    tokenizer = load_tokenizer(model_name)
    model = load_model(model_name, spec).to(device)
    steps = max(1, (len(train) + batch_size - 1) // batch_size * epochs)
    optimizer, scheduler = _optimizer(model, lr, weight_decay, warmup_ratio, steps)
    generator = torch.Generator().manual_seed(seed)
    best_score, best_state, best_epoch = -float("inf"), None, -1
    history = []
    for epoch in range(epochs):
        order = torch.randperm(len(train), generator=generator).tolist()
        desc = f"seed {seed} epoch {epoch + 1}"
        batches = _batches(tokenizer, spec, [train[i] for i in order], batch_size, max_length, desc)
        train_loss = _train_epoch(model, batches, optimizer, scheduler, device)
        dev_metrics = spec.metric(predict(model, tokenizer, spec, dev, max_length, batch_size, device), dev)
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "dev": dev_metrics})
        if dev_metrics[spec.main_metric] > best_score:
            best_score, best_epoch = dev_metrics[spec.main_metric], epoch + 1
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    test_metrics = spec.metric(predict(model, tokenizer, spec, test, max_length, batch_size, device), test)
    return {
        "seed": seed,
        "best_epoch": best_epoch,
        "dev": best_score,
        "test": test_metrics,
        "history": history,
    }


def _optimizer(
    model: Any, lr: float, weight_decay: float, warmup_ratio: float, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases and layer norms) with a linear warm-up then decay over ``steps``."""
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * steps), steps)


def _batches(
    tokenizer: Any, spec: TaskSpec, examples: list[Example], batch_size: int, max_length: int, desc: str
) -> Iterator[dict[str, torch.Tensor]]:
    """One epoch's batches in the order of ``examples``, tokenised as they are needed, with a progress bar."""
    for begin in tqdm(range(0, len(examples), batch_size), desc=desc, disable=None, leave=False):
        yield make_batch(tokenizer, spec, examples[begin : begin + batch_size], max_length)


def _train_epoch(
    model: Any,
    batches: Iterable[dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    device: str,
) -> float:
    """One optimiser step per batch (gradients clipped to norm 1); the mean loss, 0 without batches."""
    model.train()
    losses = []
    for batch in batches:
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return float(np.mean(losses)) if losses else 0.0


def finetune_task(
    model: str,
    task: str,
    data_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    seeds: int = 3,
    initial_seed: int = 42,
    subsample_train: int | None = None,
    subsample_eval: int | None = None,
    epochs: int | None = None,
    max_length: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    device: str = "cpu",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run ``seeds`` fine-tuning runs; returns (and writes) per-seed and mean/std test metrics.

    Unset hyper-parameters take the task's recipe (method.md E.1). ``subsample_train`` caps the
    training set and ``subsample_eval`` the dev and test sets (for CPU smoke runs; the report says so).
    """
    if seeds < 1:
        raise BadInputError(f"--seeds must be >= 1, got {seeds}")
    spec = get_task(task)
    started = time.perf_counter()
    data = spec.reader(Path(data_dir))
    splits = used_splits(data, data_dir, subsample_train, subsample_eval)
    train, dev, test = splits["train"], splits["dev"], splits["test"]
    settings = _settings(spec, epochs, batch_size, lr, max_length, device)
    seed_values = [initial_seed + i for i in range(seeds)]
    runs = _run_seeds(model, spec, train, dev, test, seed_values, settings)
    result: dict[str, Any] = {
        "task": spec.name,
        "mode": "finetune",
        "model": str(model),
        "data": str(data_dir),
        "files": data.source,
        "split": "test",
        "sizes": {"used": TaskData(train, dev, test).sizes(), "available": data.sizes()},
        "seeds": seed_values,
        "settings": settings,
        "metric_description": spec.metric_description
        + f"; main metric '{spec.main_metric}', std over seeds (ddof=0)",
        "main_metric": spec.main_metric,
        "test": _over_seeds(runs),
        "baselines": baselines(spec, train, test),
        "dev_best": {"mean": float(np.mean([r["dev"] for r in runs])), "values": [r["dev"] for r in runs]},
        "runs": runs,
        "seconds": time.perf_counter() - started,
    }
    if out_dir is not None:
        from bali.evaluate.report import write_task_outputs

        write_task_outputs(out_dir, result, f"BALI fine-tuning: {spec.name}", overwrite)
    return result


def used_splits(
    data: TaskData,
    data_dir: str | Path,
    train_cap: int | None,
    eval_cap: int | None,
    names: Sequence[str] = SPLITS,
) -> dict[str, list[Example]]:
    """The ``names`` splits as used: train capped at ``train_cap``, dev and test at ``eval_cap`` (the
    same subsample for every seed and every model); an empty one is an error."""
    splits = {
        name: subsample(getattr(data, name), train_cap if name == "train" else eval_cap) for name in names
    }
    for name, examples in splits.items():
        if not examples:
            raise BadInputError(f"the '{name}' split has no examples", data_dir)
    return splits


def _settings(
    spec: TaskSpec,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    max_length: int | None,
    device: str,
) -> dict[str, Any]:
    """The hyper-parameters of every seed's run: those given, the task's recipe for the rest."""
    recipe = spec.recipe
    return {
        "epochs": epochs or recipe.epochs,
        "batch_size": batch_size or recipe.batch_size,
        "lr": lr or recipe.lr,
        "max_length": max_length or recipe.max_length,
        "warmup_ratio": recipe.warmup_ratio,
        "weight_decay": recipe.weight_decay,
        "device": device,
    }


def _run_seeds(
    model: str,
    spec: TaskSpec,
    train: list[Example],
    dev: list[Example],
    test: list[Example],
    seeds: list[int],
    settings: dict[str, Any],
) -> list[dict[str, Any]]:
    """One fine-tuning run per seed, in order, each logging its test metrics."""
    runs = []
    for seed in seeds:
        runs.append(train_one_seed(model, spec, train, dev, test, seed=seed, **settings))
        log.info("%s seed %d: test %s", spec.name, seed, runs[-1]["test"])
    return runs


def _over_seeds(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean, std (ddof=0) and per-seed values of every test metric (the document count is no metric)."""
    keys = [k for k in runs[0]["test"] if k != "documents"]
    return {
        k: {
            "mean": float(np.mean([r["test"][k] for r in runs])),
            "std": float(np.std([r["test"][k] for r in runs])),
            "values": [float(r["test"][k]) for r in runs],
        }
        for k in keys
    }
