"""Quick held-out-synonym check of trained models for demo experiments (numbers in benchmarks/demo.md).

It scores the KG's **dev** split only (``heldout_synonyms.dev.tsv``) and has no way to read the test
split: choosing settings on the queries the demo reports would make the reported gain partly
selection. The test split is scored once, by `bali demo` / `bali eval linking --split test`, after
the preset is frozen (tests/evaluate/test_tuning_reads_dev_only.py pins this).

Usage, after `bali demo` (or `bali run configs/demo.yaml`) has built runs/demo/{kg,corpus,data}:

    .venv/bin/bali train --config configs/demo.yaml --data runs/demo/data --out /tmp/exp/X \
        --set KEY=VALUE ...
    .venv/bin/python benchmarks/demo_ablation.py --kg runs/demo/kg --corpus runs/demo/corpus \
        /tmp/exp/X/final [more trained models]

The full demo evaluation ranks 126,889 names per model (about 4 min each on 2 cores). This proxy
takes the 1,000 dev held-out synonyms as queries and searches only the names of their concepts plus
15,000 random other concepts (seed 0), so one model takes about a minute. It prints, for the base model and each given model:

- Acc@1 over all held-out synonyms, over those whose concept the linked corpus mentions, and over
  the rest;
- wins and losses against the base model (queries only one of the two gets right) and their exact
  McNemar p-value;
- the mean cosine of two unrelated names (2,000 random concepts' preferred names), which exposes a
  shared direction in the embeddings: 0.15 for the base MiniLM.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np

from bali.evaluate.dictionary import kg_node_key
from bali.evaluate.encode import encode_texts
from bali.evaluate.mentions import read_heldout
from bali.evaluate.paired import mcnemar_exact_p, won_lost
from bali.kg.graph import KnowledgeGraph
from bali.lm import load_encoder, load_tokenizer
from bali.pipeline.stages import IN_CORPUS, corpus_coverage_subsets


class _Proxy(NamedTuple):
    """The proxy task: dev held-out synonyms as queries, the cut dictionary, unrelated names."""

    queries: list[str]
    gold: np.ndarray  # one KG node key per held-out synonym
    covered: np.ndarray  # per query: does the linked corpus mention its concept
    names: list[str]
    owners: np.ndarray  # the KG node key of each dictionary name
    unrelated: list[str]  # preferred names of random concepts, for the mean cosine


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: KG, corpus, base model, distractor count, trained models."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kg", required=True, help="KG directory built with a dev held-out split")
    parser.add_argument("--corpus", required=True, help="linked corpus directory (for coverage)")
    parser.add_argument("--base", default="builtin", help="base model (default: builtin)")
    parser.add_argument("--distractors", type=int, default=15_000, help="random extra concepts")
    parser.add_argument("models", nargs="+", help="trained models (run_dir/final)")
    return parser.parse_args(argv)


def _proxy(kg_dir: str, corpus: str, distractors: int) -> _Proxy:
    """The dev held-out synonyms against the names of their concepts plus seeded random distractors."""
    kg = KnowledgeGraph.load(kg_dir)
    heldout = read_heldout(kg_dir, split="dev")
    in_corpus = corpus_coverage_subsets(corpus)[IN_CORPUS]
    covered = np.array([in_corpus(m) for m in heldout])
    rng = np.random.default_rng(0)
    gold_nodes = np.array([kg.node_id(m.doc_id) for m in heldout])  # doc_id is the source id
    nodes = np.unique(np.concatenate([gold_nodes, rng.choice(kg.num_nodes, distractors, replace=False)]))
    names, owner = [], []
    for node in nodes.tolist():
        for name in kg.names(node):
            names.append(name)
            owner.append(kg_node_key(node))
    unrelated = [
        kg.names(int(n))[0]
        for n in np.random.default_rng(1).choice(kg.num_nodes, min(2000, kg.num_nodes), replace=False)
    ]
    return _Proxy(
        queries=[m.text for m in heldout],
        gold=np.array([m.gold[0][0] for m in heldout]),
        covered=covered,
        names=names,
        owners=np.array(owner),
        unrelated=unrelated,
    )


def _evaluate(model: str, proxy: _Proxy) -> tuple[np.ndarray, float]:
    """Per query, whether ``model``'s nearest name is the gold concept's; and unrelated names' mean cosine."""
    names, queries, unrelated = proxy.names, proxy.queries, proxy.unrelated
    tokenizer, encoder = load_tokenizer(model), load_encoder(model)
    vectors = encode_texts(encoder, tokenizer, names + queries + unrelated, desc=model)["mean"]
    dictionary, query = vectors[: len(names)], vectors[len(names) : len(names) + len(queries)]
    hits = proxy.owners[np.argmax(query @ dictionary.T, axis=1)] == proxy.gold
    pairs = vectors[-len(unrelated) :] @ vectors[-len(unrelated) :].T
    mean_cos = float((pairs.sum() - np.trace(pairs)) / (len(unrelated) * (len(unrelated) - 1)))
    return hits, mean_cos


def main(argv: list[str] | None = None) -> None:
    """Print the proxy table for the base model and each trained model (dev split only)."""
    args = _parse_args(argv)
    proxy = _proxy(args.kg, args.corpus, args.distractors)
    covered = proxy.covered
    print(
        f"{len(proxy.queries)} dev held-out synonyms ({int(covered.sum())} of concepts the corpus mentions), "
        f"{len(proxy.names)} dictionary names"
    )
    print(
        f"{'model':<40} {'all':>6} {'in corpus':>9} {'not':>6} {'wins':>5} {'losses':>6} {'p':>6} {'mean cos':>8}"
    )
    base: np.ndarray | None = None
    for model in [args.base, *args.models]:
        hits, mean_cos = _evaluate(model, proxy)
        base = hits if base is None else base
        won, lost = won_lost(hits, base)
        print(
            f"{model:<40} {hits.mean():>6.3f} {hits[covered].mean():>9.3f} {hits[~covered].mean():>6.3f} "
            f"{won:>5} {lost:>6} {mcnemar_exact_p(won, lost):>6.3f} {mean_cos:>8.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
