"""``bali eval linking | task | report``: thin handlers over the importable evaluation functions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bali.cli import add_json_flag
from bali.errors import BadInputError
from bali.evaluate.config import NAME_MAX_LENGTH
from bali.evaluate.dictionary import DICTIONARY_FORMAT_HELP, DICTIONARY_FORMATS


def _per_set(values: list[str] | None, count: int, flag: str) -> list[str | None]:
    """One value for every mention set, or one per set in --mentions order."""
    if not values:
        return [None] * count
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise BadInputError(f"give {flag} once (for every --mentions) or once per --mentions ({count})")
    return list(values)


def mention_sets_from_args(args: argparse.Namespace) -> list[Any]:
    """--mentions (repeatable) with their --format and --entity-type, as MentionSet objects."""
    from bali.evaluate.linking import MentionSet
    from bali.evaluate.mentions import heldout_file

    paths = list(args.mentions or [])
    if not paths:
        if args.format not in (None, ["heldout"]) or args.kg is None:
            raise BadInputError(
                "--mentions is required (it may be omitted only with --format heldout --kg DIR)"
            )
        paths = [args.kg]
    formats = _per_set(args.format, len(paths), "--format")
    if len(paths) == 1:  # one set: every --entity-type applies to it (the original meaning)
        types: list[list[str]] = [list(args.entity_type or [])]
    else:
        types = [
            [t for t in (v or "").split(",") if t]
            for v in _per_set(args.entity_type, len(paths), "--entity-type")
        ]
    return [
        MentionSet(heldout_file(path, args.split) if fmt == "heldout" else path, fmt or "pubtator", tuple(t))
        for path, fmt, t in zip(paths, formats, types, strict=True)
    ]


def _linking(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from bali.evaluate.linking import evaluate_linking
    from bali.evaluate.report import format_paired, format_rows

    if (args.dictionary is None) == (args.kg is None):
        raise BadInputError("give exactly one of --dictionary FILE and --kg DIR")
    subsets = {}
    if args.train_mentions:
        from bali.evaluate.seen import seen_subsets, training_gold

        subsets.update(seen_subsets(training_gold(args.train_mentions, args.train_format)))
    sets = mention_sets_from_args(args)
    if args.train_kg:
        from bali.evaluate.seen import kg_coverage_subsets

        subsets.update(kg_coverage_subsets(args.train_kg, sets))
    result = evaluate_linking(
        args.model,
        args.dictionary or args.kg,
        sets,
        args.pooling,
        args.out,
        abbreviations=args.abbreviations,
        in_context=args.in_context,
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        overwrite=args.overwrite,
        max_mentions=args.max_mentions,
        composites=args.composites,
        dictionary_format=args.dictionary_format,
        cache_dir=args.cache,
        cache_dtype=args.cache_dtype,
        index=args.index,
        subsets=subsets,
    )
    best = max(result["rows"], key=lambda r: r["acc@1"])
    sets = ", ".join(
        f"{m['name']} {m['scored']} mentions ({m['unmapped_gold_ids']} unmapped gold ids)"
        for m in result["mention_sets"]
    )
    cache = [
        f"{c['model']}: dictionary embeddings {c['status']}"
        + (f" after {c['resumed_blocks']} finished blocks" if c["status"] == "resumed" else "")
        + f", mention embeddings {c.get('mentions_status', 'encoded')} ({c['directory']})"
        for c in result["cache"]
    ]
    recall = [
        f"{r['model']} {r['pooling']}: {result['search']['description']} recall@{r['k']} vs exact "
        f"{100 * r['recall']:.1f}% on {r['queries']} queries"
        for r in result["search"]["recall_vs_exact"]
    ]
    summary = (
        f"linking: {sets}; composites {args.composites}; best Acc@1 {100 * best['acc@1']:.2f} "
        f"({best['model']}, {best['benchmark']}, {best['pooling']}, {best['protocol']}, {best['subset']}) "
        f"in {result['timing']['total_seconds']:.0f} s on {result['settings']['device_used']} -> {args.out}"
    )
    return "\n".join([*cache, *recall, summary, format_rows(result), *format_paired(result)]), result


def _task(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from bali.evaluate.finetune import finetune_task
    from bali.evaluate.probe import probe_task

    if args.mode == "probe":
        result = probe_task(
            args.model,
            args.task,
            args.data,
            args.out,
            split=args.split,
            subsample_train=args.subsample,
            subsample_eval=args.eval_subsample,
            max_length=args.max_length or 256,
            batch_size=args.batch_size or 64,
            device=args.device,
            cache_dir=args.embedding_cache,
            overwrite=args.overwrite,
        )
        return _task_summary(result, args.out), result
    if args.split != "test":
        raise BadInputError("--split dev needs --mode probe (fine-tuning reports test over seeds)")
    result = finetune_task(
        args.model,
        args.task,
        args.data,
        args.out,
        seeds=args.seeds,
        initial_seed=args.seed,
        subsample_train=args.subsample,
        subsample_eval=args.eval_subsample,
        epochs=args.epochs,
        max_length=args.max_length,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        overwrite=args.overwrite,
    )
    return _task_summary(result, args.out), result


def _task_summary(result: dict[str, Any], out: str) -> str:
    """The score with its spread and, beside it, what an input-blind predictor scores."""
    split = result["split"]
    main, b = result[split][result["main_metric"]], result["baselines"]
    runs = f"over {len(result['seeds'])} seeds" if result["seeds"] else "(probe, deterministic)"
    return (
        f"{result['task']}: {split} {result['main_metric']} {main['mean']:.4f} ± {main['std']:.4f} {runs}; "
        f"majority {b['majority']:.4f}, best constant {b['best_constant']:.4f} ({b['best_constant_is']}) -> {out}"
    )


def _report(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    import json

    from bali.artifacts import atomic_output_dir
    from bali.evaluate.report import write_report

    linking, tasks = [], []
    for directory in args.results or []:
        path = Path(directory) / "results.json"
        if not path.is_file():
            raise BadInputError("not an evaluation results directory (no results.json)", directory)
        data = json.loads(path.read_text(encoding="utf-8"))
        (linking if data.get("task") == "linking" else tasks).append(data)
    metrics = None
    if args.run is not None:
        metrics = Path(args.run) / "metrics.jsonl" if Path(args.run).is_dir() else Path(args.run)
    with atomic_output_dir(args.out, overwrite=args.overwrite) as tmp:
        write_report(tmp, linking, metrics, args.embeddings, tasks)
        files = sorted(p.name for p in tmp.iterdir())
    return f"report: {', '.join(files)} -> {args.out}", {"out": str(args.out), "files": files}


def register(subparsers: Any) -> None:
    """Add ``bali eval`` and its subcommands."""
    parser = subparsers.add_parser("eval", help="zero-shot entity linking, downstream fine-tuning, reports")
    sub = parser.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND")
    _add_linking(sub)
    _add_task(sub)
    _add_report(sub)


def _add_linking(sub: Any) -> None:
    """``bali eval linking``: models, dictionary, mention sets, scoring and search options."""
    p = sub.add_parser(
        "linking",
        help="zero-shot entity linking (nearest dictionary name by cosine), one row per model x pooling",
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        help="builtin, a local dir or a cached id; repeatable (a run's RUN/final is labelled RUN)",
    )
    _add_linking_sources(p)
    _add_linking_protocol(p)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-length", type=int, default=NAME_MAX_LENGTH)
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--out", required=True, help="results directory (results.json, report.md, predictions/)")
    p.add_argument("--overwrite", action="store_true")
    add_json_flag(p)
    p.set_defaults(handler=_linking)


def _add_linking_sources(p: argparse.ArgumentParser) -> None:
    """What ``bali eval linking`` reads: the dictionary and the mention sets, with their formats."""
    p.add_argument("--dictionary", help="dictionary file: see --dictionary-format")
    p.add_argument(
        "--dictionary-format",
        choices=DICTIONARY_FORMATS,
        default="medic",
        help=DICTIONARY_FORMAT_HELP,
    )
    p.add_argument("--kg", help="KG artefact directory as the dictionary (all names of every node)")
    p.add_argument(
        "--mentions",
        action="append",
        help="mention file (a KG directory for --format heldout); repeatable: all sets share one "
        "dictionary encoding per model and one results table",
    )
    p.add_argument(
        "--format",
        action="append",
        choices=("pubtator", "biosyn", "heldout", "tsv"),
        help="mention format (default pubtator): once for all --mentions or once per --mentions; "
        "tsv = ID<TAB>mention or ID||mention lines",
    )
    p.add_argument(
        "--entity-type",
        action="append",
        help="keep only this type, e.g. Disease; with one --mentions repeatable (any of them), with "
        "several once for all or once per --mentions, comma-separated, '' for no filter",
    )
    p.add_argument(
        "--train-mentions",
        action="append",
        help="training corpus mention file (repeatable): adds rows for mentions whose normalised "
        "string is a gold mention there (seen), for the rest (unseen), and for the unseen ones whose "
        "gold concept is (not) a gold concept there",
    )
    p.add_argument(
        "--train-format",
        choices=("pubtator", "biosyn", "tsv"),
        default="pubtator",
        help="format of --train-mentions (default pubtator)",
    )
    p.add_argument(
        "--train-kg",
        metavar="DIR",
        help="the KG artefact the model was aligned with: adds rows for mentions whose gold concept "
        "has a node there (a cross-reference for every composite part) and for the rest",
    )


def _add_linking_protocol(p: argparse.ArgumentParser) -> None:
    """How ``bali eval linking`` scores: composites, embedding cache, search index, split, pooling, sampling."""
    p.add_argument(
        "--composites",
        choices=("any", "all"),
        default="any",
        help="a composite mention is right if ANY part is linked (default) or only if ALL parts are",
    )
    p.add_argument("--cache", help="embedding cache directory (default: embedding_cache next to --out)")
    p.add_argument("--cache-dtype", choices=("float32", "float16"), default="float32")
    p.add_argument(
        "--index",
        choices=("exact", "ivf", "hnsw"),
        default="exact",
        help="exact block search (default), or an approximate faiss index (its recall vs exact is reported)",
    )
    p.add_argument(
        "--split",
        choices=("test", "dev"),
        default="test",
        help="held-out split of --format heldout: test (reported) or dev (the only one tuning reads)",
    )
    p.add_argument("--pooling", nargs="+", choices=("mean", "cls"), default=["mean"])
    p.add_argument(
        "--abbreviations", action="store_true", help="add rows with Schwartz-Hearst expansion (PubTator only)"
    )
    p.add_argument(
        "--in-context",
        action="store_true",
        help="add rows with each mention encoded in its sentence, the representation BALI trains "
        "(mean pooling, PubTator only)",
    )
    p.add_argument("--max-mentions", type=int, help="score a fixed random sample of N mentions (seed 42)")


def _add_task(sub: Any) -> None:
    """``bali eval task``: fine-tune over seeds or probe the frozen encoder on one downstream task."""
    p = sub.add_parser(
        "task", help="downstream task: fine-tune over seeds (GPU) or probe the frozen encoder (CPU minutes)"
    )
    p.add_argument("--model", required=True)
    p.add_argument(
        "--mode",
        choices=("finetune", "probe"),
        default="finetune",
        help="finetune: the BLURB recipe over seeds; probe: frozen embeddings + a linear model (deterministic)",
    )
    p.add_argument("--embedding-cache", metavar="DIR", help="probe: reuse embeddings stored here")
    p.add_argument(
        "--split",
        choices=("test", "dev"),
        default="test",
        help="probe: the split scored, test (reported) or dev (choosing settings: test is never embedded)",
    )
    p.add_argument("--task", required=True, help="hoc, gad, chemprot, ddi, biosses, bioasq, pubmedqa, medqa")
    p.add_argument("--data", required=True, help="directory with the task's splits")
    p.add_argument("--seeds", type=int, default=3, help="runs with seeds SEED, SEED+1, ...")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--subsample", type=int, help="cap the training set at N examples (fixed subset)")
    p.add_argument("--eval-subsample", type=int, help="cap dev and test at N examples")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    add_json_flag(p)
    p.set_defaults(handler=_task)


def _add_report(sub: Any) -> None:
    """``bali eval report``: report.md and figures from a training run and evaluation results."""
    p = sub.add_parser("report", help="report.md + PNGs from a training run and evaluation results")
    p.add_argument("--run", help="training run directory (metrics.jsonl) or the metrics.jsonl file")
    p.add_argument(
        "--results", nargs="+", help="results directories of `bali eval linking` / `bali eval task`"
    )
    p.add_argument("--embeddings", help=".npz with text, graph, labels arrays for the t-SNE plot")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    add_json_flag(p)
    p.set_defaults(handler=_report)
