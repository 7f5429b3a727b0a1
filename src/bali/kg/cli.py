"""`bali kg build` and `bali kg info`."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from bali.cli import add_json_flag
from bali.errors import BadInputError
from bali.evaluate.dictionary import DICTIONARY_FORMAT_HELP, DICTIONARY_FORMATS
from bali.kg.build import build_kg
from bali.kg.config import KGConfig
from bali.kg.graph import KnowledgeGraph


def _csv(value: str) -> list[str]:
    """A comma-separated option value (``--sab-include MSH,OMIM``)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kg build`` and ``kg info``."""
    kg = subparsers.add_parser("kg", help="build or inspect a knowledge-graph artefact")
    kg_sub = kg.add_subparsers(dest="kg_command", metavar="SUBCOMMAND", required=True)
    _add_build(kg_sub)
    info = kg_sub.add_parser("info", help="print the counts of a KG artefact")
    info.add_argument("directory", metavar="DIR")
    add_json_flag(info)
    info.set_defaults(handler=_info)


def _add_build(kg_sub: argparse._SubParsersAction) -> None:
    """``kg build``: one source, the output, then the UMLS filters and the graph and held-out options."""
    build = kg_sub.add_parser(
        "build",
        help="build a KG from UMLS, OBO files, a TSV pair or the embedded default",
        description="Build the KG artefact (concepts, names, xrefs, CSR edges, manifest) atomically.",
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--umls", metavar="DIR", help="UMLS release directory (MRCONSO/MRREL/MRSTY.RRF)")
    source.add_argument("--obo", metavar="FILE", nargs="+", help="OBO files (HPO, MONDO, DOID, GO), merged")
    source.add_argument(
        "--tsv", metavar=("CONCEPTS", "EDGES"), nargs=2, help="in-house graph as two TSV files"
    )
    source.add_argument("--builtin", action="store_true", help="embedded HPO + MONDO + annotations (offline)")
    build.add_argument("--out", required=True, metavar="DIR", help="output artefact directory")
    build.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    build.add_argument("--max-errors", type=int, default=0, metavar="N", help="tolerate N malformed lines")
    _add_umls_filters(build)
    build.add_argument("--drop-self-loops", action="store_true", help="drop edges from a node to itself")
    build.add_argument(
        "--obo-scopes",
        type=_csv,
        default=["EXACT", "RELATED"],
        metavar="SCOPES",
        help="OBO synonym scopes used as names (default EXACT,RELATED)",
    )
    build.add_argument(
        "--dictionary-concepts",
        metavar="FILE",
        help="add the concepts of this linking dictionary that no node carries, as isolated nodes",
    )
    build.add_argument(
        "--dictionary-concepts-format",
        choices=DICTIONARY_FORMATS,
        default="medic",
        help=DICTIONARY_FORMAT_HELP,
    )
    _add_holdout_options(build)
    add_json_flag(build)
    build.set_defaults(handler=_build)


def _add_umls_filters(build: argparse.ArgumentParser) -> None:
    """The UMLS filters, an argument group of their own in ``kg build --help``."""
    umls = build.add_argument_group("UMLS filters (comma-separated lists)")
    umls.add_argument("--lang", type=_csv, default=["ENG"], metavar="LATS", help="languages (default ENG)")
    umls.add_argument("--sab-include", type=_csv, default=[], metavar="SABS")
    umls.add_argument("--sab-exclude", type=_csv, default=[], metavar="SABS")
    umls.add_argument(
        "--keep-suppressed", action="store_true", help="keep SUPPRESS=O/E/Y atoms and relations"
    )
    umls.add_argument("--rel-include", type=_csv, default=[], metavar="RELS")
    umls.add_argument("--rel-exclude", type=_csv, default=[], metavar="RELS")
    umls.add_argument("--rela-include", type=_csv, default=[], metavar="RELAS")
    umls.add_argument("--rela-exclude", type=_csv, default=[], metavar="RELAS")
    umls.add_argument("--restrict-to", metavar="FILE", help="file of CUIs: keep them and their neighbourhood")
    umls.add_argument("--hops", type=int, default=1, metavar="K", help="neighbourhood size for --restrict-to")


def _add_holdout_options(build: argparse.ArgumentParser) -> None:
    """The held-out synonym splits (test and dev) and their seed."""
    build.add_argument(
        "--holdout-synonyms",
        type=int,
        default=0,
        metavar="N",
        help="withhold a synonym of N concepts: the test split of held-out-synonym linking",
    )
    build.add_argument(
        "--holdout-dev-synonyms",
        type=int,
        default=0,
        metavar="N",
        help="withhold a synonym of N other concepts: the dev split, the only one tuning may read",
    )
    build.add_argument("--holdout-seed", type=int, default=0, metavar="S")


def config_from_args(args: argparse.Namespace) -> KGConfig:
    """The :class:`KGConfig` equivalent of the command line (validated by pydantic)."""
    if args.umls:
        source: dict[str, Any] = {"source": "umls", "umls_dir": args.umls}
    elif args.obo:
        source = {"source": "obo", "obo_files": args.obo}
    elif args.tsv:
        source = {"source": "tsv", "tsv_concepts": args.tsv[0], "tsv_edges": args.tsv[1]}
    else:
        source = {"source": "builtin"}
    try:
        return KGConfig.model_validate(
            {
                **source,
                "languages": args.lang,
                "sab_include": args.sab_include,
                "sab_exclude": args.sab_exclude,
                "keep_suppressed": args.keep_suppressed,
                "rel_include": args.rel_include,
                "rel_exclude": args.rel_exclude,
                "rela_include": args.rela_include,
                "rela_exclude": args.rela_exclude,
                "restrict_to": args.restrict_to,
                "hops": args.hops,
                "keep_self_loops": not args.drop_self_loops,
                "max_errors": args.max_errors,
                "obo_name_scopes": args.obo_scopes,
                "holdout_synonyms": args.holdout_synonyms,
                "holdout_dev_synonyms": args.holdout_dev_synonyms,
                "holdout_seed": args.holdout_seed,
                "dictionary_concepts": args.dictionary_concepts,
                "dictionary_concepts_format": args.dictionary_concepts_format,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadInputError(f"invalid kg build options: {problems}") from exc


def _summary_line(directory: str, counts: dict[str, Any]) -> str:
    return (
        f"{directory}: {counts['concepts']:,} concepts, {counts['names']:,} names, "
        f"{counts['edges']:,} edges in {len(counts.get('edges_per_relation', {}))} relations"
    )


def _build(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    manifest = build_kg(config_from_args(args), args.out, overwrite=args.overwrite)
    return _summary_line(args.out, manifest["counts"]), manifest


def _info(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    kg = KnowledgeGraph.load(args.directory)
    counts = dict(kg.summary())
    summary = _summary_line(args.directory, counts)
    per_relation = counts.get("edges_per_relation", {})
    top = sorted(per_relation.items(), key=lambda kv: -kv[1])[:8]
    if top:
        summary += "\n  edges per relation: " + ", ".join(f"{k} {v:,}" for k, v in top)
    if counts.get("sources"):
        summary += "\n  sources: " + ", ".join(f"{k} {v:,}" for k, v in counts["sources"].items())
    return summary, {
        "directory": args.directory,
        "counts": counts,
        "settings": kg.manifest.get("settings", {}),
    }
