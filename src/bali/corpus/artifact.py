"""The linked-corpus artefact: sentences and the KG nodes their mentions link to.

Written in streaming fashion (Parquet row groups of a few thousand sentences), so corpus size does
not bound memory; read back as a memory-mapped Arrow table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bali.artifacts import read_manifest

SENTENCES = "sentences.parquet"
MENTIONS = "mentions.parquet"

SENTENCE_SCHEMA = pa.schema([("doc_id", pa.string()), ("sent_index", pa.int32()), ("text", pa.string())])
MENTION_SCHEMA = pa.schema(
    [
        ("sentence_id", pa.int64()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("node_ids", pa.list_(pa.int32())),
        ("origin", pa.string()),
    ]
)

Mention = tuple[int, int, Sequence[int]]


class CorpusWriter:
    """Append sentences with their mentions; flushes row groups as it goes."""

    def __init__(self, directory: str | Path, row_group: int = 8192) -> None:
        self.directory = Path(directory)
        self.row_group = row_group
        self._sentences = pq.ParquetWriter(self.directory / SENTENCES, SENTENCE_SCHEMA)
        self._mentions = pq.ParquetWriter(self.directory / MENTIONS, MENTION_SCHEMA)
        self._sent_buf: dict[str, list] = {"doc_id": [], "sent_index": [], "text": []}
        self._ment_buf: dict[str, list] = {k: [] for k in MENTION_SCHEMA.names}
        self.num_sentences = 0
        self.num_mentions = 0

    def add(
        self, doc_id: str, sent_index: int, text: str, mentions: Sequence[tuple[int, int, Sequence[int], str]]
    ) -> int:
        """Add one sentence and its mentions ``(start, end, node_ids, origin)``; returns its id."""
        sentence_id = self.num_sentences
        self._sent_buf["doc_id"].append(doc_id)
        self._sent_buf["sent_index"].append(sent_index)
        self._sent_buf["text"].append(text)
        for start, end, node_ids, origin in mentions:
            self._ment_buf["sentence_id"].append(sentence_id)
            self._ment_buf["start"].append(start)
            self._ment_buf["end"].append(end)
            self._ment_buf["node_ids"].append(list(node_ids))
            self._ment_buf["origin"].append(origin)
        self.num_sentences += 1
        self.num_mentions += len(mentions)
        if len(self._sent_buf["text"]) >= self.row_group:
            self._flush()
        return sentence_id

    def _flush(self) -> None:
        if self._sent_buf["text"]:
            self._sentences.write_table(pa.table(self._sent_buf, schema=SENTENCE_SCHEMA))
            self._sent_buf = {k: [] for k in self._sent_buf}
        if self._ment_buf["sentence_id"]:
            self._mentions.write_table(pa.table(self._ment_buf, schema=MENTION_SCHEMA))
            self._ment_buf = {k: [] for k in self._ment_buf}

    def close(self) -> None:
        self._flush()
        self._sentences.close()
        self._mentions.close()

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LinkedCorpus:
    """Read-only view of a linked corpus; mentions are indexed by sentence through a CSR offset array."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory, "corpus")
        self.sentences = pq.read_table(self.directory / SENTENCES, memory_map=True)
        self.mentions = pq.read_table(self.directory / MENTIONS, memory_map=True)
        sentence_ids = self.mentions.column("sentence_id").to_numpy()
        if sentence_ids.size and np.any(np.diff(sentence_ids) < 0):
            order = np.argsort(sentence_ids, kind="stable")
            self.mentions = self.mentions.take(pa.array(order))
            sentence_ids = sentence_ids[order]
        self.mention_indptr = np.zeros(self.sentences.num_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(sentence_ids, minlength=self.sentences.num_rows), out=self.mention_indptr[1:])
        self._texts = self.sentences.column("text")
        self._starts = self.mentions.column("start").to_numpy()
        self._ends = self.mentions.column("end").to_numpy()
        self._node_ids = self.mentions.column("node_ids").combine_chunks()

    @classmethod
    def load(cls, directory: str | Path) -> LinkedCorpus:
        return cls(directory)

    def mentioned_nodes(self) -> np.ndarray:
        """Sorted KG node ids that at least one mention links to (what training can see directly)."""
        return np.unique(np.asarray(self._node_ids.values, dtype=np.int64))

    def __len__(self) -> int:
        return self.sentences.num_rows

    def sentence(self, index: int) -> tuple[str, list[Mention]]:
        """Text of sentence ``index`` and its mentions ``(start, end, node_ids)``."""
        text = self._texts[index].as_py()
        lo, hi = int(self.mention_indptr[index]), int(self.mention_indptr[index + 1])
        mentions = [
            (int(self._starts[j]), int(self._ends[j]), self._node_ids[j].as_py()) for j in range(lo, hi)
        ]
        return text, mentions

    def __iter__(self) -> Iterator[tuple[str, list[Mention]]]:
        for i in range(len(self)):
            yield self.sentence(i)

    def iter_batches(self, size: int) -> Iterator[list[tuple[str, list[Mention]]]]:
        """Consecutive sentences in lists of ``size`` (the last one shorter), for streaming consumers."""
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        for lo in range(0, len(self), size):
            yield [self.sentence(i) for i in range(lo, min(lo + size, len(self)))]
