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
  p-value of that split, because two Acc@1 a few mentions apart are usually not different; for the
  context-free protocols again over each distinct (searched string, gold) pair's first mention,
  because a recurring string gets the same prediction every time (:mod:`bali.evaluate.paired`).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bali.artifacts import atomic_output_dir, write_json_atomic
from bali.errors import BadInputError
from bali.evaluate.cache import dictionary_embeddings
from bali.evaluate.config import CONTEXT_MAX_LENGTH, NAME_MAX_LENGTH
from bali.evaluate.context import IN_CONTEXT, Context, encode_in_context, mention_contexts
from bali.evaluate.dictionary import Dictionary, load_dictionary
from bali.evaluate.encode import POOLINGS, Device, resolve_device
from bali.evaluate.mentions import (
    Mention,
    check_heldout_leakage,
    expand_abbreviations,
    read_biosyn,
    read_heldout,
    read_pubtator,
    read_tsv_mentions,
)
from bali.evaluate.paired import first_of_each, paired_comparisons
from bali.evaluate.report import write_report
from bali.evaluate.search import ApproxIndex, ExactIndex, VectorBlocks, build_index, recall_at_k
from bali.train.rundir import FINAL_DIR

log = logging.getLogger(__name__)

FORMATS = ("pubtator", "biosyn", "heldout", "tsv")
COMPOSITES = ("any", "all")
CACHE_DIRNAME = "embedding_cache"
EXACT = "exact inner-product search over blocks of the dictionary vectors"
PLAIN = "zero-shot"
ABBREVIATIONS = "zero-shot+abbreviation-expansion"


def protocol_text(ks: Sequence[int], mrr_depth: int, composites: str = "any", search: str = EXACT) -> str:
    """The scoring rules in one paragraph; written into results.json and report.md."""
    composite_rule = (
        "matches ANY of its parts"
        if composites == "any"
        else "carries ALL of its parts within the top k (its rank is that of its last part)"
    )
    return (
        "Zero-shot linking: cosine nearest neighbour of the mention string among all dictionary names "
        f"(frozen encoder, L2-normalised embeddings, {search}). Concepts are ranked by "
        "their best name; ties by dictionary order. Hit@k: a top-k concept carries a gold id. Gold ids "
        "are normalised (MESH:D012345 = D012345, OMIM numbers = OMIM:...); '|' alternatives are any-of; "
        "a composite mention ('+', or a 7-column PubTator line) counts as correct if the ranking "
        f"{composite_rule} (composites: {composites}; rows 'no-composite' drop composite mentions). "
        "Mentions without a gold id (-1) are not scored; mentions whose gold ids are all missing from "
        f"the dictionary are scored (always wrong) and counted. Metrics: {', '.join(f'Acc@{k}' for k in ks)}, "
        f"MRR over the top {mrr_depth} concepts."
    )


@dataclass
class Ranking:
    """Concept rankings of unique query strings: ``concepts[q]`` best first, ``depth`` long at most."""

    concepts: list[np.ndarray]


def rank_concepts(
    query_vectors: np.ndarray, index: ExactIndex | ApproxIndex, dictionary: Dictionary, depth: int
) -> Ranking:
    """Top ``depth`` distinct concepts per query, ranked by best name (deterministic).

    Names are retrieved in score order and concepts taken at first appearance; when ``depth``
    distinct concepts are not found among the retrieved names, those queries are searched again
    deeper (one more pass over the dictionary for all of them together).
    """
    total = index.ntotal
    depth = min(depth, dictionary.num_concepts)
    result: list[np.ndarray | None] = [None] * len(query_vectors)
    pending = np.arange(len(query_vectors))
    k = min(max(2 * depth, 64), total)
    while len(pending):
        retry: list[int] = []
        _, ids = index.search(query_vectors[pending], k)
        for row, string_ids in zip(pending.tolist(), ids, strict=True):
            seen: dict[int, None] = {}
            for s in string_ids.tolist():
                if s < 0:
                    break
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


Gold = tuple[tuple[frozenset[int], ...], ...]


