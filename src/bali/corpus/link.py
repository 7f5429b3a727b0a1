"""`bali corpus link`: documents -> sentences -> mentions linked to KG nodes -> linked-corpus artefact.

Two sources of mentions:

* **gold** (PubTator, BERN2): the annotations' ids are mapped to KG nodes through the KG's
  cross-references (``KnowledgeGraph.lookup_xref``, ids normalised by :mod:`bali.ids`); alternative
  (``|``) and composite (``+``) ids map to the union of the nodes they resolve to. Every annotation
  ends up in exactly one manifest bucket: mapped, or unmapped with its reason.
* **dictionary** (plain text, JSONL, the embedded definitions): :class:`DictionaryLinker`, with the
  document's own abbreviation definitions expanded.

Sentences come from :func:`bali.corpus.sentences.split_sentences`; mentions move to sentence offsets,
and one that crosses a sentence boundary is dropped and counted. A sentence that contains a held-out
synonym of the KG (either split) is dropped whatever its source, and counted.
"""

from __future__ import annotations

import bisect
import itertools
import multiprocessing as mp
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from functools import lru_cache
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.corpus.abbreviations import find_abbreviations
from bali.corpus.artifact import CorpusWriter
from bali.corpus.builtin import definition_documents
from bali.corpus.config import CorpusConfig
from bali.corpus.linker import DictionaryLinker, LinkedMention, LinkerOptions, read_stoplist
from bali.corpus.readers import Document, GoldAnnotation, InputBudget, check_input_file, read_documents
from bali.corpus.sentences import split_sentences
from bali.errors import BadInputError, ErrorBudget
from bali.ids import split_gold_ids
from bali.kg.graph import XREFS, KnowledgeGraph

GOLD = "gold"
_CHUNK_DOCUMENTS = 256

Spans = list[tuple[int, int]]
SentenceMentions = list[list[tuple[int, int, tuple[int, ...], str]]]


class GoldMapper:
    """Maps gold id fields to KG nodes and keeps the per-reason counts the manifest reports.

    An id carried by several nodes maps to those whose cross-reference is marked preferred (MeSH
    main heading, preferred atom) when there are any: in UMLS a MeSH code sits on entry-term atoms
    of other CUIs too, and the reference implementation kept an arbitrary one of them (spec §A.2).
    """

    def __init__(self, kg: KnowledgeGraph, config: CorpusConfig, budget: ErrorBudget) -> None:
        self.kg = kg
        self.demoted = _demoted_xrefs(kg)
        self.budget = budget
        self.unknown_is_error = config.unknown_ids == "error"
        self.types = {t.lower() for t in config.entity_types}
        self.counts: Counter[str] = Counter()
        self.unknown_prefixes: Counter[str] = Counter()
        self._resolve = lru_cache(maxsize=1 << 20)(self._resolve_uncached)

    def _resolve_uncached(self, field: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """(nodes, ids the KG does not know) for one raw id field."""
        alternatives, _ = split_gold_ids(field)
        nodes: dict[int, None] = {}
        missing: list[str] = []
        for parts in alternatives:
            for part in parts:
                found = self.kg.lookup_xref(part)
                if part in self.demoted:
                    found = [n for n in found if n not in self.demoted[part]]
                if found:
                    nodes.update(dict.fromkeys(found))
                else:
                    missing.append(part)
        return tuple(nodes), tuple(missing)

    def map(self, doc: Document, ann: GoldAnnotation) -> tuple[int, ...] | None:
        """KG nodes of one annotation, or None (counted under the reason it was not mapped)."""
        self.counts["total"] += 1
        if self.types and ann.type.lower() not in self.types:
            self.counts["type_excluded"] += 1
            return None
        nodes, missing = self._resolve(ann.ids)
        if not nodes and not missing:
            self.counts["no_id"] += 1
            return None
        for part in missing:
            self.unknown_prefixes[part.split(":", 1)[0] if ":" in part else "(none)"] += 1
        if not nodes:
            if self.unknown_is_error:
                self.budget.record(
                    "unknown_id",
                    f"id '{ann.ids}' of mention '{ann.mention}' in document {doc.doc_id} is not in the KG",
                    doc.path,
                    ann.line,
                )
            self.counts["unknown_id"] += 1
            return None
        if missing:
            self.counts["partially_mapped"] += 1
        self.counts["mapped"] += 1
        return nodes

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "total": c["total"],
            "mapped": c["mapped"],
            "partially_mapped": c["partially_mapped"],
            "unmapped": {
                "no_id": c["no_id"],
                "unknown_id": c["unknown_id"],
                "type_excluded": c["type_excluded"],
            },
            "unknown_id_prefixes": dict(self.unknown_prefixes.most_common(20)),
        }


