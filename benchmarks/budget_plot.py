"""Plot the budget curves of benchmarks/budget.md from its points tables and the runs' metrics.

Usage (every input is committed, so the plot can be redrawn after the scratch runs are gone):

    .venv/bin/python benchmarks/budget_plot.py \
        --points "demo dev (1,000 held-out synonyms)=benchmarks/budget_points_demo.tsv" \
        --points "BC5CDR-disease dev (4,228 mentions)=benchmarks/budget_points_bc5cdr.tsv" \
        --uniformity benchmarks/budget_uniformity.tsv --out benchmarks/budget.png

Each ``--points TITLE=TSV`` (header ``arm  steps  dev_acc1  cos_unrelated``, one row per scored
model, steps 0 for the base) gets its own Acc@1 panel; the rows with a ``cos_unrelated`` value also
go into the panel of the mean cosine of unrelated names. The last panel shows each run's validation
name uniformity (``uniform_names`` of ``metrics.jsonl``, Wang & Isola 2020), so the drift is seen step
by step and not only at the scored end points: from ``--uniformity TSV`` (header ``arm  step
uniform_names``, the series copied into the repository) and from each ``--run ARM=DIR`` (a run
directory's ``metrics.jsonl``, for a run not yet copied).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Point = tuple[int, float, float | None]
T = TypeVar("T")


def read_by_arm(path: Path, point: Callable[[dict[str, str]], T]) -> dict[str, list[T]]:
    """Arm -> its rows of a TSV with an ``arm`` column, each made a point by ``point``, sorted."""
    arms: dict[str, list[T]] = defaultdict(list)
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            arms[row["arm"]].append(point(row))
    return {arm: sorted(points) for arm, points in arms.items()}


def read_points(path: Path) -> dict[str, list[Point]]:
    """Arm -> [(steps, dev Acc@1, mean cosine of unrelated names or None)], sorted by steps."""

    def point(row: dict[str, str]) -> Point:
        cosine = float(row["cos_unrelated"]) if row["cos_unrelated"] else None
        return int(row["steps"]), float(row["dev_acc1"]), cosine

    return read_by_arm(path, point)


def plot_points(
    title: str, arms: dict[str, list[Point]], acc: plt.Axes, cos: plt.Axes, colours: dict[str, str]
) -> None:
    """One corpus's Acc@1 curves on ``acc``; those arms that carry cosines also on ``cos``.

    ``colours`` gives an arm the same colour in every panel (new arms take the next free one).
    """
    base = arms.pop("base")[0]
    for arm, points in arms.items():
        colour = colours.setdefault(arm, f"C{len(colours)}")
        steps = [0] + [p[0] for p in points]
        acc.plot(steps, [base[1]] + [p[1] for p in points], marker="o", label=arm, color=colour)
        if base[2] is not None and all(p[2] is not None for p in points):
            cos.plot(steps, [base[2]] + [p[2] for p in points], marker="o", label=arm, color=colour)
    acc.axhline(base[1], color="grey", linestyle=":", label="base")
    if base[2] is not None:
        cos.axhline(base[2], color="grey", linestyle=":", label=f"base ({title})")
    acc.set(title=title, xlabel="training steps (x16)", ylabel="Acc@1 %")


Series = list[tuple[int, float]]


def read_uniformity(run_dir: Path) -> Series:
    """(step, uniform_names) of every validation record of a run."""
    records = (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line)
    return [
        (r["step"], r["uniform_names"])
        for r in records
        if r.get("split") == "validation" and "uniform_names" in r
    ]


def read_uniformity_table(path: Path) -> dict[str, Series]:
    """Arm -> [(step, uniform_names)] from a committed TSV, sorted by step."""
    return read_by_arm(path, lambda row: (int(row["step"]), float(row["uniform_names"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", action="append", required=True, help="TITLE=TSV, repeatable")
    parser.add_argument("--uniformity", type=Path, help="TSV of validation name uniformity per arm")
    parser.add_argument("--run", action="append", default=[], help="ARM=RUN_DIR, repeatable")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fig, axes = plt.subplots(1, len(args.points) + 2, figsize=(5 * (len(args.points) + 2), 4.2))
    *accs, cos, uni = axes
    colours: dict[str, str] = {}
    for spec, acc in zip(args.points, accs, strict=True):
        title, _, path = spec.partition("=")
        plot_points(title, read_points(Path(path)), acc, cos, colours)
    series = read_uniformity_table(args.uniformity) if args.uniformity else {}
    for spec in args.run:
        arm, _, run_dir = spec.partition("=")
        series[arm] = read_uniformity(Path(run_dir))
    for arm, points in series.items():
        steps, values = zip(*points, strict=True)
        uni.plot(steps, values, marker=".", label=arm, linestyle="--")
    cos.set(title="mean cosine of unrelated names (dev)", xlabel="training steps (x16)")
    uni.set(title="name uniformity at validation (lower = spread)", xlabel="step")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
