"""The `bali` command. Thin: parses arguments and calls stage functions.

Each stage registers its own subcommands from ``bali/<stage>/cli.py`` (a ``register(subparsers)``
function), so the command layout mirrors the package layout. Handlers return a result dict and a
one-line summary; :func:`emit` prints one or the other. Exit status: 0 success, 2 bad input, 1 other
errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bali import __version__
from bali.errors import BaliError

# Modules that contribute subcommands, in the order they appear in `bali --help`.
STAGE_CLIS = (
    "bali.kg.cli",
    "bali.corpus.cli",
    "bali.data.cli",
    "bali.train.cli",
    "bali.export",
    "bali.evaluate.cli",
    "bali.pipeline.cli",
)

Handler = Callable[[argparse.Namespace], tuple[str, dict[str, Any]]]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Every command can print machine-readable results instead of its summary line."""
    parser.add_argument("--json", action="store_true", help="print machine-readable results as JSON")


def emit(summary: str, result: dict[str, Any], as_json: bool) -> None:
    """Print the command's one-line summary, or its results as JSON."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(summary)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bali",
        description="Align biomedical language models with biomedical knowledge graphs (BALI).",
    )
    parser.add_argument("--version", action="version", version=f"bali {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in STAGE_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a stage not built yet must not break the others
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def configure_logging(verbose: bool) -> None:
    """bali's own INFO lines always; other libraries' only with ``--verbose``.

    Without it, third-party loggers show warnings and errors only (faiss logs its loader attempts,
    ``Could not load library with AVX2 support``, at INFO; Accelerate every checkpoint file), and
    transformers' per-load "Loading weights" progress bars are off. An explicit
    ``HF_HUB_DISABLE_PROGRESS_BARS`` in the environment wins.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("bali").setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose or "HF_HUB_DISABLE_PROGRESS_BARS" in os.environ:
        return
    # transformers reads this when it is first imported (handlers import it lazily); a process that
    # has imported it already (tests calling main) is switched off directly.
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is not None:
        hf_logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        summary, result = handler(args)
    except BaliError as exc:
        print(f"bali {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"bali {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    emit(summary, result, getattr(args, "json", False))
    return 0