def _demoted_xrefs(kg: KnowledgeGraph) -> dict[str, set[int]]:
    """Non-preferred nodes of every xref key that also has a preferred node (vectorised)."""
    table = pq.read_table(kg.directory / XREFS, columns=["key", "node_id", "preferred"])
    if not table.num_rows:
        return {}
    with_preferred = table.group_by("key").aggregate([("preferred", "any")])
    keys = with_preferred.filter(pc.field("preferred_any")).column("key")
    demoted = table.filter(
        pc.and_(pc.invert(table.column("preferred")), pc.is_in(table.column("key"), value_set=keys))
    )
    out: dict[str, set[int]] = {}
    for key, node in zip(
        demoted.column("key").to_pylist(), demoted.column("node_id").to_pylist(), strict=True
    ):
        out.setdefault(key, set()).add(node)
    return out


def _documents(
    kg: KnowledgeGraph, config: CorpusConfig, budget: InputBudget, show_progress: bool | None
) -> Iterable[tuple[Document, int]]:
    """(document, node to exclude or -1) from the embedded definitions or the input files, lazily,
    behind a progress bar."""
    documents: Iterable[tuple[Document, int]]
    if config.builtin:
        documents = definition_documents(kg, budget.skipped)
    else:
        documents = (
            (doc, -1) for doc in read_documents(list(config.inputs), config.format, budget, config.text_unit)
        )
    return tqdm(
        documents,
        desc="linking",
        unit=" docs",
        disable=True if show_progress is False else None,
        mininterval=2.0,
    )


def _mention_source(config: CorpusConfig) -> str:
    if config.builtin:
        return "dictionary"
    has_gold = config.format in ("pubtator", "bern2")
    if config.mentions == "auto":
        return "gold" if has_gold else "dictionary"
    if config.mentions == "gold" and not has_gold:
        raise BadInputError(f"--mentions gold needs annotated input (pubtator, bern2), not '{config.format}'")
    return config.mentions


def _to_sentences(
    spans: list[tuple[int, int]], mentions: list[LinkedMention], counts: Counter[str]
) -> SentenceMentions:
    """Document-level mentions moved to sentence offsets; boundary-crossing ones counted and dropped."""
    per_sentence: SentenceMentions = [[] for _ in spans]
    starts = [s for s, _ in spans]
    for start, end, nodes, origin in mentions:
        index = bisect.bisect_right(starts, start) - 1
        if index < 0 or end > spans[index][1]:
            counts["crossing_sentence_boundary"] += 1
            continue
        offset = spans[index][0]
        per_sentence[index].append((start - offset, end - offset, nodes, origin))
    return per_sentence


def _gold_mentions(doc: Document, mapper: GoldMapper, counts: Counter[str]) -> list[LinkedMention]:
    """Mapped gold mentions of a document; identical spans are merged (union of nodes) and counted."""
    by_span: dict[tuple[int, int], dict[int, None]] = {}
    for ann in doc.annotations:
        nodes = mapper.map(doc, ann)
        if nodes is None:
            continue
        key = (ann.start, ann.end)
        if key in by_span:
            counts["duplicate_spans_merged"] += 1
        by_span.setdefault(key, {}).update(dict.fromkeys(nodes))
    return sorted((s, e, tuple(n), GOLD) for (s, e), n in by_span.items())


def _gold_document(doc: Document, mapper: GoldMapper, counts: Counter[str]) -> tuple[Spans, SentenceMentions]:
    """Sentences of one document and its mapped gold mentions at sentence offsets."""
    spans = split_sentences(doc.text)
    return spans, _to_sentences(spans, _gold_mentions(doc, mapper, counts), counts)


def heldout_filter(kg: KnowledgeGraph) -> DictionaryLinker | None:
    """A linker over the KG's held-out synonyms (every split), or None when it has none.

    Any sentence it finds a match in is dropped from the corpus: a held-out synonym in the training
    text (a definition that uses it, a gold mention written that way) would teach the LM the very
    answer the held-out evaluation asks for. Matching is the dictionary linker's (normalised,
    word-bounded, possessive variants), with no minimum length and acronyms matched in any case
    (an uncased LM reads "pie" as the held-out "PIE"), so the filter is broader than linking.
    """
    names = kg.heldout_names()
    if not names:
        return None
    options = LinkerOptions(min_length=1, acronym_max_length=0, expand_abbreviations=False)
    return DictionaryLinker(names, np.zeros(len(names), dtype=np.int64), options, show_progress=False)