def gold_parts(mention: Mention, dictionary: Dictionary) -> Gold:
    """Per gold alternative, per composite part: the concepts carrying that part's id."""
    return tuple(
        tuple(frozenset(dictionary.id_index.get(part, ())) for part in alternative)
        for alternative in mention.gold
    )


def gold_concepts(mention: Mention, dictionary: Dictionary) -> set[int]:
    """Concepts carrying any gold id of the mention (any alternative, any composite part)."""
    return {c for alternative in gold_parts(mention, dictionary) for part in alternative for c in part}


def gold_rank(concepts: np.ndarray, gold: Gold, composites: str = "any") -> int | None:
    """0-based rank at which the mention counts as linked, or None.

    ``any``: the first concept that matches any part of any alternative. ``all``: an alternative
    counts at the rank where its last part is found, and the best alternative wins.
    """
    position: dict[int, int] = {}
    for i, c in enumerate(concepts.tolist()):
        position.setdefault(c, i)

    def part_rank(part: frozenset[int]) -> int | None:
        return min((position[c] for c in part if c in position), default=None)

    if composites == "any":
        return part_rank(frozenset(c for alternative in gold for part in alternative for c in part))
    ranks = []
    for alternative in gold:
        parts = [part_rank(part) for part in alternative]
        if alternative and None not in parts:
            ranks.append(max(r for r in parts if r is not None))
    return min(ranks, default=None)


def score(ranks: Sequence[int | None], ks: Sequence[int] = (1, 5)) -> dict[str, float | int]:
    """Acc@k and MRR from each mention's 0-based gold rank (None: not in the ranking)."""
    n = len(ranks)
    metrics: dict[str, float | int] = {"mentions": n}
    for k in ks:
        metrics[f"acc@{k}"] = sum(1 for r in ranks if r is not None and r < k) / n if n else 0.0
    metrics["mrr"] = sum(1.0 / (r + 1) for r in ranks if r is not None) / n if n else 0.0
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
    if mention_format == "tsv":
        return read_tsv_mentions(path), {}
    raise BadInputError(f"unknown mention format '{mention_format}' (expected one of {FORMATS})")


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


def _unique_label(label: str, used: set[str]) -> str:
    base, n = label, 2
    while label in used:
        label, n = f"{base}-{n}", n + 1
    used.add(label)
    return label


def _model_label(model: str, used: set[str]) -> str:
    """A local model's folder name; a trainer's export (`RUN/final`) is named after its run.

    Every `bali train` export is called `final`, so comparing runs would otherwise print
    `final`, `final-2`, ... and leave the reader to map them back to the command line.
    """
    path = Path(model)
    if not path.exists():
        return _unique_label(model, used)
    path = path.resolve()
    return _unique_label(path.parent.name if path.name == FINAL_DIR else path.name, used)


@dataclass(frozen=True)
class MentionSet:
    """One benchmark of a call: where its mentions are, their format and type filter, its row label."""

    source: str | Path | Sequence[Mention]
    format: str = "pubtator"
    entity_types: tuple[str, ...] = ()
    name: str | None = None


@dataclass
class PreparedSet:
    """A mention set ready to score: the mentions per protocol, their gold and the row subsets."""

    name: str
    stats: dict[str, Any]
    protocols: dict[str, list[Mention]]
    gold: list[Gold]
    subset_masks: dict[str, np.ndarray]
    first_of_pair: dict[str, np.ndarray]  # per context-free protocol, for the paired test
    contexts: list[Context] | None = None  # the scored mentions' sentences, for --in-context


