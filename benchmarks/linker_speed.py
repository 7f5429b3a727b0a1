"""Dictionary-linker speed with a >= 1M-name dictionary (synthetic UMLS), and sentence-splitting speed.

Usage (numbers in benchmarks/corpus.md):

    .venv/bin/python benchmarks/linker_speed.py --work /tmp/bali-bench \
        --concepts 360000 --real-kg /tmp/bali-bench/kg_builtin \
        --text /work/shared/data/bc5cdr/CDR_*.PubTator.txt

The dictionary is every English name of a synthetic UMLS release (``bali.kg.synthetic_umls``, built
into a KG artefact with ``bali.kg.build.build_kg``), optionally plus the names of a real KG
(``--real-kg``, e.g. the builtin HPO+MONDO KG) so that real abstracts actually contain matches.
Linking is timed on its own (sentences already split), in one process and in ``--workers``
processes; wall-clock and CPU seconds are both reported because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

from bali.corpus.linker import DictionaryLinker
from bali.corpus.readers import InputBudget, read_documents
from bali.corpus.sentences import split_sentences
from bali.kg.graph import KnowledgeGraph

_LINKER: DictionaryLinker | None = None


def synthetic_kg(work: Path, concepts: int, seed: int) -> Path:
    """A KG artefact built from a synthetic UMLS release (cached in ``work``)."""
    from bali.kg.build import build_kg
    from bali.kg.config import KGConfig
    from bali.kg.synthetic_umls import write_synthetic_umls

    kg_dir = work / f"kg_synth_{concepts}_{seed}"
    if not (kg_dir / "manifest.json").exists():
        umls = work / f"umls_{concepts}_{seed}"
        write_synthetic_umls(umls, concepts, seed)
        build_kg(KGConfig(source="umls", umls_dir=str(umls)), kg_dir, overwrite=True)
    return kg_dir


def _link_chunk(sentences: list[str]) -> int:
    assert _LINKER is not None
    return sum(len(_LINKER.link(s)) for s in sentences)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/bali-bench"))
    parser.add_argument("--concepts", type=int, default=360_000, help="synthetic UMLS concepts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real-kg", type=Path, help="add the names of this KG (real names -> real matches)")
    parser.add_argument("--text", nargs="+", required=True, help="PubTator files whose text is linked")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the sentences")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pysbd-docs", type=int, default=200, help="documents for the pysbd comparison")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}

    began = time.perf_counter()
    kg = KnowledgeGraph.load(synthetic_kg(args.work, args.concepts, args.seed))
    names, node_ids = kg.all_names()
    result["kg_seconds"] = round(time.perf_counter() - began, 1)
    result["synthetic_names"] = len(names)
    if args.real_kg:
        real = KnowledgeGraph.load(args.real_kg)
        real_names, real_ids = real.all_names()
        names = names + real_names
        node_ids = np.concatenate([node_ids, real_ids.astype(np.int64) + kg.num_nodes])
        result["real_names"] = len(real_names)
    result["dictionary_names"] = len(names)

    global _LINKER
    wall, cpu = time.perf_counter(), time.process_time()
    _LINKER = DictionaryLinker(names, node_ids)
    result["build"] = {
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "keys": _LINKER.num_keys,
    }
    del names, node_ids

    docs = [d.text for d in read_documents(args.text, "pubtator", InputBudget())]
    wall, cpu = time.perf_counter(), time.process_time()
    sentences = [doc[s:e] for doc in docs for s, e in split_sentences(doc)]
    split_wall, split_cpu = time.perf_counter() - wall, time.process_time() - cpu
    result["splitting"] = {
        "documents": len(docs),
        "sentences": len(sentences),
        "sentences_per_s_wall": round(len(sentences) / split_wall),
        "sentences_per_s_cpu": round(len(sentences) / split_cpu),
    }
    if args.pysbd_docs:
        import pysbd

        segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
        sample = docs[: args.pysbd_docs]
        cpu = time.process_time()
        count = sum(len(segmenter.segment(d)) for d in sample)
        result["splitting"]["pysbd_sentences_per_s_cpu"] = round(count / (time.process_time() - cpu))

    total = len(sentences) * args.repeat
    wall, cpu = time.perf_counter(), time.process_time()
    mentions = sum(_link_chunk(sentences) for _ in range(args.repeat))
    link_wall, link_cpu = time.perf_counter() - wall, time.process_time() - cpu
    result["linking_1_process"] = {
        "sentences": total,
        "mentions_per_sentence": round(mentions / total, 3),
        "sentences_per_s_wall": round(total / link_wall),
        "sentences_per_s_cpu": round(total / link_cpu),
    }
    if args.workers > 1:
        chunks = [sentences[i : i + 2000] for i in range(0, len(sentences), 2000)] * args.repeat
        # fork: the workers share the automaton copy-on-write instead of unpickling it.
        with mp.get_context("fork").Pool(args.workers) as pool:
            wall = time.perf_counter()
            assert sum(pool.imap_unordered(_link_chunk, chunks)) == mentions
            link_wall = time.perf_counter() - wall
        result[f"linking_{args.workers}_processes"] = {"sentences_per_s_wall": round(total / link_wall)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
