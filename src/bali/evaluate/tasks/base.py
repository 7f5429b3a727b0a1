"""What a task reader returns and the metrics the BLURB/LinkBERT protocols use.

A task is a :class:`TaskSpec` (kind, labels, metric, recipe defaults) plus a reader that turns a
directory into :class:`TaskData`. Adding a task is one module in this package calling
:func:`bali.evaluate.tasks.register`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bali.errors import BadInputError

Kind = Literal["single_label", "multi_label", "regression", "multiple_choice"]
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Example:
    """One input: a text (or pair) and its label.

    ``label`` is a class index (single-label, multiple choice), a list of class indices
    (multi-label) or a float (regression); ``choices`` holds the options of a multiple-choice item.
    """

    id: str
    text: str
    text_pair: str | None = None
    label: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning defaults (LinkBERT BLURB scripts / BALI QA scripts, method.md section E)."""

    batch_size: int = 32
    lr: float = 2e-5
    epochs: int = 10
    max_length: int = 256
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0


@dataclass
class TaskSpec:
    """A named task: how to read it, what it predicts and how it is scored."""

    name: str
    kind: Kind
    labels: list[str]
    metric: Callable[[np.ndarray, Sequence[Example]], dict[str, float]]
    metric_description: str
    main_metric: str
    reader: Callable[[Path], TaskData]
    recipe: Recipe = field(default_factory=Recipe)


