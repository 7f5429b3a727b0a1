"""Frozen-encoder probe of a downstream task (SentEval style): embed once, fit a linear model.

Fine-tuning a sentence encoder on BLURB takes hours per task on a CPU, and at budgets that fit it
learns nothing (every BioASQ answer "yes"). The probe asks a narrower question that a CPU can
answer: how much of the task is linearly readable from the frozen embeddings. Each text is
mean-pooled once (cached on disk by model and texts), pairs become ``[u, v, |u - v|, u * v]``, and
a logistic regression (one-vs-rest for multi-label) or ridge regression is fitted on train, with its
regularisation chosen on dev. lbfgs and ridge are deterministic: one run per model, no seeds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bali.errors import BadInputError
from bali.evaluate.finetune import used_splits
from bali.evaluate.tasks import get_task
from bali.evaluate.tasks.base import SPLITS, Example, TaskData, TaskSpec, baselines

REGULARISATION = (1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0)  # C of the logistic regression; ridge alpha = 1 / C


def model_fingerprint(model: str) -> str:
    """What identifies the weights: the resolved path and its files' sizes and modification times."""
    from bali.lm import resolve_model

    resolved = Path(resolve_model(model))
    if not resolved.is_dir():
        return str(resolved)
    files = sorted(p for p in resolved.rglob("*") if p.is_file())
    return str(resolved) + "".join(f"|{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


class ProbeEncoder:
    """Mean-pooled, L2-normalised embeddings of one model's texts, read from / written to ``cache_dir``.

    A probe embeds up to six text lists (texts and pairs of three splits): the weights are
    fingerprinted once and loaded on the first cache miss only, so a warm cache loads no model.
    """

    def __init__(
        self, model: str, *, max_length: int, batch_size: int, device: str, cache_dir: str | Path | None
    ) -> None:
        self.model, self.max_length, self.batch_size, self.device = model, max_length, batch_size, device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._key = f"{model_fingerprint(model)}|{max_length}".encode()
        self._loaded: tuple[Any, Any] | None = None

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        from bali.evaluate.encode import encode_texts
        from bali.lm import load_encoder, load_tokenizer

        digest = hashlib.sha256(self._key)
        for text in texts:
            digest.update(text.encode("utf-8") + b"\0")
        cached = self.cache_dir / f"{digest.hexdigest()[:32]}.npy" if self.cache_dir is not None else None
        if cached is not None and cached.is_file():
            return np.load(cached)
        if self._loaded is None:
            self._loaded = (load_encoder(self.model), load_tokenizer(self.model))
        vectors = encode_texts(
            *self._loaded,
            texts,
            batch_size=self.batch_size,
            max_length=self.max_length,
            device=self.device,
            desc=f"embedding {len(texts)} texts",
        )["mean"]
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".tmp.npy")
            np.save(partial, vectors)
            partial.replace(cached)
        return vectors


def features(first: np.ndarray, second: np.ndarray | None) -> np.ndarray:
    """A text's embedding, or SentEval's pair features ``[u, v, |u - v|, u * v]``."""
    if second is None:
        return first
    return np.concatenate([first, second, np.abs(first - second), first * second], axis=1)


def _targets(spec: TaskSpec, examples: Sequence[Example]) -> np.ndarray:
    if spec.kind == "multi_label":
        rows = np.zeros((len(examples), len(spec.labels)), dtype=int)
        for i, example in enumerate(examples):
            rows[i, list(example.label)] = 1
        return rows
    if spec.kind == "regression":
        return np.array([float(e.label) for e in examples])
    return np.array([int(e.label) for e in examples])


