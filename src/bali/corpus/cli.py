"""`bali corpus link`: thin argument parsing around :func:`bali.corpus.link.link_corpus`."""

from __future__ import annotations

import argparse
from typing import Any

from bali.cli import add_json_flag
from bali.corpus.config import CorpusConfig
from bali.errors import BadInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bali corpus link``."""
    corpus = subparsers.add_parser("corpus", help="build the linked corpus (sentences + KG mentions)")
    commands = corpus.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND", required=True)
    link = commands.add_parser(
        "link",
        help="split documents into sentences and link mentions to KG nodes",
        description="Read documents (or the KG's own definitions with --builtin), split them into "
        "sentences and link mentions to KG nodes: gold annotations through the KG's cross-references, "
        "otherwise a dictionary linker over every KG name.",
    )
    _add_io_arguments(link)
    _add_gold_arguments(link)
    _add_linker_arguments(link.add_argument_group("dictionary linker"))
    add_json_flag(link)
    link.set_defaults(handler=handle_link)


def _add_io_arguments(link: argparse.ArgumentParser) -> None:
    """Where the KG, the documents and the output are, and how many bad records to tolerate."""
    link.add_argument(
        "--kg", required=True, metavar="DIR", help="KG artefact directory (output of `bali kg build`)"
    )
    source = link.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", metavar="FILE", help="input files")
    source.add_argument("--builtin", action="store_true", help="link the KG's textual definitions")
    link.add_argument("--format", choices=["text", "jsonl", "pubtator", "bern2"], default="text")
    link.add_argument(
        "--text-unit",
        choices=["line", "file"],
        default="line",
        help="plain text: a document per line or file",
    )
    link.add_argument("--out", required=True, metavar="DIR", help="output directory")
    link.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    link.add_argument(
        "--max-errors",
        type=int,
        default=0,
        metavar="N",
        help="tolerate up to N bad records, counted in the manifest",
    )


def _add_gold_arguments(link: argparse.ArgumentParser) -> None:
    """Which mentions to use, and which gold annotations to keep or treat as errors."""
    link.add_argument(
        "--mentions",
        choices=["auto", "gold", "dictionary"],
        default="auto",
        help="gold annotations (pubtator, bern2) or the dictionary linker; auto picks by format",
    )
    link.add_argument(
        "--entity-types",
        nargs="+",
        default=[],
        metavar="TYPE",
        help="keep only gold annotations of these types",
    )
    link.add_argument(
        "--unknown-ids",
        choices=["count", "error"],
        default="count",
        help="gold ids the KG lacks: count them in the manifest, or treat them as bad input",
    )


def _add_linker_arguments(linker: argparse._ArgumentGroup) -> None:
    """Settings of the dictionary linker (text without gold annotations)."""
    linker.add_argument(
        "--min-name-length", type=int, default=3, metavar="N", help="shortest name linked (characters)"
    )
    linker.add_argument(
        "--acronym-max-length",
        type=int,
        default=5,
        metavar="N",
        help="all-capitals names up to this length match case-sensitively",
    )
    linker.add_argument(
        "--ambiguous",
        choices=["all", "none"],
        default="all",
        help="a name shared by several concepts links to all of them or to none",
    )
    linker.add_argument("--stoplist", metavar="FILE", help="file of names never linked, one per line")
    linker.add_argument(
        "--no-abbreviations", action="store_true", help="do not expand abbreviations defined in a document"
    )
    linker.add_argument(
        "--number-variants",
        action="store_true",
        help='also match names with the last word in the other number ("seizure" <-> "seizures")',
    )
    linker.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes for dictionary linking (they share the automaton)",
    )


def handle_link(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Run :func:`link_corpus` with the command-line settings."""
    from bali.corpus.link import link_corpus

    for flag, value, lowest in (
        ("--max-errors", args.max_errors, 0),
        ("--min-name-length", args.min_name_length, 1),
        ("--acronym-max-length", args.acronym_max_length, 0),
        ("--workers", args.workers, 1),
    ):
        if value < lowest:
            raise BadInputError(f"{flag} must be >= {lowest}, got {value}")
    config = CorpusConfig(
        builtin=bool(args.builtin),
        inputs=list(args.input or []),
        format=args.format,
        text_unit=args.text_unit,
        mentions=args.mentions,
        entity_types=list(args.entity_types),
        unknown_ids=args.unknown_ids,
        min_name_length=args.min_name_length,
        acronym_max_length=args.acronym_max_length,
        ambiguous=args.ambiguous,
        stoplist=args.stoplist,
        expand_abbreviations=not args.no_abbreviations,
        number_variants=args.number_variants,
        max_errors=args.max_errors,
        workers=args.workers,
    )
    manifest = link_corpus(args.kg, args.out, config, overwrite=args.overwrite)
    c = manifest["counts"]
    summary = (
        f"{args.out}: {c['documents']} documents, {c['sentences']} sentences, {c['mentions']} mentions "
        f"of {c['distinct_concepts']} concepts"
    )
    if "gold" in c:
        gold = c["gold"]
        summary += f"; gold annotations mapped {gold['mapped']}/{gold['total']}"
    if c["errors"]["total"]:
        summary += f"; {c['errors']['total']} bad records skipped"
    return summary, manifest
