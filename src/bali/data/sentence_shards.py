"""Sentences of a linked corpus -> token ids and (token, entity) pairs, written as shards.

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
cased one does not), which keeps character offsets exact.
"""

from __future__ import annotations

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

from bali.corpus.artifact import MENTIONS, SENTENCES
from bali.data import layout
from bali.data.layout import exclusive_cumsum, ragged_arange
from bali.data.tokenizer import backend_tokenizer, special_template
from bali.errors import BadInputError, ErrorBudget

SENTENCE_BLOCK = 4096
SHARD_SENTENCES = 262_144


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
