"""Seen and unseen mentions: does a gain hold beyond strings the model saw in training?

Tutubalina et al. (2020, "Fair evaluation in concept normalization") showed that most test mentions
of the common normalisation corpora repeat a training mention's string, so a score mostly measures
memorised strings. ``bali eval linking --train-mentions FILE`` splits every row into mentions whose
normalised string is a gold mention of the training corpus (seen) and the rest (unseen), and the
unseen ones by whether their gold concept is a gold concept of the training corpus: a new string of
a concept training taught is where an alignment should teach synonymy; a concept training never
named can only gain through what transfers (benchmarks/budget.md, the concept split of rule 19).

``--train-kg KG`` (and `bali run` whenever it evaluates against a separate dictionary) splits the
rows by whether the gold concept has a node in the training KG: the alignment trains only mentions
of concepts the KG has, so a loss on the others is the KG's coverage, not the method's (the
coverage diagnostic in benchmarks/budget.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bali.corpus.linker import normalise_name
from bali.evaluate.linking import load_mentions
from bali.evaluate.mentions import Mention
from bali.kg.graph import KnowledgeGraph

SEEN, UNSEEN = "seen in training", "unseen in training"
IN_KG, NOT_IN_KG = "concept in training KG", "concept not in training KG"
UNSEEN_TAUGHT, UNSEEN_UNTAUGHT = "unseen, concept in training", "unseen, concept not in training"


@dataclass(frozen=True)
class TrainingGold:
    """The normalised strings and the gold concept ids of a training corpus's gold mentions."""

    strings: frozenset[str]
    concepts: frozenset[str]

    def seen(self, text: str) -> bool:
        """Whether ``text`` normalises to a training gold mention's string."""
        return normalise_name(text) in self.strings

    def taught(self, gold: Iterable[Iterable[str]]) -> bool:
        """Whether one gold alternative, with every composite part, is among the training concepts."""
        return any(set(alternative) <= self.concepts for alternative in gold)


def training_gold(paths: Sequence[str | Path], mention_format: str = "pubtator") -> TrainingGold:
    """Strings and concepts of every gold mention (any type) in the training mention files."""
    strings: set[str] = set()
    concepts: set[str] = set()
    for path in paths:
        mentions, _ = load_mentions(path, mention_format)
        strings.update(normalise_name(m.text) for m in mentions)
        concepts.update(i for m in mentions for i in m.gold_ids)
    return TrainingGold(frozenset(strings), frozenset(concepts))


def seen_subsets(gold: TrainingGold) -> dict[str, Callable[[Mention], bool]]:
    """Row filters for ``evaluate_linking(subsets=...)``: seen and unseen mention strings, and the
    unseen ones whose gold concept training did and did not name."""

    def unseen(mention: Mention) -> bool:
        return not gold.seen(mention.text)

    return {
        SEEN: lambda mention: gold.seen(mention.text),
        UNSEEN: unseen,
        UNSEEN_TAUGHT: lambda mention: unseen(mention) and gold.taught(mention.gold),
        UNSEEN_UNTAUGHT: lambda mention: unseen(mention) and not gold.taught(mention.gold),
    }


def kg_covers(kg_dir: str | Path) -> Callable[[Iterable[Iterable[str]]], bool]:
    """Whether one gold alternative has, for every composite part, a node carrying it as a cross-reference."""
    kg = KnowledgeGraph.load(kg_dir)

    def covers(gold: Iterable[Iterable[str]]) -> bool:
        return any(all(kg.lookup_xref(part) for part in alternative) for alternative in gold)

    return covers


def kg_coverage_subsets(kg_dir: str | Path) -> dict[str, Callable[[Mention], bool]]:
    """Row filters for ``evaluate_linking(subsets=...)``: gold concept with and without a KG node."""
    covers = kg_covers(kg_dir)
    return {IN_KG: lambda mention: covers(mention.gold), NOT_IN_KG: lambda mention: not covers(mention.gold)}
