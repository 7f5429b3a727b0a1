"""`bali data build`: the command-line face of :func:`bali.data.encode.build_dataset`."""

from __future__ import annotations

import argparse
from typing import Any

from bali.cli import add_json_flag
from bali.data.config import DataConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bali data build``."""
    data = subparsers.add_parser(
        "data", help="build the training dataset (tokenised sentences, names, graph)"
    )
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    build = commands.add_parser(
        "build",
        help="tokenise a linked corpus and the KG names into a training dataset",
        description="Tokenise a linked corpus and the names of every node that can appear in a batch "
        "with MODEL's fast tokenizer, into memory-mappable shards the trainer reads.",
    )
    defaults = DataConfig()
    build.add_argument("--kg", required=True, help="KG artefact directory (bali kg build)")
    build.add_argument("--corpus", required=True, help="linked-corpus directory (bali corpus link)")
    build.add_argument(
        "--model", default="builtin", help="'builtin', a local model directory or a cached hub id"
    )
    build.add_argument("--out", required=True, help="output dataset directory")
    build.add_argument(
        "--max-length", type=int, default=defaults.max_length, help="sentence tokens incl. specials"
    )
    build.add_argument(
        "--name-max-length", type=int, default=defaults.name_max_length, help="name tokens incl. specials"
    )
    build.add_argument(
        "--validation-fraction",
        type=float,
        default=defaults.validation_fraction,
        help="share of sentences held out",
    )
    build.add_argument(
        "--keep-sentences-without-mentions", action="store_true", help="keep them for MLM only"
    )
    build.add_argument(
        "--no-lowercase", action="store_true", help="do not lower-case names and relation phrases"
    )
    build.add_argument(
        "--max-errors", type=int, default=0, help="tolerate this many bad mentions (counted in the manifest)"
    )
    build.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    add_json_flag(build)
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from pydantic import ValidationError

    from bali.data.encode import build_dataset
    from bali.errors import BadInputError

    try:
        config = DataConfig(
            max_length=args.max_length,
            name_max_length=args.name_max_length,
            validation_fraction=args.validation_fraction,
            drop_sentences_without_mentions=not args.keep_sentences_without_mentions,
            lowercase=not args.no_lowercase,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadInputError(f"invalid data settings: {problems}") from exc
    manifest = build_dataset(
        args.kg,
        args.corpus,
        args.model,
        args.out,
        config,
        overwrite=args.overwrite,
        max_errors=args.max_errors,
    )
    counts = manifest["counts"]
    summary = (
        f"{args.out}: {counts['sentences_kept']} of {counts['sentences_read']} sentences "
        f"({counts['splits']['train']} train, {counts['splits']['validation']} validation), "
        f"{counts['entities']} entities, {counts['nodes']} nodes, {counts['distinct_name_sequences']} names"
    )
    return summary, {"out": str(args.out), **manifest}
