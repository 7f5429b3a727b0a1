"""`bali data build`: tokenise a linked corpus and the KG names into a self-contained training dataset.

The sentences go through :mod:`bali.data.sentence_shards`, the neighbours, names and relation
phrases of the nodes they mention through :mod:`bali.data.graph_and_names`; this module checks the
inputs, splits the kept sentences into train and validation, and writes the manifest with its counts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from bali.artifacts import atomic_output_dir, fingerprint, make_manifest, read_manifest, write_json_atomic
from bali.corpus.artifact import MENTIONS, SENTENCES
from bali.data import layout
from bali.data.config import DataConfig
from bali.data.graph_and_names import write_graph_and_names
from bali.data.masking import STREAM_SPLIT, base_key, keyed_uniform
from bali.data.sentence_shards import SentenceEncoder, ShardWriter, encode_corpus
from bali.data.tokenizer import check_offsets, special_tokens
from bali.errors import BadInputError, ErrorBudget
from bali.kg.graph import KnowledgeGraph
from bali.lm import load_tokenizer, tokenizer_fingerprint

log = logging.getLogger(__name__)

SPLIT_SEED = 17


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
