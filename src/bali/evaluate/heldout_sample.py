"""Embeddings of a sample of held-out synonyms and their concepts' names, per model, for the t-SNE plot.

The design asks the demo report to show, next to the numbers, what alignment did to the space: a
held-out synonym should land nearer its concept after BALI training than before. The concept side
comes from the embedding cache the evaluation just filled (no second dictionary encoding); only the
sampled held-out synonyms are encoded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bali.evaluate.cache import dictionary_embeddings
from bali.evaluate.config import NAME_MAX_LENGTH
from bali.evaluate.dictionary import Dictionary, load_dictionary
from bali.evaluate.encode import encode_texts, resolve_device
from bali.evaluate.mentions import read_heldout
from bali.evaluate.report import Panel


def first_names(dictionary: Dictionary) -> dict[int, int]:
    """Each concept's first name string (its preferred name in a KG dictionary)."""
    found: dict[int, int] = {}
    for s in range(len(dictionary.strings)):
        for c in dictionary.concepts_of_string(s).tolist():
            found.setdefault(c, s)
    return found


def heldout_panels(
    models: Sequence[str],
    labels: Sequence[str],
    kg_dir: str | Path,
    cache_dir: str | Path,
    *,
    sample: int = 150,
    seed: int = 0,
    pooling: str = "mean",
    batch_size: int = 128,
    max_length: int = NAME_MAX_LENGTH,
    device: str = "cpu",
) -> tuple[dict[str, Panel], dict[str, str]]:
    """Per model label: (held-out synonym vectors, concept name vectors, "synonym -> name" labels).

    Also returns what the cache did per model ("reused" when the evaluation ran first).
    """
    from bali.lm import load_encoder, load_tokenizer

    dictionary = load_dictionary(kg_dir)
    names = first_names(dictionary)
    mentions = [m for m in read_heldout(kg_dir) if int(m.gold[0][0].split(":")[1]) in names]
    if len(mentions) > sample:
        keep = np.sort(np.random.default_rng(seed).choice(len(mentions), sample, replace=False))
        mentions = [mentions[i] for i in keep]
    string_ids = np.array([names[int(m.gold[0][0].split(":")[1])] for m in mentions], dtype=np.int64)
    text = [
        f"{m.text} -> {dictionary.strings[s]}" for m, s in zip(mentions, string_ids.tolist(), strict=True)
    ]
    run_device = resolve_device(device)
    panels: dict[str, Panel] = {}
    status: dict[str, str] = {}
    for model, label in zip(models, labels, strict=True):
        tokenizer, encoder = load_tokenizer(model), load_encoder(model)
        cached = dictionary_embeddings(
            encoder,
            tokenizer,
            dictionary.strings,
            [pooling],
            cache_dir,
            max_length=max_length,
            batch_size=batch_size,
            device=run_device,
            desc=f"{label}: names",
        )
        status[label] = cached.status
        synonyms = encode_texts(
            encoder, tokenizer, [m.text for m in mentions], [pooling], batch_size, max_length, run_device
        )[pooling]
        panels[label] = (synonyms, cached.vectors[pooling].vectors_of(string_ids), text)
    return panels, status
