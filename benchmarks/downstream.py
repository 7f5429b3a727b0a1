"""Frozen-encoder probe of several models on the BLURB/QA tasks (numbers in benchmarks/downstream.md).

Usage (data from the shared data folder, see its README; nothing here is committed):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/downstream.py --data ../shared/data \
        --cache /tmp/probe-cache --out /tmp/probe builtin runs/demo/run/final

For each model and task it runs `bali eval task --mode probe` (`bali.evaluate.probe.probe_task`),
writes one results directory per (model, task) under ``--out``, and prints a Markdown table with
the majority and best-constant baselines beside the scores. ChemProt comes from
``chemprot_bioelectra/`` (BLURB's copy lacks train and test), rewritten in BLURB's
``id<TAB>sentence<TAB>label`` layout under ``--out``; its splits are capped at a fixed random 5,000
examples each (``CAPS``), which keeps one model's embedding pass in minutes on the 2-core box.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bali.evaluate.probe import probe_task

TASKS = {
    "biosses": "blurb/BIOSSES",
    "bioasq": "blurb/BioASQ",
    "pubmedqa": "pubmedqa",
    "gad": "blurb/GAD",
    "hoc": "blurb/HoC",
    "chemprot": "chemprot_bioelectra",
}

# (train, dev and test) caps per task: the same fixed subset for every model (bali.evaluate.finetune.subsample).
CAPS = {"chemprot": (5000, 5000)}


def blurb_chemprot(source: Path, out: Path) -> Path:
    """``sentence<TAB>label`` with a header -> BLURB's ``id<TAB>sentence<TAB>label`` (label ``false``)."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        lines = (source / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        rows = []
        for i, line in enumerate(lines):
            sentence, label = line.rsplit("\t", 1)
            rows.append(f"{split}{i}\t{sentence}\t{'false' if label == 'False' else label}\n")
        (out / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
    return out


def add_shared_arguments(parser: argparse.ArgumentParser) -> None:
    """The data, output, cache and length arguments this script and probe_drift.py share: the same
    values give the same texts and the same embedding cache keys."""
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument(
        "--out", type=Path, required=True, help="results directories (and ChemProt's BLURB layout) go here"
    )
    parser.add_argument("--cache", type=Path, required=True, help="embedding cache directory")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per text (part of the cache key)")


def task_inputs(data: Path, out: Path, task: str) -> tuple[Path, tuple[int | None, int | None]]:
    """The task's data folder (ChemProt rewritten under ``out``) and its (train, dev/test) caps."""
    folder = data / TASKS[task]
    if task == "chemprot":
        folder = blurb_chemprot(folder, out / "chemprot_blurb")
    return folder, CAPS.get(task, (None, None))


def split_score(result: dict) -> str:
    """The main metric on the probe's scored split, with any zero-shot score beside it."""
    scores = result[result["split"]]
    extra = "".join(f" ({k} {v['mean']:.4f})" for k, v in scores.items() if k.startswith("zero_shot"))
    return f"{scores[result['main_metric']]['mean']:.4f}{extra}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_shared_arguments(parser)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument(
        "--split",
        choices=("test", "dev"),
        default="test",
        help="the split scored: dev when choosing settings (test is then never embedded or scored)",
    )
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()

    rows = ["| task | metric | majority | best constant | " + " | ".join(args.models) + " |"]
    rows.append("|---" * (4 + len(args.models)) + "|")
    for task in args.tasks:
        data, (train_cap, eval_cap) = task_inputs(args.data, args.out, task)
        scores, result = [], None
        for index, model in enumerate(args.models):
            result = probe_task(
                model,
                task,
                data,
                args.out / f"{task}-{index}",
                subsample_train=train_cap,
                subsample_eval=eval_cap,
                split=args.split,
                max_length=args.max_length,
                cache_dir=args.cache,
                overwrite=True,
            )
            scores.append(split_score(result))
            print(f"{task} {model}: {args.split} {scores[-1]} in {result['seconds']:.0f} s", flush=True)
        assert result is not None
        b = result["baselines"]
        baselines = f"{b['majority']:.4f} | {b['best_constant']:.4f} ({b['best_constant_is']})"
        rows.append(f"| {task} | {b['metric']} | {baselines} | " + " | ".join(scores) + " |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