def _estimator(spec: TaskSpec, c: float) -> Any:
    """A standardised linear model for the task's kind (lbfgs / closed-form ridge: no randomness)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if spec.kind == "regression":
        head: Any = Ridge(alpha=1.0 / c)
    elif spec.kind == "multi_label":
        head = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000))
    else:
        head = LogisticRegression(C=c, max_iter=2000)
    return make_pipeline(StandardScaler(), head)


def fit_and_score(
    spec: TaskSpec, x: dict[str, np.ndarray], splits: dict[str, list[Example]]
) -> dict[str, Any]:
    """Fit one model per regularisation value on train, keep the best on dev, score it on dev and,
    when ``splits`` has one, on test (a dev-only probe never embeds test)."""
    y_train = _targets(spec, splits["train"])
    tried = []
    best: tuple[float, float, Any] | None = None
    for c in REGULARISATION:
        estimator = _estimator(spec, c).fit(x["train"], y_train)
        dev_score = spec.metric(estimator.predict(x["dev"]), splits["dev"])[spec.main_metric]
        tried.append({"c": c, "dev": float(dev_score)})
        if best is None or dev_score > best[0]:
            best = (float(dev_score), c, estimator)
    assert best is not None
    run: dict[str, Any] = {"c": best[1], "tried": tried}
    for split in ("dev", "test"):
        if split in splits:
            scores = spec.metric(best[2].predict(x[split]), splits[split])
            run[split] = {k: float(v) for k, v in scores.items()}
    return run


def _split_features(
    embed: ProbeEncoder, spec: TaskSpec, splits: dict[str, list[Example]], has_pairs: bool, scored: str
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Features per split, and for regression pairs the zero-shot cosine's score on ``scored``.

    Each split is embedded (and cached) on its own, so a dev-only probe's train and dev embeddings
    serve the test run that follows it.
    """
    x, extra = {}, {}
    for name, examples in splits.items():
        first = embed([e.text for e in examples])
        second = embed([e.text_pair or "" for e in examples]) if has_pairs else None
        x[name] = features(first, second)
        if name == scored and second is not None and spec.kind == "regression":
            cosine = np.sum(first * second, axis=1)
            extra["zero_shot_cosine_" + spec.main_metric] = spec.metric(cosine, examples)[spec.main_metric]
    return x, extra


def _read_splits(
    spec: TaskSpec, data_dir: Path, split: str, train_cap: int | None, eval_cap: int | None
) -> tuple[TaskData, dict[str, list[Example]]]:
    """The task's data and the capped splits the probe uses: train, dev and, unless ``split`` is dev,
    test (a dev-only probe drops test as soon as it is parsed)."""
    if split not in ("dev", "test"):
        raise BadInputError(f"unknown split '{split}': expected 'dev' or 'test'")
    data = spec.reader(data_dir)
    names = SPLITS if split == "test" else ("train", "dev")
    return data, used_splits(data, data_dir, train_cap, eval_cap, names)


def probe_task(
    model: str,
    task: str,
    data_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    split: str = "test",
    subsample_train: int | None = None,
    subsample_eval: int | None = None,
    max_length: int = 256,
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Probe ``model`` on ``task``; the result has the shape of :func:`finetune_task`'s (one run).

    ``split`` is the one reported: ``test``, or ``dev`` when choosing settings, in which case the
    test examples are dropped as soon as they are parsed, never embedded, fitted or scored.
    """
    spec = get_task(task)
    if spec.kind == "multiple_choice":
        raise BadInputError(f"--mode probe has no multiple-choice head ('{spec.name}'); use --mode finetune")
    started = time.perf_counter()
    data, splits = _read_splits(spec, Path(data_dir), split, subsample_train, subsample_eval)
    encoder = ProbeEncoder(
        model, max_length=max_length, batch_size=batch_size, device=device, cache_dir=cache_dir
    )
    has_pairs = any(e.text_pair is not None for examples in splits.values() for e in examples)
    x, extra = _split_features(encoder, spec, splits, has_pairs, split)
    run = fit_and_score(spec, x, splits)
    run[split].update(extra)
    result: dict[str, Any] = {
        "task": spec.name,
        "mode": "probe",
        "model": str(model),
        "data": str(data_dir),
        "files": data.source,
        "split": split,
        "sizes": {"used": {k: len(v) for k, v in splits.items()}, "available": data.sizes()},
        "seeds": [],
        "settings": {
            "max_length": max_length,
            "pooling": "mean",
            "features": "[u, v, |u - v|, u * v]" if has_pairs else "u",
            "regularisation_grid": list(REGULARISATION),
            "chosen_c": run["c"],
        },
        "metric_description": spec.metric_description
        + f"; frozen {model} (mean pooling), linear probe chosen on dev; main metric '{spec.main_metric}'",
        "main_metric": spec.main_metric,
        split: {k: {"mean": v, "std": 0.0, "values": [v]} for k, v in run[split].items() if k != "documents"},
        "baselines": baselines(spec, splits["train"], splits[split]),
        "dev_best": {"mean": run["dev"][spec.main_metric], "values": [run["dev"][spec.main_metric]]},
        "runs": [run],
        "seconds": time.perf_counter() - started,
    }
    if out_dir is not None:
        from bali.evaluate.report import write_task_outputs

        write_task_outputs(out_dir, result, f"BALI frozen-encoder probe: {spec.name}", overwrite)
    return result
