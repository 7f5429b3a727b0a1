"""How far trained encoders' probe features moved from their base's, on one task's texts.

Usage (after benchmarks/downstream.py has probed the same models with the same ``--cache``, so
nothing is embedded twice; numbers in benchmarks/budget.md):

    .venv/bin/python benchmarks/probe_drift.py --data ../shared/data --cache /tmp/probe-cache \
        --out /tmp/probe --task chemprot --split dev builtin runs/a/final runs/b/final

The first model is the base. On the split's texts (the capped subset downstream.py probes) it
prints, per model: the mean cosine distance of each text's embedding from the base's, the linear
CKA between the two feature matrices (Kornblith et al. 2019; 1 = the same geometry up to rotation
and scale), and the mean cosine of pairs of different texts (anisotropy: as it rises, the
directions a linear probe separates classes along shrink). A probe can lose while each sentence
stays close to its base embedding; these say whether the geometry the probe reads changed.
"""

from __future__ import annotations

import argparse

import numpy as np

from bali.evaluate.finetune import used_splits
from bali.evaluate.probe import ProbeEncoder
from bali.evaluate.tasks import get_task
from downstream import TASKS, add_shared_arguments, task_inputs

PAIRS = 1000  # texts whose pairwise cosines give the anisotropy (the first ones of the split)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two [n, d] feature matrices of the same n texts."""
    x, y = x - x.mean(0), y - y.mean(0)
    cross = np.linalg.norm(x.T @ y) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine of the distinct pairs among the first ``PAIRS`` rows."""
    unit = x[:PAIRS] / np.linalg.norm(x[:PAIRS], axis=1, keepdims=True)
    sims = unit @ unit.T
    return float(sims[np.triu_indices(len(unit), 1)].mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_shared_arguments(parser)
    parser.add_argument("--task", default="chemprot", choices=list(TASKS))
    parser.add_argument("--split", choices=("train", "dev"), default="dev")
    parser.add_argument("models", nargs="+", help="the base first, then the trained models")
    args = parser.parse_args()

    data_dir, (train_cap, eval_cap) = task_inputs(args.data, args.out, args.task)
    spec = get_task(args.task)
    texts = [
        e.text
        for e in used_splits(spec.reader(data_dir), data_dir, train_cap, eval_cap, (args.split,))[args.split]
    ]
    features = [
        ProbeEncoder(model, max_length=args.max_length, batch_size=64, device="cpu", cache_dir=args.cache)(
            texts
        )
        for model in args.models
    ]
    base = features[0]
    print(f"{args.task} {args.split}: {len(texts)} texts")
    print("| model | cosine distance from base | linear CKA with base | mean pairwise cosine |")
    print("|---|---|---|---|")
    for model, x in zip(args.models, features, strict=True):
        cosine = np.sum(x * base, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(base, axis=1))
        print(
            f"| {model} | {max(0.0, float(np.mean(1.0 - cosine))):.4f} | {linear_cka(x, base):.4f} | {mean_pairwise_cosine(x):.4f} |"
        )


if __name__ == "__main__":
    main()