def prepare_set(
    mention_set: MentionSet,
    name: str,
    dictionary: Dictionary,
    abbreviations: bool,
    max_mentions: int | None,
    seed: int,
    subsets: Mapping[str, Callable[[Mention], bool]] | None,
    in_context: bool = False,
) -> PreparedSet:
    """Read, sample and (where documents exist) abbreviation-expand one mention set."""
    documents: dict[str, str] = {}
    types = list(mention_set.entity_types)
    if isinstance(mention_set.source, (str, Path)):
        source = str(mention_set.source)
        mention_list, documents = load_mentions(mention_set.source, mention_set.format, types or None)
        if mention_set.format == "heldout":
            check_heldout_leakage(mention_list, dictionary, mention_set.source)
    else:
        source, mention_list = "<in memory>", list(mention_set.source)
    scored = [m for m in mention_list if m.gold]
    if not scored:
        raise BadInputError(
            "no mention with a gold id to score" + (f" of type {types}" if types else ""), source
        )
    if max_mentions is not None and len(scored) > max_mentions:
        keep = np.sort(np.random.default_rng(seed).choice(len(scored), max_mentions, replace=False))
        scored = [scored[i] for i in keep]
    protocols: dict[str, list[Mention]] = {PLAIN: scored}
    expanded = None
    if abbreviations and documents:
        protocols[ABBREVIATIONS], expanded = expand_abbreviations(scored, documents)
    composite = np.array([m.composite for m in scored], dtype=bool)
    masks = {"all": np.ones(len(scored), dtype=bool), "no-composite": ~composite}
    for subset_name, keep_mention in (subsets or {}).items():
        masks[subset_name] = np.array([keep_mention(m) for m in scored], dtype=bool)
    stats = {
        "name": name,
        "source": source,
        "format": mention_set.format,
        "entity_types": types,
        **mention_stats(mention_list, dictionary),
        "abbreviations_expanded": expanded,
        "distinct_query_strings": len({m.text for ms in protocols.values() for m in ms}),
        "sampled": None if max_mentions is None else {"max_mentions": max_mentions, "seed": seed},
    }
    contexts = mention_contexts(scored, documents, source) if in_context and documents else None
    gold = [gold_parts(m, dictionary) for m in scored]
    first_of_pair = {p: first_of_each([(m.text, m.gold) for m in ms]) for p, ms in protocols.items()}
    stats["distinct_string_gold_pairs"] = {p: int(mask.sum()) for p, mask in first_of_pair.items()}
    return PreparedSet(name, stats, protocols, gold, masks, first_of_pair, contexts)


def as_mention_sets(
    mentions: str | Path | Sequence[Mention] | Sequence[MentionSet],
    mention_format: str,
    entity_types: Sequence[str] | None,
) -> list[MentionSet]:
    """One set from the single-benchmark arguments, or the given sets."""
    if isinstance(mentions, (str, Path)) or not mentions or not isinstance(mentions[0], MentionSet):
        return [MentionSet(mentions, mention_format, tuple(entity_types or ()))]  # type: ignore[arg-type]
    return list(mentions)  # type: ignore[arg-type]


def set_names(sets: Sequence[MentionSet]) -> list[str]:
    """Given names, else the file name (with its parent when two files share a name)."""
    used: set[str] = set()
    names = []
    for s in sets:
        default = Path(s.source).name if isinstance(s.source, (str, Path)) else "mentions"
        names.append(_unique_label(s.name or default, used))
    return names


@dataclass(frozen=True)
class Encoding:
    """How names and mentions are embedded, and where the dictionary vectors are cached."""

    batch_size: int
    max_length: int
    device: Device
    cache_dir: Path
    cache_dtype: str


