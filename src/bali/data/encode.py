"""`bali data build`: tokenise a linked corpus and the KG names into a self-contained training dataset.

The corpus is streamed in blocks of sentences; each block goes through the fast tokenizer in one
call (``return_offsets_mapping``) and everything after that is vectorised numpy:

* a subword is a mention token when its character span lies inside the mention span (found with two
  ``searchsorted`` calls over per-block monotone keys, no per-token Python);
* (token, concept) pairs are deduplicated, so a token inside two mentions of the same concept counts
  once in the entity mean (the reference code's duplicate-edge bug), while a token inside mentions of
  several concepts maps to each of them;
* one entity per (sentence, concept), pooled over all its mentions in the sentence;
* sentences are cut at ``max_length`` tokens including special tokens; a mention that does not fit
  entirely is dropped with all its tokens, never left partial.

Sentences are tokenised with the tokenizer's own normaliser (an uncased model lower-cases them, a
cased one does not), which keeps character offsets exact. Names and relation phrases are lower-cased
when ``DataConfig.lowercase`` is set, as BALI's README does; for an uncased tokenizer both choices
coincide.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from bali.artifacts import atomic_output_dir, fingerprint, make_manifest, read_manifest, write_json_atomic
from bali.corpus.artifact import MENTIONS, SENTENCES
from bali.data import layout
from bali.data.config import DataConfig
from bali.data.layout import exclusive_cumsum, ragged_arange
from bali.data.masking import STREAM_SPLIT, base_key, keyed_uniform
from bali.errors import BadInputError, ErrorBudget
from bali.kg.graph import CONCEPTS, KnowledgeGraph
from bali.kg.graph import NAMES as KG_NAMES
from bali.kg.graph import RELATIONS as KG_RELATIONS
from bali.lm import load_tokenizer, tokenizer_fingerprint

log = logging.getLogger(__name__)

SENTENCE_BLOCK = 4096
NAME_BLOCK = 16384
SHARD_SENTENCES = 262_144
RELATION_MAX_LENGTH = 16
SPLIT_SEED = 17


def special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Special tokens the tokenizer puts before and after a single sequence ([CLS] / [SEP] for BERT).

    Sentences are tokenised without special tokens and cut by us (so a mention cut by truncation can
    be detected and dropped whole); the template is then added back exactly as the model expects.
    """
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare) :])
    raise BadInputError("cannot locate the text inside the tokenizer's special-token template")


