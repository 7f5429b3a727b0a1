"""Dictionary-linker quality against gold BC5CDR Disease mentions, with a MEDIC dictionary KG.

Usage (numbers in benchmarks/corpus.md):

    .venv/bin/python benchmarks/linker_quality.py --work /tmp/bali-bench \
        --medic /work/shared/data/medic/medic_06Jul2012.txt \
        --pubtator /work/shared/data/bc5cdr/CDR_TestSet.PubTator.txt

MEDIC lines are ``ID[|altID...]||name|synonym|...``; each line becomes a KG node (``write_kg``) whose
names are the name and synonyms and whose xrefs are the ids. The PubTator file is linked by the real
``bali corpus link`` code path (:func:`link_corpus` with ``mentions="dictionary"``), and the linked
mentions, moved back to document offsets, are compared with the gold Disease annotations:

* span: predicted (start, end) equals a gold span;
* span+id: the span matches and the predicted nodes include a node the gold id resolves to
  (MeSH/OMIM through the KG's cross-references).

The configurations add, one at a time, case-sensitive acronyms, abbreviation expansion, dropping
ambiguous names, and a stop-list learned on the training set (``--train``: every name the linker
predicts at least 3 times there with span precision below 0.3). ``--errors N`` prints the most
frequent false positives and misses.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.corpus.artifact import LinkedCorpus
from bali.corpus.config import CorpusConfig
from bali.corpus.link import link_corpus
from bali.corpus.linker import normalise_name
from bali.corpus.readers import InputBudget, read_documents
from bali.corpus.sentences import split_sentences
from bali.ids import normalise_id, split_gold_ids
from bali.kg.graph import KnowledgeGraph, Relation, write_kg


def medic_kg(medic: Path, out: Path) -> Path:
    """A dictionary-only KG (no edges needed) with one node per MEDIC line."""
    source_ids: list[str] = []
    names: list[str] = []
    name_nodes: list[int] = []
    xref_keys: list[str] = []
    xref_nodes: list[int] = []
    for line in medic.read_text(encoding="utf-8").splitlines():
        if "||" not in line:
            continue
        ids_field, names_field = line.split("||", 1)
        ids = [normalise_id(i) for i in ids_field.split("|") if i.strip()]
        node = len(source_ids)
        source_ids.append(ids[0])
        for name in names_field.split("|"):
            if name.strip():
                names.append(name)
                name_nodes.append(node)
        xref_keys.extend(ids[1:])
        xref_nodes.extend([node] * (len(ids) - 1))
    preferred = [names[name_nodes.index(i)] if i in set(name_nodes) else s for i, s in enumerate(source_ids)]
    with atomic_output_dir(out, overwrite=True) as tmp:
        counts = write_kg(
            tmp,
            concepts=pa.table({"source_id": source_ids, "preferred_name": preferred}),
            name_node_ids=np.array(name_nodes),
            names=names,
            edges=(np.array([], np.int64), np.array([], np.int64), np.array([], np.int64)),
            relations=[Relation("is_a")],
            xrefs=pa.table({"key": xref_keys, "node_id": xref_nodes, "preferred": [True] * len(xref_keys)}),
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {"medic": medic}, {}, counts))
    return out


def evaluate(
    kg: KnowledgeGraph, pubtator: Path, corpus_dir: Path
) -> tuple[dict[str, Any], Counter[str], Counter[str], Counter[str]]:
    """Span and span+id precision/recall/F1 of the linked corpus against gold Disease annotations."""
    corpus = LinkedCorpus.load(corpus_dir)
    docs = list(read_documents([pubtator], "pubtator", InputBudget()))
    sentence_id = 0
    tp_span = tp_id = n_pred = n_gold = 0
    false_pos: Counter[str] = Counter()
    misses: Counter[str] = Counter()
    true_pos: Counter[str] = Counter()
    for doc in docs:
        gold: dict[tuple[int, int], set[int]] = {}
        for ann in doc.annotations:
            if ann.type != "Disease":
                continue
            alternatives, _ = split_gold_ids(ann.ids)
            nodes = {n for parts in alternatives for part in parts for n in kg.lookup_xref(part)}
            gold.setdefault((ann.start, ann.end), set()).update(nodes)
        predicted: dict[tuple[int, int], set[int]] = {}
        for start, _ in split_sentences(doc.text):
            _, mentions = corpus.sentence(sentence_id)
            sentence_id += 1
            for m_start, m_end, nodes in mentions:
                predicted[(start + m_start, start + m_end)] = set(nodes)
        n_gold += len(gold)
        n_pred += len(predicted)
        for span, nodes in predicted.items():
            if span in gold:
                tp_span += 1
                true_pos[doc.text[span[0] : span[1]]] += 1
                tp_id += bool(nodes & gold[span])
            else:
                false_pos[doc.text[span[0] : span[1]]] += 1
        for span in gold.keys() - predicted.keys():
            misses[doc.text[span[0] : span[1]]] += 1
    assert sentence_id == len(corpus), "sentence split differs from the corpus"

    def prf(tp: int) -> dict[str, float]:
        p, r = tp / n_pred if n_pred else 0.0, tp / n_gold if n_gold else 0.0
        return {
            "P": round(100 * p, 1),
            "R": round(100 * r, 1),
            "F1": round(200 * p * r / (p + r), 1) if p + r else 0.0,
        }

    scores = {"gold": n_gold, "predicted": n_pred, "span": prf(tp_span), "span+id": prf(tp_id)}
    return scores, true_pos, false_pos, misses


def learn_stoplist(kg_dir: Path, train: Path, work: Path) -> Path:
    """Names the default linker predicts >= 3 times on ``train`` with span precision < 0.3."""
    out = work / "corpus_train"
    config = CorpusConfig(builtin=False, inputs=[str(train)], format="pubtator", mentions="dictionary")
    link_corpus(kg_dir, out, config, overwrite=True, show_progress=False)
    _, true_pos, false_pos, _ = evaluate(KnowledgeGraph.load(kg_dir), train, out)
    totals: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for surface, n in (true_pos + false_pos).items():
        totals[normalise_name(surface)] += n
    for surface, n in true_pos.items():
        correct[normalise_name(surface)] += n
    stop = sorted(k for k, n in totals.items() if n >= 3 and correct[k] / n < 0.3)
    path = work / "stoplist_learned.txt"
    path.write_text("".join(f"{k}\n" for k in stop), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/bali-bench"))
    parser.add_argument("--medic", type=Path, required=True)
    parser.add_argument("--pubtator", type=Path, required=True)
    parser.add_argument("--train", type=Path, help="PubTator file the stop-list is learned on")
    parser.add_argument("--errors", type=int, default=0, help="print the N most frequent errors")
    args = parser.parse_args()
    kg_dir = medic_kg(args.medic, args.work / "kg_medic")
    kg = KnowledgeGraph.load(kg_dir)
    configs: dict[str, dict[str, Any]] = {
        "longest match, no abbreviations": {"expand_abbreviations": False, "acronym_max_length": 0},
        "+ case-sensitive acronyms": {"expand_abbreviations": False},
        "+ abbreviation expansion (default)": {},
        "default, ambiguous names -> none": {"ambiguous": "none"},
        "default + number variants": {"number_variants": True},
    }
    if args.train:
        stoplist = learn_stoplist(kg_dir, args.train, args.work)
        configs["default + stop-list learned on --train"] = {"stoplist": str(stoplist)}
        configs["default + number variants + learned stop-list"] = {
            "stoplist": str(stoplist),
            "number_variants": True,
        }
    results = {}
    for label, overrides in configs.items():
        config = CorpusConfig(
            builtin=False, inputs=[str(args.pubtator)], format="pubtator", mentions="dictionary", **overrides
        )
        out = args.work / "corpus_quality"
        manifest = link_corpus(kg_dir, out, config, overwrite=True, show_progress=False)
        scores, _, false_pos, misses = evaluate(kg, args.pubtator, out)
        scores["seconds"] = manifest["counts"]["seconds"]
        results[label] = scores
        if args.errors:
            print(f"== {label}\nfalse positives: {false_pos.most_common(args.errors)}")
            print(f"misses: {misses.most_common(args.errors)}")
    print(json.dumps({"kg": KnowledgeGraph.load(kg_dir).summary(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
