"""`bali run CONFIG.yaml` and `bali demo`."""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import Any

from bali.cli import add_json_flag
from bali.config import load_config
from bali.evaluate.report import format_paired
from bali.pipeline.run import STAGES, Pipeline

DEMO_PRESET = "demo.yaml"


def demo_config_path() -> Path:
    """The demo preset ships inside the package (configs/demo.yaml links to it)."""
    return Path(str(resources.files("bali.resources").joinpath(DEMO_PRESET)))


def _run(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    config = load_config(args.config, args.set)
    stages = STAGES[: STAGES.index(args.until) + 1] if args.until else STAGES
    report = Pipeline(config).run(stages, force_from=args.from_stage)
    if report["process_index"]:
        return (
            f"bali run: process {report['process_index']} done (the main process reports the stages)",
            report,
        )
    ran = [s for s, r in report["stages"].items() if r["status"] == "ran"]
    return (
        f"bali run: {len(ran)} stage(s) ran, {len(stages) - len(ran)} up to date; artefacts in {config.out_dir}",
        report,
    )


def linking_table(results: dict[str, Any]) -> list[str]:
    """Base vs BALI rows of the linking results, for the terminal: every subset but "no-composite"."""
    lines = [f"{'model':<8} {'subset':<22} {'pooling':<8} {'Acc@1':>7} {'Acc@5':>7} {'MRR':>7} {'n':>6}"]
    first = results["rows"][0] if results.get("rows") else {}
    rows = [
        r
        for r in results.get("rows", [])
        if r.get("protocol") == first.get("protocol") and r.get("subset") != "no-composite"
    ]
    subsets = list(dict.fromkeys(r["subset"] for r in rows))
    for row in sorted(rows, key=lambda r: subsets.index(r["subset"])):
        lines.append(
            f"{row['model']:<8} {row['subset']:<22} {row['pooling']:<8} {row['acc@1']:>7.3f} "
            f"{row['acc@5']:>7.3f} {row['mrr']:>7.3f} {row['mentions']:>6}"
        )
    return lines


def _demo(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    overrides = [f"out_dir={args.out}", *args.set]
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    config = load_config(demo_config_path(), overrides)
    report = Pipeline(config).run(force_from=args.from_stage)
    eval_dir = Path(config.out_dir) / "eval"
    results = json.loads((eval_dir / "results.json").read_text(encoding="utf-8"))
    lines = ["", "Held-out-synonym entity linking (zero-shot, embedded KG):", *linking_table(results)]
    lines += format_paired(results)
    lines.append(f"Report: {eval_dir / 'report.md'}")
    print("\n".join(lines))
    report["linking"] = results
    return f"bali demo: done; report at {eval_dir / 'report.md'}", report


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the stages a config describes, skipping what is up to date")
    run.add_argument("config", help="YAML config (see configs/)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    run.add_argument(
        "--from", dest="from_stage", choices=STAGES, help="force this stage and the ones after it"
    )
    run.add_argument(
        "--until",
        choices=STAGES,
        help="stop after this stage (e.g. `--until data` prepares the data once before a multi-GPU launch)",
    )
    add_json_flag(run)
    run.set_defaults(handler=_run)

    demo = subparsers.add_parser("demo", help="the embedded default end to end (offline, CPU, minutes)")
    demo.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    demo.add_argument("--max-steps", type=int, help="training steps (default: the preset's budget)")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    demo.add_argument(
        "--from", dest="from_stage", choices=STAGES, help="force this stage and the ones after it"
    )
    add_json_flag(demo)
    demo.set_defaults(handler=_demo)