def backend_tokenizer(tokenizer: Any, max_length: int | None) -> Any:
    """A private copy of the fast tokenizer's Rust backend, truncating at ``max_length`` or not at all.

    ``tokenizer(texts)`` runs exactly this backend and then converts every encoding into Python
    dicts, which costs about a quarter of the build time; reading ``ids``/``offsets`` straight from
    the encodings gives identical tokens. A copy, so the caller's tokenizer state is left alone.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    if max_length is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(max_length=max_length)
    backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return backend


def check_offsets(tokenizer: Any, model: str) -> None:
    """Mention alignment needs character offsets: refuse a tokenizer that cannot produce them."""
    if not getattr(tokenizer, "is_fast", False):
        raise BadInputError(
            f"the tokenizer of '{model}' has no offset mapping (not a fast tokenizer); "
            "mention tokens cannot be aligned"
        )
    try:
        probe = tokenizer(["ab cd"], add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise BadInputError(f"the tokenizer of '{model}' cannot return an offset mapping: {exc}") from exc
    if "offset_mapping" not in probe:
        raise BadInputError(f"the tokenizer of '{model}' returned no offset mapping")


def special_tokens(tokenizer: Any, prefix: list[int], suffix: list[int]) -> dict[str, Any]:
    """What the collator needs from the tokenizer, recorded so it never has to load it."""
    return {
        "prefix": prefix,
        "suffix": suffix,
        "cls_token_id": tokenizer.cls_token_id if tokenizer.cls_token_id is not None else prefix[0],
        "sep_token_id": tokenizer.sep_token_id if tokenizer.sep_token_id is not None else suffix[-1],
        "pad_token_id": tokenizer.pad_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "special_ids": sorted(set(tokenizer.all_special_ids)),
        "vocab_size": len(tokenizer),
    }


@dataclass
class MentionBlock:
    """Mentions of one block of sentences, as flat arrays (global sentence ids, parquet row numbers)."""

    rows: np.ndarray
    sentence_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    node_ids: np.ndarray
    node_counts: np.ndarray


@dataclass
class EncodedBlock:
    """Kept sentences of one block: tokens, (token, entity) pairs and entities (KG node ids)."""

    input_ids: np.ndarray
    input_lengths: np.ndarray
    mention_positions: np.ndarray
    mention_entities: np.ndarray
    mention_counts: np.ndarray
    entity_nodes: np.ndarray
    entity_counts: np.ndarray
    sentence_ids: np.ndarray


class MentionStream:
    """Reads ``mentions.parquet`` in order, handing out the mentions of consecutive sentence ranges.

    The corpus writer emits mentions sorted by sentence id; streaming relies on it (memory stays
    bounded) and an unsorted file is reported as bad input rather than silently re-sorted in memory.
    """

    def __init__(self, path: Path, batch_size: int = 65536) -> None:
        self.path = path
        self._batches = pq.ParquetFile(path).iter_batches(
            batch_size=batch_size, columns=["sentence_id", "start", "end", "node_ids"]
        )
        self._buffer: list[pa.RecordBatch] = []
        self._buffer_sids: list[np.ndarray] = []
        self._rows_read = 0
        self._first_row = 0
        self._last_sid = -1
        self._exhausted = False

    def _read_more(self) -> bool:
        batch = next(self._batches, None)
        if batch is None:
            self._exhausted = True
            return False
        sids = batch.column("sentence_id").to_numpy(zero_copy_only=False).astype(np.int64)
        if sids.size:
            previous = np.concatenate([[self._last_sid], sids[:-1]])
            bad = np.nonzero(sids < previous)[0]
            if bad.size:
                row = self._rows_read + int(bad[0])
                raise BadInputError(
                    f"mention row {row} is out of order (sentence_id {int(sids[bad[0]])} after "
                    f"{int(previous[bad[0]])}); mentions must be sorted by sentence_id",
                    self.path,
                    row + 1,
                )
            if sids[0] < 0:
                raise BadInputError(f"mention row {self._rows_read} has a negative sentence_id", self.path)
            self._last_sid = int(sids[-1])
        self._buffer.append(batch)
        self._buffer_sids.append(sids)
        self._rows_read += batch.num_rows
        return True

    def take_before(self, stop: int) -> MentionBlock:
        """All mentions with ``sentence_id < stop`` not handed out yet."""
        while not self._exhausted and (self._last_sid < stop):
            if not self._read_more():
                break
        if self._buffer:
            table = pa.Table.from_batches(self._buffer)
            sids = np.concatenate(self._buffer_sids)
        else:
            table = pa.table({"sentence_id": pa.array([], pa.int64())})
            sids = np.zeros(0, dtype=np.int64)
        cut = int(np.searchsorted(sids, stop, side="left"))
        taken = table.slice(0, cut)
        rest = table.slice(cut)
        self._buffer = rest.to_batches() if rest.num_rows else []
        self._buffer_sids = [sids[cut:]] if rest.num_rows else []
        rows = np.arange(self._first_row, self._first_row + cut, dtype=np.int64)
        self._first_row += cut
        if cut == 0:
            empty = np.zeros(0, dtype=np.int64)
            return MentionBlock(rows, empty, empty, empty, empty, empty)
        node_lists = taken.column("node_ids").combine_chunks()
        return MentionBlock(
            rows=rows,
            sentence_ids=sids[:cut],
            starts=taken.column("start").to_numpy().astype(np.int64),
            ends=taken.column("end").to_numpy().astype(np.int64),
            node_ids=pc.list_flatten(node_lists).to_numpy(zero_copy_only=False).astype(np.int64),
            node_counts=pc.list_value_length(node_lists).fill_null(0).to_numpy().astype(np.int64),
        )

    def leftover_row(self) -> int | None:
        """Row of the first mention not handed out (it points past the last sentence), if any."""
        while not self._exhausted:
            self._read_more()
        return self._first_row if any(b.num_rows for b in self._buffer) else None


@dataclass
class SentenceEncoder:
    """Tokenises blocks of sentences and aligns their mentions (see the module docstring)."""

    tokenizer: Any
    max_length: int
    num_nodes: int
    drop_without_mentions: bool
    errors: ErrorBudget
    mentions_path: Path
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.prefix, self.suffix = special_template(self.tokenizer)
        self._backend = backend_tokenizer(self.tokenizer, None)
        self.content_length = self.max_length - len(self.prefix) - len(self.suffix)
        if self.content_length < 1:
            raise BadInputError(f"max_length {self.max_length} leaves no room for text after special tokens")

    def _tokenise(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids, (start, end) character offsets and per-sentence counts, flattened."""
        encodings = self._backend.encode_batch(texts, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        total = int(lengths.sum())
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=total)
        offsets = np.fromiter(
            chain.from_iterable(chain.from_iterable(e.offsets for e in encodings)),
            dtype=np.int64,
            count=2 * total,
        ).reshape(total, 2)
        return ids, offsets, lengths

    def _validate(self, mentions: MentionBlock, local: np.ndarray, text_lengths: np.ndarray) -> np.ndarray:
        """Mask of usable mentions; bad spans and unknown node ids go through the error budget."""
        bad_span = (
            (mentions.starts < 0) | (mentions.ends > text_lengths[local]) | (mentions.starts >= mentions.ends)
        )
        node_owner = np.repeat(np.arange(len(mentions.rows)), mentions.node_counts)
        unknown = (mentions.node_ids < 0) | (mentions.node_ids >= self.num_nodes)
        bad_node = np.zeros(len(mentions.rows), dtype=bool)
        bad_node[node_owner[unknown]] = True
        node_starts = exclusive_cumsum(mentions.node_counts)
        for i in np.nonzero(bad_span | bad_node)[0]:
            row, sid = int(mentions.rows[i]), int(mentions.sentence_ids[i])
            if bad_span[i]:
                self.errors.record(
                    "span_outside_text",
                    f"mention row {row} (sentence {sid}): span {int(mentions.starts[i])}-{int(mentions.ends[i])} "
                    f"is empty or outside the {int(text_lengths[local[i]])}-character sentence",
                    self.mentions_path,
                    row + 1,
                )
            else:
                ids = mentions.node_ids[node_starts[i] : node_starts[i + 1]]
                wrong = [int(x) for x in ids if x < 0 or x >= self.num_nodes]
                self.errors.record(
                    "unknown_node_id",
                    f"mention row {row} (sentence {sid}): node id(s) {wrong} unknown to the KG "
                    f"({self.num_nodes} nodes); was the corpus linked against another KG?",
                    self.mentions_path,
                    row + 1,
                )
        without_ids = mentions.node_counts == 0
        self.counts["mentions_without_node_ids"] += int(np.count_nonzero(without_ids & ~bad_span))
        return ~(bad_span | bad_node | without_ids)

    def encode(self, texts: list[str], first_sid: int, mentions: MentionBlock) -> EncodedBlock:
        """Tokenise one block of sentences (global ids ``first_sid`` ...) and align its mentions."""
        n = len(texts)
        ids, offsets, lengths = self._tokenise(texts)
        tok_base = exclusive_cumsum(lengths)
        token_sentence = np.repeat(np.arange(n, dtype=np.int64), lengths)
        kept_tokens = np.minimum(lengths, self.content_length)
        text_lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
        local = mentions.sentence_ids - first_sid
        self.counts["mentions_read"] += len(local)
        valid = self._validate(mentions, local, text_lengths)
        lo, hi = _token_spans(mentions, local, offsets, token_sentence, tok_base, text_lengths)
        aligned = self._count_alignment(valid, lo, hi, kept_tokens[local], lengths)
        positions, entities, pair_counts, entity_nodes, entity_counts = self._entities(
            mentions, local, lo, hi, aligned, n
        )
        keep = self._keep_sentences(lengths, np.bincount(local, minlength=n) > 0, entity_counts)
        kept = np.nonzero(keep)[0]
        out, out_lengths = self._assemble(ids, kept_tokens, keep, token_sentence, tok_base)
        return EncodedBlock(
            input_ids=out,
            input_lengths=out_lengths,
            mention_positions=positions.astype(np.int32),
            mention_entities=entities.astype(np.int32),
            mention_counts=pair_counts[kept],
            entity_nodes=entity_nodes.astype(np.int32),
            entity_counts=entity_counts[kept],
            sentence_ids=kept.astype(np.int64) + first_sid,
        )

    def _count_alignment(
        self, valid: np.ndarray, lo: np.ndarray, hi: np.ndarray, kept_tokens: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """Mask of the valid mentions that survive truncation whole and cover at least one token.

        Counts the dropped mentions and the truncated sentences. ``kept_tokens`` is per mention (the
        tokens its sentence keeps), ``lengths`` per sentence.
        """
        truncated = valid & (hi > kept_tokens)
        tokenless = valid & ~truncated & (hi <= lo)
        aligned = valid & ~truncated & ~tokenless
        self.counts["mentions_dropped_truncated"] += int(np.count_nonzero(truncated))
        self.counts["mentions_dropped_no_whole_token"] += int(np.count_nonzero(tokenless))
        self.counts["mentions_aligned"] += int(np.count_nonzero(aligned))
        self.counts["sentences_truncated"] += int(np.count_nonzero(lengths > self.content_length))
        return aligned

    def _entities(
        self,
        mentions: MentionBlock,
        local: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        aligned: np.ndarray,
        n: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(token, entity) pairs and entities (one per (sentence, concept)) of the aligned mentions.

        Mentions expand to (mention, concept), then to (sentence, concept, token), deduplicated.
        Returns, grouped by sentence: each pair's token position and sentence-local entity, pairs
        per sentence (all ``n``), each entity's KG node id, and entities per sentence (all ``n``).
        """
        sel = np.nonzero(aligned)[0]
        node_starts = exclusive_cumsum(mentions.node_counts)[:-1]
        pair_mention = np.repeat(sel, mentions.node_counts[sel])
        pair_node = mentions.node_ids[ragged_arange(node_starts[sel], mentions.node_counts[sel])]
        span = (hi - lo)[pair_mention]
        positions = ragged_arange(lo[pair_mention], span) + len(self.prefix)
        sentence = np.repeat(local[pair_mention], span)
        node = np.repeat(pair_node, span)
        width = self.max_length
        keys = np.unique((sentence * self.num_nodes + node) * width + positions)
        entity_keys, pair_entity = np.unique(keys // width, return_inverse=True)
        entity_sentence = entity_keys // self.num_nodes
        entity_counts = np.bincount(entity_sentence, minlength=n)
        pair_sentence = entity_sentence[pair_entity]
        pair_local_entity = pair_entity - exclusive_cumsum(entity_counts)[pair_sentence]
        pair_counts = np.bincount(pair_sentence, minlength=n)
        return keys % width, pair_local_entity, pair_counts, entity_keys % self.num_nodes, entity_counts

    def _keep_sentences(
        self, lengths: np.ndarray, has_mentions: np.ndarray, entity_counts: np.ndarray
    ) -> np.ndarray:
        """Mask of the sentences to keep: not empty, and with an entity if so configured (counted)."""
        keep = lengths > 0
        self.counts["sentences_dropped_empty"] += int(np.count_nonzero(~keep))
        if self.drop_without_mentions:
            self.counts["sentences_dropped_no_mentions"] += int(np.count_nonzero(keep & ~has_mentions))
            self.counts["sentences_dropped_no_aligned_mentions"] += int(
                np.count_nonzero(keep & has_mentions & (entity_counts == 0))
            )
            keep &= entity_counts > 0
        return keep

    def _assemble(
        self,
        ids: np.ndarray,
        kept_tokens: np.ndarray,
        keep: np.ndarray,
        token_sentence: np.ndarray,
        tok_base: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Prefix + first ``kept_tokens`` tokens + suffix of every kept sentence, without a Python loop.

        Returns the flat int32 token ids and the per-sentence lengths.
        """
        content = kept_tokens[keep]
        out_lengths = content + len(self.prefix) + len(self.suffix)
        out_starts = exclusive_cumsum(out_lengths)
        out = np.empty(int(out_starts[-1]), dtype=np.int32)
        for j, token in enumerate(self.prefix):
            out[out_starts[:-1] + j] = token
        for j, token in enumerate(self.suffix):
            out[out_starts[:-1] + len(self.prefix) + content + j] = token
        rank = np.cumsum(keep) - 1
        token_local = np.arange(len(ids), dtype=np.int64) - tok_base[token_sentence]
        take = keep[token_sentence] & (token_local < kept_tokens[token_sentence])
        out[out_starts[rank[token_sentence[take]]] + len(self.prefix) + token_local[take]] = ids[take]
        return out, out_lengths


def _token_spans(
    mentions: MentionBlock,
    local: np.ndarray,
    offsets: np.ndarray,
    token_sentence: np.ndarray,
    tok_base: np.ndarray,
    text_lengths: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sentence-local token range [lo, hi) of every mention: tokens whose character span lies inside it.

    Monotone keys (sentence, char offset) over the whole block: two searchsorted calls find, for
    every mention, the first token starting inside it and the last token ending inside it.
    """
    big = int(text_lengths.max(initial=0)) + 2
    start_keys = np.maximum.accumulate(token_sentence * big + offsets[:, 0])
    end_keys = np.maximum.accumulate(token_sentence * big + offsets[:, 1])
    lo = np.searchsorted(start_keys, local * big + mentions.starts, side="left") - tok_base[local]
    hi = np.searchsorted(end_keys, local * big + mentions.ends, side="right") - tok_base[local]
    return lo, hi


class ShardWriter:
    """Accumulates encoded blocks and writes a shard of flat arrays every ``shard_size`` sentences."""

    def __init__(self, root: Path, shard_size: int = SHARD_SENTENCES) -> None:
        self.root = root / layout.SHARDS
        self.root.mkdir(parents=True)
        self.shard_size = shard_size
        self.blocks: list[EncodedBlock] = []
        self.pending = 0
        self.sizes: list[int] = []
        self.counts: Counter = Counter()

    def add(self, block: EncodedBlock) -> None:
        if len(block.sentence_ids) == 0:
            return
        self.blocks.append(block)
        self.pending += len(block.sentence_ids)
        if self.pending >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.blocks:
            return

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(b, name) for b in self.blocks])

        folder = self.root / layout.shard_name(len(self.sizes))
        folder.mkdir()
        arrays = {
            layout.INPUT_IDS: cat("input_ids"),
            layout.INPUT_OFFSETS: exclusive_cumsum(cat("input_lengths")),
            layout.MENTION_POSITIONS: cat("mention_positions"),
            layout.MENTION_ENTITIES: cat("mention_entities"),
            layout.MENTION_OFFSETS: exclusive_cumsum(cat("mention_counts")),
            layout.ENTITY_NODES: cat("entity_nodes"),
            layout.ENTITY_OFFSETS: exclusive_cumsum(cat("entity_counts")),
            layout.SENTENCE_IDS: cat("sentence_ids"),
        }
        for name, array in arrays.items():
            np.save(folder / name, array)
        self.counts["tokens"] += int(arrays[layout.INPUT_IDS].size)
        self.counts["mention_tokens"] += int(arrays[layout.MENTION_POSITIONS].size)
        self.counts["entities"] += int(arrays[layout.ENTITY_NODES].size)
        self.sizes.append(self.pending)
        self.blocks = []
        self.pending = 0

    def shard_dirs(self) -> Iterator[Path]:
        for index in range(len(self.sizes)):
            yield self.root / layout.shard_name(index)


def _sentence_blocks(path: Path, block: int) -> Iterator[list[str]]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=block, columns=["text"]):
        yield [t if t is not None else "" for t in batch.column("text").to_pylist()]


def encode_corpus(
    corpus_dir: Path, encoder: SentenceEncoder, writer: ShardWriter, total: int, mentioned: np.ndarray
) -> None:
    """Stream the corpus through the encoder into shards; mark every KG node that becomes an entity."""
    mentions = MentionStream(corpus_dir / MENTIONS)
    first = 0
    with tqdm(total=total, desc="tokenising sentences", unit="sent", disable=None) as bar:
        for texts in _sentence_blocks(corpus_dir / SENTENCES, SENTENCE_BLOCK):
            block = encoder.encode(texts, first, mentions.take_before(first + len(texts)))
            mentioned[block.entity_nodes] = True
            writer.add(block)
            first += len(texts)
            bar.update(len(texts))
    writer.flush()
    encoder.counts["sentences_read"] = first
    leftover = mentions.leftover_row()
    if leftover is not None:
        raise BadInputError(
            f"mention row {leftover} refers to a sentence past the last of the {first} sentences",
            mentions.path,
            leftover + 1,
        )


def tokenise_texts(
    tokenizer: Any, texts: list[str], max_length: int, special: bool, desc: str
) -> list[list[int]]:
    """Batch-tokenise short texts (names, relation phrases), truncated to ``max_length`` tokens."""
    backend = backend_tokenizer(tokenizer, max_length)
    out: list[list[int]] = []
    for start in tqdm(range(0, len(texts), NAME_BLOCK), desc=desc, unit="block", disable=None):
        # No offsets needed here: the fast path skips computing them (about 2x faster).
        encodings = backend.encode_batch_fast(texts[start : start + NAME_BLOCK], add_special_tokens=special)
        out.extend(e.ids for e in encodings)
    return out


def write_sequences(out: Path, ids_name: str, offsets_name: str, sequences: list[list[int]]) -> None:
    """Store a list of token sequences as one flat int32 array plus int64 offsets."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
    np.save(out / ids_name, flat)
    np.save(out / offsets_name, exclusive_cumsum(lengths))


def node_name_texts(kg: KnowledgeGraph, kg_dir: Path, nodes: np.ndarray) -> tuple[list[str], np.ndarray, int]:
    """Names of ``nodes`` grouped by node (preferred first) and per-node counts.

    A node without any name falls back to its preferred name, else its source id, so that every
    graph node has something to encode; how many did is returned.
    """
    indptr = np.asarray(kg.names_indptr)
    counts = indptr[nodes + 1] - indptr[nodes]
    column = pq.read_table(kg_dir / KG_NAMES, columns=["name"]).column("name")
    texts = np.array(column.take(pa.array(ragged_arange(indptr[nodes], counts))).to_pylist(), dtype=object)
    missing = np.nonzero(counts == 0)[0]
    if missing.size:
        concepts = pq.read_table(kg_dir / CONCEPTS, columns=["source_id", "preferred_name"])
        preferred = concepts.column("preferred_name").take(pa.array(nodes[missing])).to_pylist()
        source = concepts.column("source_id").take(pa.array(nodes[missing])).to_pylist()
        filled = counts.copy()
        filled[missing] = 1
        starts = exclusive_cumsum(filled)
        full = np.empty(int(starts[-1]), dtype=object)
        have = np.nonzero(counts)[0]
        full[ragged_arange(starts[have], counts[have])] = texts
        full[starts[missing]] = [(p or "").strip() or s for p, s in zip(preferred, source, strict=True)]
        texts, counts = full, filled
    return texts.tolist(), counts, int(missing.size)


def write_graph_and_names(
    kg: KnowledgeGraph, kg_dir: Path, out: Path, mentioned: np.ndarray, tokenizer: Any, config: DataConfig
) -> tuple[np.ndarray, dict[str, int]]:
    """Neighbour CSR of the mentioned nodes and the tokenised names of every node that can appear.

    Returns the sorted KG ids of the mentioned nodes (local ids 0..M-1) and counts. Neighbour-only
    nodes follow as local ids M.., so the collator never touches the KG.
    """
    targets = np.nonzero(mentioned)[0].astype(np.int64)
    nodes, graph_counts = _write_graph(kg, out, targets)
    name_counts = _write_names(kg, kg_dir, out, nodes, tokenizer, config)
    _write_relations(kg, kg_dir, out, tokenizer, config)
    return targets, {**graph_counts, **name_counts}


def _write_graph(kg: KnowledgeGraph, out: Path, targets: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Write the targets' neighbour CSR in local node ids; return the KG ids of all local nodes and counts.

    A KG may relate the same two nodes several times (UMLS: PAR/CHD, RB/RN, SIB and the RELAs of
    several sources). Each (target, neighbour) pair is stored once with the list of its distinct
    relations, so sampling k neighbours draws k distinct nodes.
    """
    kg_indptr = np.asarray(kg.indptr)
    degree = kg_indptr[targets + 1] - kg_indptr[targets]
    edges = ragged_arange(kg_indptr[targets], degree)
    neighbour_kg = np.asarray(kg.indices[edges], dtype=np.int64)
    others = np.setdiff1d(np.unique(neighbour_kg), targets)
    nodes = np.concatenate([targets, others])
    neighbour_local = np.where(
        np.isin(neighbour_kg, targets),
        np.searchsorted(targets, neighbour_kg),
        len(targets) + np.searchsorted(others, neighbour_kg),
    )
    # One int64 key per (target, neighbour, relation): a 1-d unique sorts them by pair, then relation.
    relation_count = max(len(kg.relation_names), 1)
    pair_keys = np.repeat(np.arange(len(targets), dtype=np.int64), degree) * len(nodes) + neighbour_local
    triples = np.unique(pair_keys * relation_count + np.asarray(kg.relations[edges], dtype=np.int64))
    pairs, relations_per_pair = np.unique(triples // relation_count, return_counts=True)
    np.save(out / layout.NODES, nodes.astype(np.int32))
    np.save(
        out / layout.GRAPH_INDPTR, exclusive_cumsum(np.bincount(pairs // len(nodes), minlength=len(targets)))
    )
    np.save(out / layout.GRAPH_INDICES, (pairs % len(nodes)).astype(np.int32))
    np.save(out / layout.GRAPH_RELATION_OFFSETS, exclusive_cumsum(relations_per_pair))
    np.save(out / layout.GRAPH_RELATIONS, (triples % relation_count).astype(np.int32))
    return nodes, {
        "nodes": len(nodes),
        "target_nodes": len(targets),
        "neighbour_only_nodes": len(others),
        "edges": len(edges),
        "neighbour_pairs": len(pairs),
        "neighbour_pairs_with_several_relations": int(np.count_nonzero(relations_per_pair > 1)),
        "targets_without_neighbours": int(np.count_nonzero(degree == 0)),
    }


def _write_names(
    kg: KnowledgeGraph, kg_dir: Path, out: Path, nodes: np.ndarray, tokenizer: Any, config: DataConfig
) -> dict[str, int]:
    """Tokenise every name of ``nodes``, store each distinct sequence once and each node's rows into them."""
    texts, name_counts, fallback = node_name_texts(kg, kg_dir, nodes)
    if config.lowercase:
        texts = [t.lower() for t in texts]
    sequences = tokenise_texts(tokenizer, texts, config.name_max_length, True, "tokenising names")
    distinct: dict[tuple[int, ...], int] = {}
    rows = np.fromiter(
        (distinct.setdefault(tuple(s), len(distinct)) for s in sequences),
        dtype=np.int32,
        count=len(sequences),
    )
    write_sequences(out, layout.NAME_INPUT_IDS, layout.NAME_OFFSETS, [list(k) for k in distinct])
    np.save(out / layout.NODE_NAMES_INDPTR, exclusive_cumsum(name_counts))
    np.save(out / layout.NODE_NAME_ROWS, rows)
    return {
        "names": len(sequences),
        "distinct_name_sequences": len(distinct),
        "names_at_max_length": int(sum(len(s) >= config.name_max_length for s in sequences)),
        "nodes_named_by_fallback": fallback,
    }


def _write_relations(kg: KnowledgeGraph, kg_dir: Path, out: Path, tokenizer: Any, config: DataConfig) -> None:
    """Copy the KG's relation table and store the tokenised relation phrases (no special tokens)."""
    phrases = list(kg.relation_phrases)
    (out / layout.RELATIONS).write_bytes((kg_dir / KG_RELATIONS).read_bytes())
    if config.lowercase:
        phrases = [p.lower() for p in phrases]
    write_sequences(
        out,
        layout.RELATION_INPUT_IDS,
        layout.RELATION_OFFSETS,
        tokenise_texts(tokenizer, phrases, RELATION_MAX_LENGTH, False, "tokenising relation phrases"),
    )


def remap_entities(writer: ShardWriter, targets: np.ndarray) -> None:
    """Shards were written with KG node ids; rewrite them as local node ids (0..M-1)."""
    for folder in writer.shard_dirs():
        kg_ids = np.load(folder / layout.ENTITY_NODES)
        np.save(folder / layout.ENTITY_NODES, np.searchsorted(targets, kg_ids).astype(np.int32))


def split_sentences(out: Path, writer: ShardWriter, fraction: float) -> dict[str, int]:
    """Deterministic validation split: a hash of each sentence's corpus id against ``fraction``.

    Hashing the corpus id (not the position among kept sentences) keeps a sentence on the same side
    when settings such as ``max_length`` change which other sentences are kept.
    """
    sentence_ids = np.concatenate([np.load(d / layout.SENTENCE_IDS) for d in writer.shard_dirs()] or [[]])
    draws = keyed_uniform(base_key(SPLIT_SEED, STREAM_SPLIT), sentence_ids.astype(np.int64))
    validation = draws < fraction
    if fraction > 0 and len(draws) >= 2:
        if not validation.any():
            validation[np.argmin(draws)] = True
        if validation.all():
            validation[np.argmax(draws)] = False
    np.save(out / layout.SPLIT_FILES["train"], np.nonzero(~validation)[0].astype(np.int64))
    np.save(out / layout.SPLIT_FILES["validation"], np.nonzero(validation)[0].astype(np.int64))
    return {"train": int(np.count_nonzero(~validation)), "validation": int(np.count_nonzero(validation))}


def build_settings(model: str, config: DataConfig) -> dict[str, Any]:
    """The settings that change the built dataset (sampling and masking happen at batch time)."""
    return {
        "model": model,
        "max_length": config.max_length,
        "name_max_length": config.name_max_length,
        "lowercase": config.lowercase,
        "drop_sentences_without_mentions": config.drop_sentences_without_mentions,
        "validation_fraction": config.validation_fraction,
    }


def build_dataset(
    kg_dir: str | Path,
    corpus_dir: str | Path,
    model: str,
    out_dir: str | Path,
    config: DataConfig,
    overwrite: bool = False,
    max_errors: int = 0,
) -> dict[str, Any]:
    """Build the training dataset directory and return its manifest.

    ``max_errors`` bad mentions (span outside the text, node id unknown to the KG) are tolerated and
    counted in the manifest; one more is a :class:`BadInputError` naming the file and row.
    """
    kg_dir, corpus_dir, out_dir = Path(kg_dir), Path(corpus_dir), Path(out_dir)
    kg = KnowledgeGraph.load(kg_dir)
    _check_corpus(kg_dir, corpus_dir)
    tokenizer = load_tokenizer(model)
    check_offsets(tokenizer, model)
    errors = ErrorBudget(max_errors)
    encoder = SentenceEncoder(
        tokenizer=tokenizer,
        max_length=config.max_length,
        num_nodes=kg.num_nodes,
        drop_without_mentions=config.drop_sentences_without_mentions,
        errors=errors,
        mentions_path=corpus_dir / MENTIONS,
    )
    total = pq.ParquetFile(corpus_dir / SENTENCES).metadata.num_rows
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        writer = ShardWriter(tmp)
        mentioned = np.zeros(kg.num_nodes, dtype=bool)
        encode_corpus(corpus_dir, encoder, writer, total, mentioned)
        np.save(tmp / layout.SHARD_SIZES, np.asarray(writer.sizes, dtype=np.int64))
        targets, graph_counts = write_graph_and_names(kg, kg_dir, tmp, mentioned, tokenizer, config)
        remap_entities(writer, targets)
        split_counts = split_sentences(tmp, writer, config.validation_fraction)
        counts = _build_counts(encoder, writer, errors, split_counts, graph_counts)
        manifest = make_manifest(
            layout.DATA_STAGE,
            {"kg": kg_dir, "corpus": corpus_dir},
            build_settings(model, config),
            counts,
            tokenizer=tokenizer_fingerprint(tokenizer),
            layout_version=layout.LAYOUT_VERSION,
            special_tokens=special_tokens(tokenizer, encoder.prefix, encoder.suffix),
        )
        write_json_atomic(tmp / "manifest.json", manifest)
    log.info("data build: %d of %d sentences kept", counts["sentences_kept"], counts["sentences_read"])
    return manifest


def _check_corpus(kg_dir: Path, corpus_dir: Path) -> None:
    """Refuse a corpus linked against another KG (its node ids would not match) or missing a file."""
    corpus_manifest = read_manifest(corpus_dir, "corpus")
    linked_kg = corpus_manifest.get("inputs", {}).get("kg")
    if isinstance(linked_kg, dict) and linked_kg.get("fingerprint") not in (None, fingerprint(kg_dir)):
        raise BadInputError(
            f"the corpus was linked against another KG ({linked_kg.get('path')}); node ids would not match",
            corpus_dir,
        )
    for name in (SENTENCES, MENTIONS):
        if not (corpus_dir / name).exists():
            raise BadInputError(f"linked corpus is missing {name}", corpus_dir)


def _build_counts(
    encoder: SentenceEncoder,
    writer: ShardWriter,
    errors: ErrorBudget,
    split_counts: dict[str, int],
    graph_counts: dict[str, int],
) -> dict[str, Any]:
    """The manifest's counts: what was read, kept and dropped at each step, and why."""
    return {
        "sentences_read": encoder.counts["sentences_read"],
        "sentences_kept": sum(writer.sizes),
        "sentences_dropped": {
            reason: encoder.counts[f"sentences_dropped_{reason}"]
            for reason in ("empty", "no_mentions", "no_aligned_mentions")
        },
        "sentences_truncated": encoder.counts["sentences_truncated"],
        "splits": split_counts,
        "mentions_read": encoder.counts["mentions_read"],
        "mentions_aligned": encoder.counts["mentions_aligned"],
        "mentions_dropped": {
            "truncated": encoder.counts["mentions_dropped_truncated"],
            "no_whole_token": encoder.counts["mentions_dropped_no_whole_token"],
            "without_node_ids": encoder.counts["mentions_without_node_ids"],
            "bad_input": errors.total,
        },
        "tokens": writer.counts["tokens"],
        "entities": writer.counts["entities"],
        "mention_tokens": writer.counts["mention_tokens"],
        "shards": len(writer.sizes),
        **graph_counts,
        "bad_input": errors.as_dict(),
    }
