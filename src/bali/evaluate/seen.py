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
of concepts the KG has, so the rows say whether a change sits on the concepts it trained or on the
rest (on BC5CDR, alignment alone lost on the rest, and giving them nodes did not help:
benchmarks/budget.md, rule 24).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bali.corpus.linker import normalise_name
from bali.evaluate.linking import MentionSet, load_mentions
from bali.evaluate.mentions import Mention
from bali.ids import normalise_id
from bali.kg.graph import XREFS

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


def kg_covers(kg_dir: str | Path, ids: Iterable[str]) -> Callable[[Iterable[Iterable[str]]], bool]:
    """Whether one gold alternative has, for every composite part, a node carrying it as a cross-reference.

    Only ``ids`` (the evaluated gold ids) are looked up, in one columnar pass over the KG's
    cross-references: a UMLS-size KG holds tens of millions, too many for a per-key Python index.
    """
    wanted = pa.array(sorted({normalise_id(i) for i in ids}), pa.string())
    keys = pq.read_table(Path(kg_dir) / XREFS, columns=["key"]).column("key").combine_chunks()
    present = set(wanted.filter(pc.is_in(wanted, value_set=keys.cast(pa.string()))).to_pylist())

    def covers(gold: Iterable[Iterable[str]]) -> bool:
        return any(all(normalise_id(part) in present for part in alternative) for alternative in gold)

    return covers


def kg_coverage_subsets(
    kg_dir: str | Path, sets: Sequence[MentionSet]
) -> dict[str, Callable[[Mention], bool]]:
    """Row filters for ``evaluate_linking(subsets=...)``: gold concept of ``sets`` with and without a KG node."""
    ids = {i for s in sets for mention in _mentions_of(s) for i in mention.gold_ids}
    covers = kg_covers(kg_dir, ids)
    return {IN_KG: lambda mention: covers(mention.gold), NOT_IN_KG: lambda mention: not covers(mention.gold)}


def _mentions_of(mention_set: MentionSet) -> Sequence[Mention]:
    source = mention_set.source
    if isinstance(source, (str, Path)):
        return load_mentions(source, mention_set.format, mention_set.entity_types or None)[0]
    return source