@dataclass
class LinkingRun:
    """The settings shared by every model of one call, and what the call has produced so far."""

    dictionary: Dictionary
    sets: list[PreparedSet]
    pooling: Sequence[str]
    ks: Sequence[int]
    mrr_depth: int
    composites: str
    index: str
    encoding: Encoding
    rows: list[dict[str, Any]] = field(default_factory=list)
    predictions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hits: dict[tuple[str, str, str, str], np.ndarray] = field(default_factory=dict)
    cache: list[dict[str, Any]] = field(default_factory=list)
    recall: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    search: str = EXACT

    def query_strings(self) -> list[str]:
        return sorted({m.text for s in self.sets for ms in s.protocols.values() for m in ms})

    def evaluate_model(self, label: str, model_name: str) -> None:
        """Dictionary vectors (cached), mention vectors, then every pooling x set x protocol row."""
        from bali.lm import load_encoder, load_tokenizer

        tokenizer, encoder = load_tokenizer(model_name), load_encoder(model_name)
        encoding = self.encoding
        t0 = time.perf_counter()
        cached = dictionary_embeddings(
            encoder,
            tokenizer,
            self.dictionary.strings,
            self.pooling,
            encoding.cache_dir,
            max_length=encoding.max_length,
            batch_size=encoding.batch_size,
            device=encoding.device,
            dtype=encoding.cache_dtype,
            desc=f"{label}: names",
        )
        self.cache.append({"model": label, **cached.describe()})
        self.timing[f"{label}_names_seconds"] = time.perf_counter() - t0
        strings = self.query_strings()
        t0 = time.perf_counter()
        mentions = dictionary_embeddings(  # float32 always: the query side stays exact
            encoder,
            tokenizer,
            strings,
            self.pooling,
            encoding.cache_dir,
            max_length=encoding.max_length,
            batch_size=encoding.batch_size,
            device=encoding.device,
            desc=f"{label}: mentions",
        )
        queries = {p: in_input_order(v) for p, v in mentions.vectors.items()}
        self.cache[-1]["mentions_status"] = mentions.status
        self.timing[f"{label}_mentions_seconds"] = time.perf_counter() - t0
        query_index = {s: i for i, s in enumerate(strings)}
        for p in self.pooling:
            t0 = time.perf_counter()
            index = build_index(cached.vectors[p], self.index)
            if isinstance(index, ApproxIndex):
                self.search = index.describe()
                exact = ExactIndex(cached.vectors[p])
                self.recall.append({"model": label, "pooling": p, **recall_at_k(exact, index, queries[p])})
            ranking = rank_concepts(queries[p], index, self.dictionary, self.mrr_depth)
            self.timing[f"{label}_{p}_search_seconds"] = time.perf_counter() - t0
            for prepared in self.sets:
                for protocol, ms in prepared.protocols.items():
                    ranked = [ranking.concepts[query_index[m.text]] for m in ms]
                    self.score_rows(label, model_name, p, protocol, prepared, ms, ranked)
                if prepared.contexts is not None and p == "mean":
                    self.score_in_context(label, model_name, (encoder, tokenizer), index, prepared)

    def score_in_context(
        self,
        label: str,
        model_name: str,
        lm: tuple[Any, Any],
        index: ExactIndex | ApproxIndex,
        prepared: PreparedSet,
    ) -> None:
        """The second protocol: each mention pooled in its sentence, searched like the plain one."""
        assert prepared.contexts is not None
        t0 = time.perf_counter()
        encoder, tokenizer = lm
        vectors = encode_in_context(
            encoder,
            tokenizer,
            prepared.contexts,
            CONTEXT_MAX_LENGTH,
            self.encoding.batch_size,
            self.encoding.device,
            desc=f"{label}: mentions in context",
        )
        ranking = rank_concepts(vectors, index, self.dictionary, self.mrr_depth)
        self.timing[f"{label}_{prepared.name}_in_context_seconds"] = time.perf_counter() - t0
        scored = prepared.protocols[PLAIN]
        self.score_rows(label, model_name, "mean", IN_CONTEXT, prepared, scored, ranking.concepts)

    def score_rows(
        self,
        label: str,
        model_name: str,
        pooling: str,
        protocol: str,
        prepared: PreparedSet,
        ms: list[Mention],
        ranked: list[np.ndarray],
    ) -> None:
        """Rows per subset, the hit@1 vector for pairing, and the predictions of one condition."""
        ranks = [gold_rank(r, g, self.composites) for r, g in zip(ranked, prepared.gold, strict=True)]
        for subset, keep in prepared.subset_masks.items():
            metrics = score([ranks[i] for i in np.nonzero(keep)[0]], self.ks)
            self.rows.append(
                {
                    "model": label,
                    "model_path": str(model_name),
                    "benchmark": prepared.name,
                    "pooling": pooling,
                    "protocol": protocol,
                    "subset": subset,
                    **metrics,
                }
            )
        hit = np.array([r == 0 for r in ranks], dtype=bool)
        self.hits[label, prepared.name, pooling, protocol] = hit
        self.predictions[f"{label}.{prepared.name}.{pooling}.{protocol}"] = [
            {
                "doc_id": m.doc_id,
                "start": m.start,
                "end": m.end,
                "mention": m.text,
                "gold": "|".join("+".join(a) for a in m.gold),
                "top": [self.dictionary.concept_ids[c][0] for c in r[: max(self.ks)].tolist()],
                "hit@1": bool(h),
            }
            for m, r, h in zip(ms, ranked, hit, strict=True)
        ]