def link_corpus(
    kg_dir: str | Path,
    out_dir: str | Path,
    config: CorpusConfig,
    overwrite: bool = False,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Build the linked-corpus artefact in ``out_dir`` and return its manifest.

    ``config.builtin`` links the KG's own definitions; otherwise ``config.inputs`` are read in
    ``config.format``. Bad records raise :class:`BadInputError` unless ``config.max_errors`` allows
    them, in which case they are counted under ``counts.errors``.
    """
    began = time.perf_counter()
    if Path(out_dir).exists() and not overwrite:  # before minutes of automaton building, not after
        raise BadInputError("output directory exists; pass --overwrite to replace it", out_dir)
    kg = KnowledgeGraph.load(kg_dir)
    _check_inputs(config)
    source = _mention_source(config)
    budget = InputBudget(config.max_errors)
    counts: Counter[str] = Counter()
    mapper: GoldMapper | None = None
    linker: DictionaryLinker | None = None
    linker_seconds = 0.0
    if source == "gold":
        mapper = GoldMapper(kg, config, budget)
    else:
        linker, linker_seconds = _build_linker(kg, config, show_progress)

    leak_filter = heldout_filter(kg)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        with CorpusWriter(tmp) as writer:
            documents = _documents(kg, config, budget, show_progress)
            processed = _processed(documents, mapper, linker, config.workers, counts)
            origins, concepts = _write_sentences(processed, writer, leak_filter, counts)
            num_sentences, num_mentions = writer.num_sentences, writer.num_mentions
        if counts["documents"] == 0:
            raise BadInputError("no documents were read from the input", ", ".join(config.inputs) or None)
        elapsed = time.perf_counter() - began
        result_counts = {
            **_result_counts(counts, origins, concepts, num_sentences, num_mentions, budget, elapsed),
            **_source_counts(mapper, linker, linker_seconds, counts),
        }
        manifest = make_manifest(
            "corpus",
            _manifest_inputs(kg_dir, config),
            {**config.model_dump(mode="json"), "mention_source": source},
            result_counts,
        )
        write_json_atomic(tmp / "manifest.json", manifest)
    return manifest


def _check_inputs(config: CorpusConfig) -> None:
    """Reject a run without inputs or with a missing input file before the KG's linker is built."""
    if config.builtin:
        return
    if not config.inputs:
        raise BadInputError("no input files: pass --input FILE... --format FORMAT, or --builtin")
    for path in config.inputs:
        check_input_file(Path(path))


def _build_linker(
    kg: KnowledgeGraph, config: CorpusConfig, show_progress: bool | None
) -> tuple[DictionaryLinker, float]:
    """The dictionary linker over every KG name with the configured options, and its build seconds."""
    stoplist = read_stoplist(config.stoplist) if config.stoplist else frozenset()
    options = LinkerOptions(
        min_length=config.min_name_length,
        ambiguous=config.ambiguous,
        acronym_max_length=config.acronym_max_length,
        expand_abbreviations=config.expand_abbreviations,
        number_variants=config.number_variants,
    )
    built = time.perf_counter()
    linker = DictionaryLinker.from_kg(kg, options, stoplist, show_progress)
    return linker, time.perf_counter() - built


def _processed(
    documents: Iterable[tuple[Document, int]],
    mapper: GoldMapper | None,
    linker: DictionaryLinker | None,
    workers: int,
    counts: Counter[str],
) -> Iterator[tuple[Document, Spans, SentenceMentions]]:
    """(document, sentence spans, mentions per sentence), lazily: gold mentions when ``mapper`` is
    given, otherwise dictionary mentions, in ``workers`` processes when more than one."""
    if mapper is not None:
        return ((doc, *_gold_document(doc, mapper, counts)) for doc, _ in documents)
    assert linker is not None
    if workers > 1:
        return _link_parallel(documents, linker, workers, counts)
    return ((doc, *_link_text(doc.text, own_node, linker, counts)) for doc, own_node in documents)


def _write_sentences(
    processed: Iterable[tuple[Document, Spans, SentenceMentions]],
    writer: CorpusWriter,
    leak_filter: DictionaryLinker | None,
    counts: Counter[str],
) -> tuple[Counter[str], set[int]]:
    """Write every sentence that holds no held-out synonym; return mentions by origin and the
    concepts mentioned (the sentence and document tallies go to ``counts``)."""
    origins: Counter[str] = Counter()
    concepts: set[int] = set()
    for doc, spans, per_sentence in processed:
        counts["documents"] += 1
        for index, ((start, end), mentions) in enumerate(zip(spans, per_sentence, strict=True)):
            if leak_filter is not None and leak_filter.occurs_in(doc.text[start:end]):
                counts["heldout_synonym"] += 1
                continue
            writer.add(doc.doc_id, index, doc.text[start:end], mentions)
            if mentions:
                counts["sentences_with_mentions"] += 1
            for mention in mentions:
                origins[mention[3]] += 1
                concepts.update(mention[2])
    return origins, concepts


def _result_counts(
    counts: Counter[str],
    origins: Counter[str],
    concepts: set[int],
    num_sentences: int,
    num_mentions: int,
    budget: InputBudget,
    elapsed: float,
) -> dict[str, Any]:
    """The manifest's counts common to both mention sources."""
    return {
        "documents": counts["documents"],
        "sentences": num_sentences,
        "sentences_with_mentions": counts["sentences_with_mentions"],
        "mentions": num_mentions,
        "mentions_by_origin": dict(origins),
        "distinct_concepts": len(concepts),
        "sentences_dropped": {"heldout_synonym": counts["heldout_synonym"]},
        "mentions_dropped": {
            "crossing_sentence_boundary": counts["crossing_sentence_boundary"],
            "own_concept": counts["own_concept"],
        },
        "errors": budget.as_dict(),
        "skipped": dict(budget.skipped),
        "seconds": round(elapsed, 2),
        "sentences_per_second": round(num_sentences / elapsed, 1) if elapsed else None,
    }


def _source_counts(
    mapper: GoldMapper | None, linker: DictionaryLinker | None, linker_seconds: float, counts: Counter[str]
) -> dict[str, Any]:
    """The manifest's counts of the mention source: gold mapping, or the dictionary linker."""
    if mapper is not None:
        return {"gold": {**mapper.as_dict(), "duplicate_spans_merged": counts["duplicate_spans_merged"]}}
    assert linker is not None
    return {
        "linker": {**linker.stats(), "build_seconds": round(linker_seconds, 2)},
        "abbreviations_defined": counts["abbreviations_defined"],
    }


def _manifest_inputs(kg_dir: str | Path, config: CorpusConfig) -> dict[str, Any]:
    """The files the corpus was built from, as the manifest records them."""
    inputs: dict[str, Any] = {"kg": str(kg_dir)}
    if not config.builtin:
        inputs["inputs"] = list(config.inputs)
    if config.stoplist:
        inputs["stoplist"] = config.stoplist
    return inputs


def _link_text(
    text: str, own_node: int, linker: DictionaryLinker, counts: Counter[str]
) -> tuple[Spans, SentenceMentions]:
    """Sentences of one document and their dictionary mentions, with the document's abbreviations
    expanded and links to ``own_node`` (the concept a definition defines; -1: none) removed."""
    spans = split_sentences(text)
    abbreviations = None
    if linker.options.expand_abbreviations and "(" in text:
        found = find_abbreviations(text)
        if found:
            counts["abbreviations_defined"] += len(found)
            abbreviations = linker.resolve_abbreviations(found)
    out: SentenceMentions = []
    for start, end in spans:
        mentions = linker.link(text[start:end], abbreviations)
        if own_node >= 0:
            kept = []
            for m_start, m_end, nodes, origin in mentions:
                if own_node in nodes:
                    nodes = tuple(n for n in nodes if n != own_node)
                    if not nodes:
                        counts["own_concept"] += 1
                        continue
                kept.append((m_start, m_end, nodes, origin))
            mentions = kept
        out.append(mentions)
    return spans, out


# The linker of the parent process, inherited by forked workers (never pickled: 1M-name automata
# are hundreds of MB).
_WORKER_LINKER: DictionaryLinker | None = None


def _link_chunk(chunk: list[tuple[str, int]]) -> tuple[list[tuple[Spans, SentenceMentions]], Counter[str]]:
    assert _WORKER_LINKER is not None
    counts: Counter[str] = Counter()
    return [_link_text(text, own, _WORKER_LINKER, counts) for text, own in chunk], counts


def _link_parallel(
    documents: Iterable[tuple[Document, int]], linker: DictionaryLinker, workers: int, counts: Counter[str]
) -> Iterator[tuple[Document, Spans, SentenceMentions]]:
    """:func:`_link_text` in ``workers`` forked processes, results in input order.

    At most ``4 * workers`` chunks are in flight, so memory stays bounded however long the input
    (``Pool.imap`` would read the whole input ahead).
    """
    global _WORKER_LINKER
    _WORKER_LINKER = linker
    pending: deque[tuple[list[Document], AsyncResult]] = deque()

    def drain() -> Iterator[tuple[Document, Spans, SentenceMentions]]:
        docs, result = pending.popleft()
        linked, chunk_counts = result.get()
        counts.update(chunk_counts)
        for doc, (spans, per_sentence) in zip(docs, linked, strict=True):
            yield doc, spans, per_sentence

    try:
        with mp.get_context("fork").Pool(workers) as pool:
            iterator = iter(documents)
            while chunk := list(itertools.islice(iterator, _CHUNK_DOCUMENTS)):
                payload = [(doc.text, own) for doc, own in chunk]
                pending.append(([doc for doc, _ in chunk], pool.apply_async(_link_chunk, (payload,))))
                if len(pending) >= 4 * workers:
                    yield from drain()
            while pending:
                yield from drain()
    finally:
        _WORKER_LINKER = None