@dataclass
class TaskData:
    """Train, dev and test examples; ``source`` names the files read (for the report)."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    source: dict[str, str] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)}


def read_splits(
    directory: Path, read_file: Callable[[Path], list[Any]], names: Sequence[str] = ("{split}.tsv",)
) -> TaskData:
    """Read train/dev/test with ``read_file``; every task format lays its splits out this way."""
    files = {s: split_file(directory, s, names) for s in SPLITS}
    return TaskData(*(read_file(files[s]) for s in SPLITS), {s: str(p) for s, p in files.items()})


def split_file(directory: Path, split: str, names: Sequence[str]) -> Path:
    """The first existing file among ``names`` (with ``{split}`` filled in); missing = bad input."""
    if not directory.is_dir():
        raise BadInputError("task data directory not found", directory)
    candidates = [directory / n.format(split=split) for n in names]
    for path in candidates:
        if path.is_file():
            return path
    raise BadInputError(
        f"the '{split}' split is missing (looked for {', '.join(p.name for p in candidates)})", directory
    )


def read_tsv(path: Path, columns: int, header: Sequence[str] | None = None) -> list[tuple[int, list[str]]]:
    """Rows of a tab-separated file as (line number, fields); checks the width and optional header."""
    rows: list[tuple[int, list[str]]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for line_no, row in enumerate(reader, start=1):
            if not row or not any(c.strip() for c in row):
                continue
            if line_no == 1 and header is not None:
                if [c.strip() for c in row] != list(header):
                    raise BadInputError(f"expected the header {'<TAB>'.join(header)}", path, 1)
                continue
            if len(row) != columns:
                raise BadInputError(
                    f"expected {columns} tab-separated columns, found {len(row)}", path, line_no
                )
            rows.append((line_no, row))
    return rows


def label_index(labels: Sequence[str], value: str, path: Path, line: int) -> int:
    """Index of a label string; an unknown label is bad input."""
    try:
        return list(labels).index(value)
    except ValueError:
        raise BadInputError(f"unknown label '{value}' (expected one of {list(labels)})", path, line) from None


# ---------------------------------------------------------------------------------------------- metrics


def accuracy(predictions: np.ndarray, examples: Sequence[Example]) -> dict[str, float]:
    """Share of exact class predictions."""
    gold = np.array([e.label for e in examples])
    return {"accuracy": float(np.mean(predictions == gold)) if len(gold) else 0.0}


def micro_prf_without(negative: int) -> Callable[[np.ndarray, Sequence[Example]], dict[str, float]]:
    """Micro P/R/F1 over all classes except ``negative`` (BLURB's PRF1 for relation tasks).

    LinkBERT drops label id 0 of the *sorted* label strings, which is the negative class only by luck
    of spelling; here the negative class is named explicitly.
    """

    def metric(predictions: np.ndarray, examples: Sequence[Example]) -> dict[str, float]:
        gold = np.array([e.label for e in examples])
        tp = float(np.sum((predictions == gold) & (gold != negative)))
        n_pred = float(np.sum(predictions != negative))
        n_gold = float(np.sum(gold != negative))
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_gold if n_gold else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": p, "recall": r, "f1": f}

    return metric


def pearson(predictions: np.ndarray, examples: Sequence[Example]) -> dict[str, float]:
    """Pearson correlation of predicted and gold scores (0 when either is constant)."""
    gold = np.array([e.label for e in examples], dtype=np.float64)
    pred = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if len(gold) < 2 or np.ptp(gold) == 0 or np.ptp(pred) == 0:  # ptp: exact for a constant
        return {"pearson": 0.0}
    return {"pearson": float(np.corrcoef(pred, gold)[0, 1])}


def hoc_document_f1(predictions: np.ndarray, examples: Sequence[Example]) -> dict[str, float]:
    """BLURB HoC: union sentence labels per document (id prefix before ``_``), then example-based
    P/R/F1 averaged over documents (BLUE/LinkBERT ``get_p_r_f_arrary``).

    The reference divides by the gold set size and crashes on documents without hallmarks; here a
    document with empty gold and empty prediction scores 1, and empty gold with a prediction 0.
    """
    docs: dict[str, tuple[set[int], set[int]]] = {}
    for row, example in zip(predictions, examples, strict=True):
        doc = example.id.split("_")[0]
        gold_set, pred_set = docs.setdefault(doc, (set(), set()))
        gold_set.update(example.label)
        pred_set.update(np.nonzero(row)[0].tolist())
    ps, rs, fs = [], [], []
    for gold_set, pred_set in docs.values():
        if not gold_set:
            value = 1.0 if not pred_set else 0.0
            ps.append(value)
            rs.append(value)
            fs.append(value)
            continue
        tt = len(gold_set & pred_set)
        p = tt / len(pred_set) if pred_set else 0.0
        r = tt / len(gold_set)
        ps.append(p)
        rs.append(r)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    return {
        "precision": float(np.mean(ps)) if ps else 0.0,
        "recall": float(np.mean(rs)) if rs else 0.0,
        "f1": float(np.mean(fs)) if fs else 0.0,
        "documents": float(len(docs)),
    }


# -------------------------------------------------------------------------------------------- baselines


def _constant_candidates(spec: TaskSpec, train: Sequence[Example]) -> tuple[Any, list[tuple[str, Any]]]:
    """The majority prediction learnt from ``train`` and every constant prediction worth trying."""
    n = len(spec.labels)
    if spec.kind == "regression":
        mean = float(np.mean([float(e.label) for e in train])) if train else 0.0
        return mean, [("train mean", mean)]
    if spec.kind == "multi_label":
        frequency = np.zeros(n)
        for example in train:
            frequency[list(example.label)] += 1
        majority = (frequency > len(train) / 2).astype(int)
        constants = [(f"always {spec.labels[k]}", np.eye(n, dtype=int)[k]) for k in range(n)]
        return majority, [
            *constants,
            ("all labels", np.ones(n, dtype=int)),
            ("no label", np.zeros(n, dtype=int)),
        ]
    counts = np.bincount([int(e.label) for e in train], minlength=n)
    return int(np.argmax(counts)), [(f"always {label}", k) for k, label in enumerate(spec.labels)]


def baselines(spec: TaskSpec, train: Sequence[Example], evaluated: Sequence[Example]) -> dict[str, Any]:
    """Score on ``evaluated`` (the reported split) of the majority prediction (from train) and of the
    best constant prediction.

    A model that does not beat both has learnt nothing usable: "yes" for every BioASQ question or
    "related" for every GAD sentence already scores 0.67 / 0.70. The best constant is chosen on the
    evaluated split, so it is an upper bound for any input-blind predictor, not a fair competitor.
    """

    def score(value: Any) -> float:
        return float(spec.metric(np.array([value] * len(evaluated)), evaluated)[spec.main_metric])

    majority, constants = _constant_candidates(spec, train)
    scored = [(name, score(value)) for name, value in constants]
    best_name, best = max(scored, key=lambda item: item[1])
    return {
        "metric": spec.main_metric,
        "majority": score(majority),
        "best_constant": best,
        "best_constant_is": best_name,
    }
