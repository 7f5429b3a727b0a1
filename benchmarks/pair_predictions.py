"""Pair two `bali eval linking` runs mention by mention (won, lost, exact McNemar p).

`bali eval linking --model A --model B` pairs B with A itself; this script does the same for two
runs made separately (e.g. the base model evaluated while the other model was still training), from
their ``predictions/*.jsonl`` files, which list the mentions in the same order with ``hit@1``:

    .venv/bin/python benchmarks/pair_predictions.py BASE_RUN/predictions/X.jsonl OTHER_RUN/predictions/Y.jsonl \
        [--corpus runs/demo/corpus]

With ``--corpus`` (held-out-synonym runs) it also splits Acc@1 by whether the linked corpus
mentions the query's concept, as `bali demo` does. The row "distinct (string, gold) pairs" keeps
each pair's first mention, as `bali eval linking` does for context-free protocols (a recurring
string is one decision there; in context it is not, so read that row only for context-free runs).

With ``--train-mentions FILE`` (PubTator gold of the training abstracts) it splits by string and by
concept: mentions whose normalised string is a training gold mention (seen), the rest (unseen), and
the unseen ones by whether their gold concept (every part of one alternative, for a composite) is a
training gold concept: does a gain on unseen strings come from concepts the training text taught,
or does it reach others?

With ``--kg KG`` (the training KG artefact) it splits by whether the gold concept has a node there
(every part of one alternative carries a node's cross-reference): the alignment trains only the
mentions of concepts the KG has, so the rows say whether a change sits on them or on the rest.
With ``--train-mentions`` as well, the concepts without a node are split by whether the training
text names them (benchmarks/budget.md, the coverage diagnostic).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bali.evaluate.paired import first_of_each, mcnemar_exact_p, won_lost
from bali.evaluate.seen import (
    IN_KG,
    NOT_IN_KG,
    SEEN,
    UNSEEN,
    UNSEEN_TAUGHT,
    UNSEEN_UNTAUGHT,
    TrainingGold,
    kg_covers,
    training_gold,
)


def read_predictions(path: Path) -> list[dict]:
    """One dict per mention, in evaluation order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def gold_alternatives(predictions: list[dict]) -> list[list[list[str]]]:
    """Each prediction's gold: alternatives of composite parts."""
    # The gold field is "|"-joined alternatives of "+"-joined composite parts (bali eval linking).
    return [[alt.split("+") for alt in p["gold"].split("|")] for p in predictions]


def training_subsets(predictions: list[dict], gold: TrainingGold) -> dict[str, np.ndarray]:
    """Seen / unseen strings, unseen split by concept (the rows of `bali eval linking --train-mentions`).

    Decided on the predictions' ``mention``, the searched string: the same as `bali eval linking
    --train-mentions` for the plain protocols, the long form for the abbreviation-expanded one
    (which `bali eval linking` splits by the text as written).
    """
    seen = np.array([gold.seen(p["mention"]) for p in predictions])
    taught = taught_mask(predictions, gold)
    return {
        SEEN: seen,
        UNSEEN: ~seen,
        UNSEEN_TAUGHT: ~seen & taught,
        UNSEEN_UNTAUGHT: ~seen & ~taught,
    }


def taught_mask(predictions: list[dict], gold: TrainingGold) -> np.ndarray:
    """Mentions whose gold concept (every part of one alternative) is a training gold concept."""
    return np.array([gold.taught(alternatives) for alternatives in gold_alternatives(predictions)])


def kg_subsets(predictions: list[dict], kg_dir: Path, taught: np.ndarray | None) -> dict[str, np.ndarray]:
    """Concept with / without a node in the training KG, the latter split by ``taught`` when given."""
    golds = gold_alternatives(predictions)
    covers = kg_covers(kg_dir, {part for gold in golds for alt in gold for part in alt})
    in_kg = np.array([covers(gold) for gold in golds])
    subsets = {IN_KG: in_kg, NOT_IN_KG: ~in_kg}
    if taught is not None:
        subsets.update(
            {
                f"{NOT_IN_KG}, named in training": ~in_kg & taught,
                f"{NOT_IN_KG}, not named": ~in_kg & ~taught,
            }
        )
    return subsets


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reference", type=Path, help="predictions .jsonl of the reference (base) model")
    parser.add_argument("other", type=Path, help="predictions .jsonl of the compared model")
    parser.add_argument("--corpus", help="linked corpus directory: split rows by concept coverage")
    parser.add_argument(
        "--train-mentions", nargs="+", type=Path, help="PubTator gold of the training text: seen/unseen rows"
    )
    parser.add_argument(
        "--kg", type=Path, help="the training KG artefact: rows by whether the gold concept has a node"
    )
    args = parser.parse_args()
    reference, other = read_predictions(args.reference), read_predictions(args.other)
    keys = [(p["doc_id"], p["start"], p["mention"], p["gold"]) for p in reference]
    if keys != [(p["doc_id"], p["start"], p["mention"], p["gold"]) for p in other]:
        raise SystemExit("the two runs scored different mentions (or in a different order)")
    base = np.array([p["hit@1"] for p in reference])
    hit = np.array([p["hit@1"] for p in other])
    subsets = {
        "all": np.ones(len(base), dtype=bool),
        "distinct (string, gold) pairs": first_of_each([(p["mention"], p["gold"]) for p in reference]),
    }
    if args.corpus:
        from bali.corpus.artifact import LinkedCorpus
        from bali.evaluate.dictionary import kg_node_key

        seen = {kg_node_key(int(n)) for n in LinkedCorpus(args.corpus).mentioned_nodes()}
        covered = np.array([p["gold"] in seen for p in reference])
        subsets.update({"concept in corpus": covered, "concept not in corpus": ~covered})
    gold = training_gold(args.train_mentions) if args.train_mentions else None
    if gold is not None:
        subsets.update(training_subsets(reference, gold))
    if args.kg:
        subsets.update(kg_subsets(reference, args.kg, None if gold is None else taught_mask(reference, gold)))
    for name, rows in subsets.items():
        won, lost = won_lost(hit[rows], base[rows])
        print(
            f"{name:<46} n {int(rows.sum()):>5}  Acc@1 {100 * base[rows].mean():.1f} -> {100 * hit[rows].mean():.1f}"
            f"  won {won} lost {lost}  McNemar p {mcnemar_exact_p(won, lost):.3g}"
        )


if __name__ == "__main__":
    main()