def in_input_order(vectors: VectorBlocks) -> np.ndarray:
    """A small cached set of vectors (the mention strings) as one float32 array in input order."""
    out = np.zeros((vectors.rows, vectors.dim), dtype=np.float32)
    for block, rows in vectors.blocks(65536):
        out[rows] = block
    return out


def evaluate_linking(
    models: Sequence[str],
    dictionary: str | Path | Dictionary,
    mentions: str | Path | Sequence[Mention] | Sequence[MentionSet],
    pooling: Sequence[str] = ("mean",),
    out_dir: str | Path | None = None,
    *,
    mention_format: str = "pubtator",
    entity_types: Sequence[str] | None = None,
    abbreviations: bool = False,
    ks: Sequence[int] = (1, 5),
    mrr_depth: int = 64,
    batch_size: int = 256,
    max_length: int = NAME_MAX_LENGTH,
    device: str = "cpu",
    overwrite: bool = False,
    model_labels: Sequence[str] | None = None,
    max_mentions: int | None = None,
    seed: int = 42,
    subsets: Mapping[str, Callable[[Mention], bool]] | None = None,
    composites: str = "any",
    dictionary_format: str = "medic",
    cache_dir: str | Path | None = None,
    cache_dtype: str = "float32",
    index: str = "exact",
    in_context: bool = False,
) -> dict[str, Any]:
    """Evaluate each model with each pooling on each mention set; write results.json and report.md.

    ``dictionary`` is a KG artefact directory, a dictionary file (``dictionary_format``: MEDIC-style
    ``ID||name|...`` or ``tsv``) or a loaded :class:`Dictionary`. ``mentions`` is one source (a file,
    a KG directory for ``heldout``, or mention objects, read with ``mention_format`` and
    ``entity_types``) or several :class:`MentionSet`; all sets share one dictionary encoding per
    model. Dictionary vectors live in ``cache_dir`` (default: ``embedding_cache`` next to
    ``out_dir``; a temporary directory without either) and are reused by later calls with the same
    model, dictionary, pooling and max length. ``max_mentions`` scores a fixed random sample
    (``seed``) of each set's mentions with a gold id; ``subsets`` adds one row per named filter next
    to "all" and "no-composite"; ``in_context`` adds rows of the mentions encoded in their sentence
    (:mod:`bali.evaluate.context`, mean pooling, PubTator only). With ``out_dir`` the results
    directory is written atomically; the dict is returned either way.
    """
    _check_options(models, pooling, composites)
    ks = sorted(set(ks))
    mrr_depth = max(mrr_depth, max(ks))
    started = time.perf_counter()
    sets = as_mention_sets(mentions, mention_format, entity_types)
    dict_obj, prepared = _read_inputs(
        dictionary, dictionary_format, sets, abbreviations, max_mentions, seed, subsets, in_context
    )
    with _cache_location(cache_dir, out_dir) as cache:
        encoding = Encoding(batch_size, max_length, resolve_device(device), cache, cache_dtype)
        run = LinkingRun(dict_obj, prepared, pooling, ks, mrr_depth, composites, index, encoding)
        run.timing["load_seconds"] = time.perf_counter() - started
        _evaluate_models(run, models, model_labels)
    run.timing["total_seconds"] = time.perf_counter() - started
    return _finish_run(run, device, abbreviations, seed if max_mentions else None, out_dir, overwrite)


def _check_options(models: Sequence[str], pooling: Sequence[str], composites: str) -> None:
    """Reject a call that cannot run before any file is read."""
    if not models:
        raise BadInputError("give at least one model")
    for p in pooling:
        if p not in POOLINGS:
            raise BadInputError(f"unknown pooling '{p}' (expected one of {POOLINGS})")
    if composites not in COMPOSITES:
        raise BadInputError(f"unknown composites rule '{composites}' (expected one of {COMPOSITES})")


