"""No held-out synonym (test or dev split) reaches the training text, whatever the corpus source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bali.corpus.artifact import LinkedCorpus
from bali.corpus.config import CorpusConfig
from bali.corpus.link import link_corpus
from bali.corpus.linker import normalise_name
from bali.data.config import DataConfig
from bali.data.dataset import BaliDataset
from bali.data.encode import build_dataset
from bali.lm import load_tokenizer

KGFactory = Callable[..., Path]  # the tiny_kg fixture of conftest.py

TEST = {0: "reactive airway disease", 7: "Graves disease"}
DEV = {5: "senile dementia", 6: "CMP"}
DEFINITIONS = {
    1: "A disease of the lung, such as reactive airway disease. Includes asthma with cough.",
    2: "A cough, as in senile dementia. A cough in asthma.",
}
TEXT = [
    "Asthma, also called Reactive-Airway Disease, causes cough.",  # test split, other spelling
    "Senile  dementia is an Alzheimer disease.",  # dev split
    "Graves' disease with cough.",  # the possessive spelling of a held-out eponym
    "Nonreactive airway disease and asthma.",  # not word-bounded: kept
    "A cmp-like cough.",  # a held-out acronym in lower case: an uncased LM reads it as the same
    "Asthma and cough.",
]
PUBTATOR = (
    "7|t|Reactive airway disease and cough.\n"
    "7|a|Asthma with cough.\n"
    "7\t0\t23\tReactive airway disease\tDisease\tD001249\n"
    "7\t28\t33\tcough\tDisease\tD003371\n"
    "7\t35\t41\tAsthma\tDisease\tD001249\n"
)


def _kg_with_heldout(tiny_kg: KGFactory) -> Path:
    kg = tiny_kg(DEFINITIONS)
    for filename, rows in (("heldout_synonyms.tsv", TEST), ("heldout_synonyms.dev.tsv", DEV)):
        lines = [f"{node}\tX:{node}\t{name}" for node, name in rows.items()]
        (kg / filename).write_text("\n".join(["node_id\tsource_id\tname", *lines]) + "\n", encoding="utf-8")
    return kg


def _configs(tmp_path: Path) -> dict[str, tuple[CorpusConfig, int]]:
    """Corpus settings for each mention source, with how many sentences the filter must drop."""
    text = tmp_path / "docs.jsonl"
    text.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXT)))
    pubtator = tmp_path / "docs.pubtator"
    pubtator.write_text(PUBTATOR, encoding="utf-8")
    return {
        "embedded": (CorpusConfig(builtin=True), 2),
        "dictionary": (CorpusConfig(builtin=False, inputs=[str(text)], format="jsonl"), 4),
        "gold": (CorpusConfig(builtin=False, inputs=[str(pubtator)], format="pubtator"), 1),
    }


def _occurs(name: str, text: str) -> bool:
    """Word-bounded occurrence after the linker's normalisation (possessive "'s" as a word)."""
    normalised = f" {normalise_name(text)} "
    key = normalise_name(name)
    return f" {key} " in normalised or f" {key.replace(' disease', ' s disease')} " in normalised


@pytest.mark.parametrize("source", ["embedded", "dictionary", "gold"])
def test_no_heldout_string_reaches_the_training_shards(
    tiny_kg: KGFactory, tmp_path: Path, source: str
) -> None:
    kg = _kg_with_heldout(tiny_kg)
    config, dropped = _configs(tmp_path)[source]
    manifest = link_corpus(kg, tmp_path / "corpus", config, show_progress=False)
    assert manifest["counts"]["sentences_dropped"] == {"heldout_synonym": dropped}
    heldout = [*TEST.values(), *DEV.values()]
    sentences = [text for text, _ in LinkedCorpus.load(tmp_path / "corpus")]
    assert sentences and not [(n, s) for n in heldout for s in sentences if _occurs(n, s)]

    build_dataset(kg, tmp_path / "corpus", "builtin", tmp_path / "data", DataConfig(validation_fraction=0.0))
    dataset = BaliDataset(tmp_path / "data")
    tokenizer = load_tokenizer("builtin")
    shards = [tokenizer.decode(dataset[i].input_ids, skip_special_tokens=True) for i in range(len(dataset))]
    assert len(shards) >= 1
    assert not [(n, s) for n in heldout for s in shards if _occurs(n, s)]


def test_the_filter_would_have_caught_them(tiny_kg: KGFactory, tmp_path: Path) -> None:
    """The same corpus without held-out files keeps the sentences the filter drops."""
    kg = tiny_kg(DEFINITIONS)
    config, _ = _configs(tmp_path)["dictionary"]
    manifest = link_corpus(kg, tmp_path / "corpus", config, show_progress=False)
    assert manifest["counts"]["sentences_dropped"] == {"heldout_synonym": 0}
    sentences = [text for text, _ in LinkedCorpus.load(tmp_path / "corpus")]
    assert sentences == TEXT
    leaking = [s for s in sentences if any(_occurs(n, s) for n in [*TEST.values(), *DEV.values()])]
    assert leaking == [*TEXT[:3], TEXT[4]]
