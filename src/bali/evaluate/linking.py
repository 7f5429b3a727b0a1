"""Zero-shot entity linking: nearest dictionary name by cosine, scored at the concept level.

The protocol (printed with every result, because published numbers differ mostly by protocol):

- each mention's surface string and every dictionary name are embedded with the frozen encoder
  (mean or CLS pooling, L2-normalised); search is exact inner product (faiss ``IndexFlatIP``);
- concepts are ranked by their best-scoring name; a name shared by several concepts ranks them in
  dictionary order, and equal scores of different names in name order, so results are deterministic;
- a mention is correct at k if one of the top-k concepts carries one of its gold ids; ``|``
  alternatives are any-of, and a composite mention (``+``) is correct if a predicted concept matches
  any of its parts (results are also given without composite mentions);
- ids are normalised with :func:`bali.ids.normalise_id`; mentions without a gold id (``-1``) are not
  scored but counted; mentions whose gold ids are all absent from the dictionary stay in the
  denominator (they can never be right) and are counted, as are the distinct missing ids;
- MRR is computed over the top ``mrr_depth`` concepts (a gold concept ranked lower contributes 0);
- every model after the first is also compared with the first, mention by mention: the mentions
  only it gets right at 1 (won), only the first gets right (lost), and the two-sided exact McNemar
  p-value of that split, because two Acc@1 a few mentions apart are usually not different.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bali.artifacts import atomic_output_dir, write_json_atomic
from bali.errors import BadInputError
from bali.evaluate.dictionary import Dictionary, load_dictionary
from bali.evaluate.encode import POOLINGS, encode_texts
from bali.evaluate.mentions import (
    Mention,
    check_heldout_leakage,
    expand_abbreviations,
    read_biosyn,
    read_heldout,
    read_pubtator,
)

log = logging.getLogger(__name__)

FORMATS = ("pubtator", "biosyn", "heldout")
PLAIN = "zero-shot"
ABBREVIATIONS = "zero-shot+abbreviation-expansion"


def protocol_text(ks: Sequence[int], mrr_depth: int) -> str:
    """The scoring rules in one paragraph; written into results.json and report.md."""
    return (
        "Zero-shot linking: cosine nearest neighbour of the mention string among all dictionary names "
        "(frozen encoder, L2-normalised embeddings, exact inner-product search with faiss IndexFlatIP). Concepts are ranked by "
        "their best name; ties by dictionary order. Hit@k: a top-k concept carries a gold id. Gold ids "
        "are normalised (MESH:D012345 = D012345, OMIM numbers = OMIM:...); '|' alternatives are any-of; "
        "a composite mention ('+', or a 7-column PubTator line) counts as correct if a predicted concept "
        "matches ANY of its parts (rows 'no-composite' drop composite mentions). Mentions without a gold "
        "id (-1) are not scored; mentions whose gold ids are all missing from the dictionary are scored "
        f"(always wrong) and counted. Metrics: {', '.join(f'Acc@{k}' for k in ks)}, MRR over the top "
        f"{mrr_depth} concepts."
    )


@dataclass
class Ranking:
    """Concept rankings of unique query strings: ``concepts[q]`` best first, ``depth`` long at most."""

    concepts: list[np.ndarray]


def flat_index(vectors: np.ndarray) -> Any:
    """A faiss exact inner-product index over L2-normalised vectors (cosine)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def knn(queries: np.ndarray, vectors: np.ndarray, k: int, index: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner product (scores, indices) with faiss; ties re-ordered by ascending index."""
    if index is None:
        index = flat_index(vectors)
    k = min(k, index.ntotal)
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    rows = np.repeat(np.arange(len(queries)), k)
    order = np.lexsort((ids.ravel(), -scores.ravel(), rows)).reshape(len(queries), k) % k
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


def rank_concepts(
    query_vectors: np.ndarray,
    string_vectors: np.ndarray,
    dictionary: Dictionary,
    depth: int,
    batch_size: int = 1024,
    index: Any = None,
) -> Ranking:
    """Top ``depth`` distinct concepts per query, ranked by best name (exact, deterministic).

    Names are retrieved in score order and concepts taken at first appearance; when ``depth``
    distinct concepts are not found among the retrieved names, that query is searched again deeper.
    ``index`` is a :func:`flat_index` of ``string_vectors`` (built here when not given).
    """
    if index is None:
        index = flat_index(string_vectors)
    total = index.ntotal
    depth = min(depth, dictionary.num_concepts)
    result: list[np.ndarray | None] = [None] * len(query_vectors)
    pending = np.arange(len(query_vectors))
    k = min(max(2 * depth, 64), total)
    while len(pending):
        retry: list[int] = []
        for begin in range(0, len(pending), batch_size):
            rows = pending[begin : begin + batch_size]
            _, ids = knn(query_vectors[rows], string_vectors, k, index)
            for row, string_ids in zip(rows.tolist(), ids, strict=True):
                seen: dict[int, None] = {}
                for s in string_ids.tolist():
                    for c in dictionary.concepts_of_string(s).tolist():
                        seen.setdefault(c, None)
                    if len(seen) >= depth:
                        break
                if len(seen) >= depth or k >= total:
                    result[row] = np.fromiter(seen, dtype=np.int64)[:depth]
                else:
                    retry.append(row)
        pending = np.asarray(retry, dtype=np.int64)
        k = min(2 * k, total)
    return Ranking([r if r is not None else np.zeros(0, np.int64) for r in result])


def gold_concepts(mention: Mention, dictionary: Dictionary) -> set[int]:
    """Concepts carrying any gold id of the mention (any alternative, any composite part)."""
    found: set[int] = set()
    for key in mention.gold_ids:
        found.update(dictionary.id_index.get(key, ()))
    return found


def score(
    ranked: Sequence[np.ndarray], gold: Sequence[set[int]], ks: Sequence[int] = (1, 5)
) -> dict[str, float | int]:
    """Acc@k and MRR of concept rankings against gold concept sets (one per mention)."""
    n = len(gold)
    hits = dict.fromkeys(ks, 0)
    reciprocal = 0.0
    for concepts, wanted in zip(ranked, gold, strict=True):
        rank = next((i for i, c in enumerate(concepts.tolist()) if c in wanted), None)
        if rank is None:
            continue
        reciprocal += 1.0 / (rank + 1)
        for k in ks:
            if rank < k:
                hits[k] += 1
    metrics: dict[str, float | int] = {"mentions": n}
    for k in ks:
        metrics[f"acc@{k}"] = hits[k] / n if n else 0.0
    metrics["mrr"] = reciprocal / n if n else 0.0
    return metrics


def load_mentions(
    path: str | Path, mention_format: str, entity_types: Sequence[str] | None = None
) -> tuple[list[Mention], dict[str, str]]:
    """Mentions (and PubTator document texts, for abbreviation expansion) in one of ``FORMATS``."""
    if mention_format == "pubtator":
        return read_pubtator(path, entity_types)
    if mention_format == "biosyn":
        return read_biosyn(path, entity_types), {}
    if mention_format == "heldout":
        return read_heldout(path), {}
    raise BadInputError(f"unknown mention format '{mention_format}' (expected one of {FORMATS})")


def mcnemar_exact_p(won: int, lost: int) -> float:
    """Two-sided exact McNemar p-value: P(a split at least this uneven | each discordant pair is a coin flip)."""
    n = won + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(won, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def won_lost(hit: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    """Mentions only ``hit`` gets right, and mentions only ``reference`` gets right."""
    return int((hit & ~reference).sum()), int((reference & ~hit).sum())


def paired_comparisons(hits: Mapping[tuple[str, str, str], np.ndarray]) -> list[dict[str, Any]]:
    """Each model against the first one, per (pooling, protocol): Acc@1 wins, losses and McNemar p.

    ``hits`` maps (model, pooling, protocol) to the hit@1 vector over the same mentions, in the
    order the models were evaluated.
    """
    if not hits:
        return []
    first = next(iter(hits))[0]
    rows = []
    for (model, pooling, protocol), hit in hits.items():
        reference = hits.get((first, pooling, protocol))
        if model == first or reference is None:
            continue
        won, lost = won_lost(hit, reference)
        rows.append(
            {
                "model": model,
                "against": first,
                "pooling": pooling,
                "protocol": protocol,
                "won": won,
                "lost": lost,
                "p_value": mcnemar_exact_p(won, lost),
            }
        )
    return rows


def format_paired(result: dict[str, Any]) -> list[str]:
    """One line per paired comparison, for the terminal and report.md."""
    return [
        f"{c['model']} vs {c['against']} ({c['pooling']}, {c['protocol']}): right where it was wrong on "
        f"{c['won']} mentions, wrong where it was right on {c['lost']}; exact McNemar p = {c['p_value']:.3g}"
        for c in result.get("paired", [])
    ]


def mention_stats(mentions: Sequence[Mention], dictionary: Dictionary) -> dict[str, Any]:
    """Counts that must accompany the metrics: nothing is dropped without being counted."""
    with_gold = [m for m in mentions if m.gold]
    unmapped_ids = sorted({g for m in with_gold for g in m.gold_ids if not dictionary.has_id(g)})
    unlinkable = sum(1 for m in with_gold if not any(dictionary.has_id(g) for g in m.gold_ids))
    return {
        "total": len(mentions),
        "scored": len(with_gold),
        "without_gold_id": len(mentions) - len(with_gold),
        "composite": sum(1 for m in with_gold if m.composite),
        "with_alternatives": sum(1 for m in with_gold if len(m.gold) > 1),
        "distinct_gold_ids": len({g for m in with_gold for g in m.gold_ids}),
        "unmapped_gold_ids": len(unmapped_ids),
        "unmapped_gold_id_examples": unmapped_ids[:20],
        "mentions_with_all_gold_unmapped": unlinkable,
    }


def _model_label(model: str, used: set[str]) -> str:
    label = Path(model).name if Path(model).exists() else model
    base, n = label, 2
    while label in used:
        label, n = f"{base}-{n}", n + 1
    used.add(label)
    return label


def evaluate_linking(
    models: Sequence[str],
    dictionary: str | Path | Dictionary,
    mentions: str | Path | Sequence[Mention],
    pooling: Sequence[str] = ("mean",),
    out_dir: str | Path | None = None,
    *,
    mention_format: str = "pubtator",
    entity_types: Sequence[str] | None = None,
    abbreviations: bool = False,
    ks: Sequence[int] = (1, 5),
    mrr_depth: int = 64,
    batch_size: int = 256,
    max_length: int = 32,
    device: str = "cpu",
    overwrite: bool = False,
    model_labels: Sequence[str] | None = None,
    max_mentions: int | None = None,
    seed: int = 42,
    subsets: Mapping[str, Callable[[Mention], bool]] | None = None,
) -> dict[str, Any]:
    """Evaluate each model with each pooling (one row each); write results.json and report.md.

    ``dictionary`` is a KG artefact directory, a ``ID||name|...`` file or a loaded
    :class:`Dictionary`; ``mentions`` a file (or a KG directory for ``heldout``) or mention objects.
    With ``out_dir`` the results directory is written atomically; the dict is returned either way.
    ``max_mentions`` scores a fixed random sample (``seed``) of the mentions with a gold id, e.g. the
    pipeline's ``eval.heldout_max_concepts``; the sample size is recorded. ``subsets`` adds one row
    per named filter next to "all" and "no-composite" (the pipeline splits held-out synonyms by
    whether the training corpus mentions their concept).
    """
    from bali.lm import load_encoder, load_tokenizer

    if not models:
        raise BadInputError("give at least one model")
    for p in pooling:
        if p not in POOLINGS:
            raise BadInputError(f"unknown pooling '{p}' (expected one of {POOLINGS})")
    ks = sorted(set(ks))
    mrr_depth = max(mrr_depth, max(ks))
    started = time.perf_counter()
    dict_obj = dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)
    documents: dict[str, str] = {}
    if isinstance(mentions, (str, Path)):
        mention_source = str(mentions)
        mention_list, documents = load_mentions(mentions, mention_format, entity_types)
        if mention_format == "heldout":
            check_heldout_leakage(mention_list, dict_obj, mentions)
    else:
        mention_source, mention_list = "<in memory>", list(mentions)
    scored = [m for m in mention_list if m.gold]
    if not scored:
        raise BadInputError(
            "no mention with a gold id to score" + (f" of type {list(entity_types)}" if entity_types else ""),
            mention_source,
        )
    if max_mentions is not None and len(scored) > max_mentions:
        keep = np.sort(np.random.default_rng(seed).choice(len(scored), max_mentions, replace=False))
        scored = [scored[i] for i in keep]
    protocols: dict[str, list[Mention]] = {PLAIN: scored}
    expanded_count = 0
    if abbreviations:
        if not documents:
            raise BadInputError("--abbreviations needs document text (PubTator mentions)", mention_source)
        protocols[ABBREVIATIONS], expanded_count = expand_abbreviations(scored, documents)
    gold = [gold_concepts(m, dict_obj) for m in scored]
    composite = np.array([m.composite for m in scored], dtype=bool)
    subset_masks = {"all": np.ones(len(scored), dtype=bool), "no-composite": ~composite}
    for subset_name, keep_mention in (subsets or {}).items():
        subset_masks[subset_name] = np.array([keep_mention(m) for m in scored], dtype=bool)
    query_strings = sorted({m.text for ms in protocols.values() for m in ms})
    query_index = {s: i for i, s in enumerate(query_strings)}
    labels = list(model_labels) if model_labels else []
    used: set[str] = set(labels)
    rows: list[dict[str, Any]] = []
    predictions: dict[str, list[dict[str, Any]]] = {}
    hits: dict[tuple[str, str, str], np.ndarray] = {}
    timing: dict[str, float] = {"load_seconds": time.perf_counter() - started}
    for m_index, model_name in enumerate(models):
        label = labels[m_index] if m_index < len(labels) else _model_label(str(model_name), used)
        tokenizer = load_tokenizer(model_name)
        encoder = load_encoder(model_name)
        t0 = time.perf_counter()
        names = encode_texts(
            encoder, tokenizer, dict_obj.strings, pooling, batch_size, max_length, device, f"{label}: names"
        )
        queries = encode_texts(
            encoder, tokenizer, query_strings, pooling, batch_size, max_length, device, f"{label}: mentions"
        )
        timing[f"{label}_encode_seconds"] = time.perf_counter() - t0
        for p in pooling:
            t1 = time.perf_counter()
            ranking = rank_concepts(queries[p], names[p], dict_obj, mrr_depth)
            timing[f"{label}_{p}_search_seconds"] = time.perf_counter() - t1
            for protocol, ms in protocols.items():
                ranked = [ranking.concepts[query_index[m.text]] for m in ms]
                for subset, keep in subset_masks.items():
                    idx = np.nonzero(keep)[0]
                    metrics = score([ranked[i] for i in idx], [gold[i] for i in idx], ks)
                    rows.append(
                        {
                            "model": label,
                            "model_path": str(model_name),
                            "pooling": p,
                            "protocol": protocol,
                            "subset": subset,
                            **metrics,
                        }
                    )
                hit = np.array([len(r) > 0 and int(r[0]) in g for r, g in zip(ranked, gold, strict=True)])
                hits[label, p, protocol] = hit
                predictions[f"{label}.{p}.{protocol}"] = [
                    {
                        "doc_id": m.doc_id,
                        "start": m.start,
                        "end": m.end,
                        "mention": m.text,
                        "gold": "|".join("+".join(a) for a in m.gold),
                        "top": [dict_obj.concept_ids[c][0] for c in r[: max(ks)].tolist()],
                        "hit@1": bool(h),
                    }
                    for m, r, h in zip(ms, ranked, hit, strict=True)
                ]
        del encoder
    timing["total_seconds"] = time.perf_counter() - started
    result: dict[str, Any] = {
        "task": "linking",
        "protocol": protocol_text(ks, mrr_depth),
        "dictionary": dict_obj.stats(),
        "mentions": {
            "source": mention_source,
            "format": mention_format,
            "entity_types": list(entity_types or []),
            **mention_stats(mention_list, dict_obj),
            "abbreviations_expanded": expanded_count,
            "distinct_query_strings": len(query_strings),
            "sampled": None if max_mentions is None else {"max_mentions": max_mentions, "seed": seed},
        },
        "settings": {
            "pooling": list(pooling),
            "ks": ks,
            "mrr_depth": mrr_depth,
            "batch_size": batch_size,
            "max_length": max_length,
            "abbreviations": abbreviations,
            "device": device,
        },
        "rows": rows,
        "paired": paired_comparisons(hits),
        "timing": timing,
    }
    if out_dir is not None:
        write_linking_results(result, predictions, out_dir, overwrite)
    return result


def write_linking_results(
    result: dict[str, Any], predictions: dict[str, list[dict[str, Any]]], out_dir: str | Path, overwrite: bool
) -> Path:
    """results.json, report.md and per-row predictions (top concepts per mention, for error analysis)."""
    import json

    from bali.evaluate.report import write_report

    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        write_json_atomic(tmp / "results.json", result)
        pred_dir = tmp / "predictions"
        pred_dir.mkdir()
        for key, items in predictions.items():
            with (pred_dir / f"{key.replace('/', '_')}.jsonl").open("w", encoding="utf-8") as handle:
                for item in items:
                    handle.write(json.dumps(item) + "\n")
        write_report(tmp, linking_results=result)
    return Path(out_dir)


def format_rows(result: dict[str, Any]) -> str:
    """A fixed-width table of the rows, for the terminal and report.md."""
    ks = result["settings"]["ks"]
    header = ["model", "pooling", "protocol", "subset", "n", *[f"Acc@{k}" for k in ks], "MRR"]
    lines = [header]
    for row in result["rows"]:
        lines.append(
            [
                row["model"],
                row["pooling"],
                row["protocol"],
                row["subset"],
                str(row["mentions"]),
                *[f"{100 * row[f'acc@{k}']:.2f}" for k in ks],
                f"{100 * row['mrr']:.2f}",
            ]
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines)