def _read_inputs(
    dictionary: str | Path | Dictionary,
    dictionary_format: str,
    sets: Sequence[MentionSet],
    abbreviations: bool,
    max_mentions: int | None,
    seed: int,
    subsets: Mapping[str, Callable[[Mention], bool]] | None,
    in_context: bool = False,
) -> tuple[Dictionary, list[PreparedSet]]:
    """The dictionary, and every mention set read and sampled against it (abbreviations and
    in-context rows need PubTator document text)."""
    dict_obj = (
        dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary, dictionary_format)
    )
    prepared = [
        prepare_set(s, name, dict_obj, abbreviations, max_mentions, seed, subsets, in_context)
        for s, name in zip(sets, set_names(sets), strict=True)
    ]
    if in_context and not any(p.contexts for p in prepared):
        raise BadInputError(
            "--in-context needs document text (PubTator mentions)", prepared[0].stats["source"]
        )
    if abbreviations and not any(ABBREVIATIONS in p.protocols for p in prepared):
        raise BadInputError(
            "--abbreviations needs document text (PubTator mentions)", prepared[0].stats["source"]
        )
    return dict_obj, prepared


@contextmanager
def _cache_location(cache_dir: str | Path | None, out_dir: str | Path | None) -> Iterator[Path]:
    """The given cache directory, else ``embedding_cache`` next to ``out_dir``, else a temporary
    directory that is removed when the call ends."""
    if cache_dir is not None:
        yield Path(cache_dir)
    elif out_dir is not None:
        yield Path(out_dir).parent / CACHE_DIRNAME
    else:
        with tempfile.TemporaryDirectory(prefix="bali-embeddings-") as tmp:
            yield Path(tmp)


def _evaluate_models(run: LinkingRun, models: Sequence[str], model_labels: Sequence[str] | None) -> None:
    """Each model in turn, under its given label, else a unique one made from its name."""
    labels = list(model_labels) if model_labels else []
    used: set[str] = set(labels)
    for m_index, model_name in enumerate(models):
        label = labels[m_index] if m_index < len(labels) else _model_label(str(model_name), used)
        run.evaluate_model(label, str(model_name))


def _finish_run(
    run: LinkingRun,
    device: str,
    abbreviations: bool,
    seed: int | None,
    out_dir: str | Path | None,
    overwrite: bool,
) -> dict[str, Any]:
    """The finished run's results, also written as a results directory when ``out_dir`` is given."""
    result = linking_result(run, device, abbreviations, seed)
    if out_dir is not None:
        write_linking_results(result, run.predictions, out_dir, overwrite)
    return result


def linking_result(run: LinkingRun, device: str, abbreviations: bool, seed: int | None) -> dict[str, Any]:
    """results.json's content for a finished run."""
    return {
        "task": "linking",
        "protocol": protocol_text(run.ks, run.mrr_depth, run.composites, run.search),
        "dictionary": run.dictionary.stats(),
        "mention_sets": [p.stats for p in run.sets],
        "settings": {
            "pooling": list(run.pooling),
            "ks": list(run.ks),
            "mrr_depth": run.mrr_depth,
            "batch_size": run.encoding.batch_size,
            "max_length": run.encoding.max_length,
            "abbreviations": abbreviations,
            "in_context": any(p.contexts is not None for p in run.sets),
            "composites": run.composites,
            "device": device,
            "device_used": run.encoding.device.name,
            "precision": run.encoding.device.precision,
            "index": run.index,
            "cache_dtype": run.encoding.cache_dtype,
            "seed": seed,
        },
        "cache": run.cache,
        "search": {"index": run.index, "description": run.search, "recall_vs_exact": run.recall},
        "rows": run.rows,
        "paired": paired_comparisons(
            run.hits, {(p.name, protocol): m for p in run.sets for protocol, m in p.first_of_pair.items()}
        ),
        "timing": run.timing,
    }


def write_linking_results(
    result: dict[str, Any], predictions: dict[str, list[dict[str, Any]]], out_dir: str | Path, overwrite: bool
) -> Path:
    """results.json, report.md and per-row predictions (top concepts per mention, for error analysis)."""
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
