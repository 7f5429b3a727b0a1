"""`bali train`: the command-line face of :func:`bali.train.trainer.train`.

Runs unchanged under ``accelerate launch`` (DDP, DeepSpeed, several nodes); see configs/accelerate/.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bali.cli import add_json_flag


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bali train``."""
    parser = subparsers.add_parser(
        "train",
        help="continue pre-training an LM with MLM + KG alignment (Accelerate)",
        description="Train BALI on a dataset from `bali data build`. Without --data/--out the dataset is "
        "OUT_DIR/data and the run directory OUT_DIR/train, with OUT_DIR from the config's out_dir.",
    )
    parser.add_argument("--config", help="YAML config (defaults: the published configuration)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value (repeatable)"
    )
    parser.add_argument("--data", help="training dataset directory (bali data build)")
    parser.add_argument("--model", help="LM: 'builtin', a local directory or a cached hub id (model.name)")
    parser.add_argument("--out", help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue from the latest good checkpoint")
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help="with --resume: accept a new train.max_steps or train.epochs (any other change is refused)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_json_flag(parser)
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from bali.config import load_config
    from bali.train.distributed import end_distributed
    from bali.train.trainer import train

    overrides = list(args.set)
    if args.model:
        overrides.append(f"model.name={args.model}")
    config = load_config(args.config, overrides)
    data_dir = Path(args.data) if args.data else Path(config.out_dir) / "data"
    out_dir = Path(args.out) if args.out else Path(config.out_dir) / "train"
    result = train(
        config,
        data_dir,
        out_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        allow_config_change=args.allow_config_change,
    )
    end_distributed()
    train_losses = result.get("train") or {}
    summary = f"trained {result['steps']} steps -> {result['final_dir']}"
    if train_losses:
        summary += f" (loss {train_losses['loss']:.4f})"
    return summary, result
