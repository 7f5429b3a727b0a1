"""Is the in-context protocol's collapse a shared offset or a loss of what tells mentions apart?

Usage (numbers in benchmarks/budget.md; the dictionary vectors come from ``bali eval linking``'s
``--cache`` when the same models were evaluated there):

    .venv/bin/python benchmarks/context_offset.py --dictionary ../shared/data/medic/medic_06Jul2012.txt \
        --mentions ../shared/data/bc5cdr/CDR_DevelopmentSet.PubTator.txt \
        --offset-mentions ../shared/data/bc5cdr/CDR_TrainingSet.PubTator.txt \
        --entity-type Disease --cache /tmp/embedding_cache builtin runs/a/final

After long alignment the mentions in their sentence stop finding their names (rule 15: 68 % -> 14 %
Acc@1). Centring adds no information; it removes a direction that all vectors of one side share:
each model's in-context vectors are shifted by the mean in-context vector of the *training*
abstracts' mentions (no evaluation text is used) and the dictionary by its own mean name vector,
both renormalised, and the search is run again. If the centred score comes back near
the base's, the alignment moved mentions in context as a block, which a downstream head's bias
absorbs; if not, what separates concepts in context was lost. Per model it prints in-context and
context-free Acc@1, raw and centred, and the mean cosine of each mention in its sentence with its
string encoded alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from bali.evaluate.cache import dictionary_embeddings
from bali.evaluate.config import CONTEXT_MAX_LENGTH, NAME_MAX_LENGTH
from bali.evaluate.context import encode_in_context
from bali.evaluate.dictionary import Dictionary, load_dictionary
from bali.evaluate.encode import resolve_device
from bali.evaluate.linking import (
    PLAIN,
    MentionSet,
    PreparedSet,
    gold_rank,
    in_input_order,
    prepare_set,
    rank_concepts,
    score,
)
from bali.evaluate.search import ArrayVectors, ExactIndex
from bali.lm import load_encoder, load_tokenizer

BATCH = 256
DEVICE = resolve_device("cpu")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def acc1(queries: np.ndarray, names: np.ndarray, dictionary: Dictionary, prepared: PreparedSet) -> float:
    """Acc@1 of every scored mention (composites: any part), searched exactly against ``names``."""
    ranking = rank_concepts(queries, ExactIndex(ArrayVectors(names)), dictionary, 1)
    ranks = [gold_rank(r, g) for r, g in zip(ranking.concepts, prepared.gold, strict=True)]
    return 100.0 * float(score(ranks, (1,))["acc@1"])


def model_row(
    model: str, dictionary: Dictionary, evaluated: PreparedSet, offset: PreparedSet, cache: Path
) -> dict[str, Any]:
    """The table row of one model (see the module docstring)."""
    tokenizer, encoder = load_tokenizer(model), load_encoder(model)

    def strings(texts: list[str]) -> np.ndarray:
        cached = dictionary_embeddings(
            encoder,
            tokenizer,
            texts,
            ("mean",),
            cache,
            max_length=NAME_MAX_LENGTH,
            batch_size=BATCH,
            device=DEVICE,
        )
        return in_input_order(cached.vectors["mean"])

    def in_context(prepared: PreparedSet) -> np.ndarray:
        assert prepared.contexts is not None
        return encode_in_context(encoder, tokenizer, prepared.contexts, CONTEXT_MAX_LENGTH, BATCH, DEVICE)

    names = strings(dictionary.strings)
    texts = sorted({m.text for m in evaluated.protocols[PLAIN]})
    row_of = {t: i for i, t in enumerate(texts)}
    alone = strings(texts)[[row_of[m.text] for m in evaluated.protocols[PLAIN]]]
    context = in_context(evaluated)
    context_mean, names_mean = in_context(offset).mean(0), names.mean(0)
    centred_names = unit(names - names_mean)
    return {
        "model": model,
        "in-context": acc1(context, names, dictionary, evaluated),
        "in-context centred": acc1(unit(context - context_mean), centred_names, dictionary, evaluated),
        "alone": acc1(alone, names, dictionary, evaluated),
        "alone centred": acc1(unit(alone - names_mean), centred_names, dictionary, evaluated),
        "cos(context, alone)": float((context * alone).sum(1).mean()),
        "cos centred": float((unit(context - context_mean) * unit(alone - names_mean)).sum(1).mean()),
        "|offset|": float(np.linalg.norm(context_mean - names_mean)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dictionary", required=True, help="MEDIC-style dictionary file")
    parser.add_argument("--mentions", required=True, help="PubTator file scored (e.g. the dev documents)")
    parser.add_argument(
        "--offset-mentions", required=True, help="PubTator file whose in-context mean is the offset"
    )
    parser.add_argument("--entity-type", default="Disease")
    parser.add_argument(
        "--cache", type=Path, required=True, help="dictionary-vector cache (bali eval --cache)"
    )
    parser.add_argument("models", nargs="+", help="the base first, then the trained models")
    args = parser.parse_args()

    dictionary = load_dictionary(args.dictionary, "medic")

    def prepared(path: str) -> PreparedSet:
        mention_set = MentionSet(path, "pubtator", (args.entity_type,))
        return prepare_set(mention_set, Path(path).name, dictionary, False, None, 0, None, in_context=True)

    evaluated, offset = prepared(args.mentions), prepared(args.offset_mentions)
    rows = [model_row(m, dictionary, evaluated, offset, args.cache) for m in args.models]
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(v if isinstance(v, str) else f"{v:.3f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
