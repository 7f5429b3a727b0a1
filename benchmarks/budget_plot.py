"""Plot the budget curves of benchmarks/budget.md from its points table and the runs' metrics.

Usage (the run directories are the scratch trainings named in budget.md; any may be left out):

    .venv/bin/python benchmarks/budget_plot.py --points benchmarks/budget_points.tsv \
        --run preset=/tmp/exp/runs/demo-fix-1000-s29 --run "MLM only=/tmp/exp/runs/demo-mlmonly-1000" \
        --out benchmarks/budget.png

``--points`` is a TSV with the header ``arm  steps  dev_acc1  cos_unrelated`` (one row per scored
model, steps 0 for the base). Each ``--run ARM=DIR`` adds that run's validation name uniformity
(``uniform_names`` in ``DIR/metrics.jsonl``, Wang & Isola 2020) to the third panel, so the drift
is seen step by step and not only at the scored end points.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_points(path: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Arm -> [(steps, dev Acc@1, mean cosine of unrelated names)], sorted by steps."""
    arms: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            arms[row["arm"]].append((int(row["steps"]), float(row["dev_acc1"]), float(row["cos_unrelated"])))
    return {arm: sorted(points) for arm, points in arms.items()}


def read_uniformity(run_dir: Path) -> list[tuple[int, float]]:
    """(step, uniform_names) of every validation record of a run."""
    records = (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line)
    return [
        (r["step"], r["uniform_names"])
        for r in records
        if r.get("split") == "validation" and "uniform_names" in r
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=Path, required=True)
    parser.add_argument("--run", action="append", default=[], help="ARM=RUN_DIR, repeatable")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    arms = read_points(args.points)
    base = arms.pop("base")[0]
    fig, (acc, cos, uni) = plt.subplots(1, 3, figsize=(15, 4.2))
    for arm, points in arms.items():
        steps = [0] + [p[0] for p in points]
        acc.plot(steps, [base[1]] + [p[1] for p in points], marker="o", label=arm)
        cos.plot(steps, [base[2]] + [p[2] for p in points], marker="o", label=arm)
    acc.axhline(base[1], color="grey", linestyle=":", label="base")
    cos.axhline(base[2], color="grey", linestyle=":", label="base")
    for spec in args.run:
        arm, _, run_dir = spec.partition("=")
        steps, values = zip(*read_uniformity(Path(run_dir)), strict=True)
        uni.plot(steps, values, marker=".", label=arm)
    acc.set(title="demo dev Acc@1 (1,000 held-out synonyms)", xlabel="training steps (x16)", ylabel="Acc@1 %")
    cos.set(title="mean cosine of unrelated names", xlabel="training steps (x16)")
    uni.set(title="name uniformity at validation (lower = spread)", xlabel="step")
    for ax in (acc, cos, uni):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
