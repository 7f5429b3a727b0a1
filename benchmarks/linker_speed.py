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


def _parse_args() -> argparse.Namespace:
    """The command line: work directory, synthetic size and seed, real KG, texts, passes, workers."""
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
    return parser.parse_args()


def _dictionary(args: argparse.Namespace) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Names and node ids of the synthetic KG (plus the real KG's), with load seconds and name counts."""
    began = time.perf_counter()
    kg = KnowledgeGraph.load(synthetic_kg(args.work, args.concepts, args.seed))
    names, node_ids = kg.all_names()
    report: dict[str, Any] = {
        "kg_seconds": round(time.perf_counter() - began, 1),
        "synthetic_names": len(names),
    }
    if args.real_kg:
        real = KnowledgeGraph.load(args.real_kg)
        real_names, real_ids = real.all_names()
        names = names + real_names
        node_ids = np.concatenate([node_ids, real_ids.astype(np.int64) + kg.num_nodes])
        report["real_names"] = len(real_names)
    report["dictionary_names"] = len(names)
    return names, node_ids, report


def _build_linker(names: list[str], node_ids: np.ndarray) -> dict[str, Any]:
    """Build the shared ``_LINKER``; its build wall and CPU seconds and its number of keys."""
    global _LINKER
    wall, cpu = time.perf_counter(), time.process_time()
    _LINKER = DictionaryLinker(names, node_ids)
    return {
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "keys": _LINKER.num_keys,
    }


def _split(texts: list[str], pysbd_docs: int) -> tuple[list[str], dict[str, Any]]:
    """The documents' sentences, with sentences per second of our splitter and of pysbd on a sample."""
    docs = [d.text for d in read_documents(texts, "pubtator", InputBudget())]
    wall, cpu = time.perf_counter(), time.process_time()
    sentences = [doc[s:e] for doc in docs for s, e in split_sentences(doc)]
    split_wall, split_cpu = time.perf_counter() - wall, time.process_time() - cpu
    report: dict[str, Any] = {
        "documents": len(docs),
        "sentences": len(sentences),
        "sentences_per_s_wall": round(len(sentences) / split_wall),
        "sentences_per_s_cpu": round(len(sentences) / split_cpu),
    }
    if pysbd_docs:
        report["pysbd_sentences_per_s_cpu"] = _pysbd_sentences_per_s_cpu(docs[:pysbd_docs])
    return sentences, report


def _pysbd_sentences_per_s_cpu(docs: list[str]) -> int:
    """Sentences per CPU second of pysbd (char spans, no cleaning) over ``docs``."""
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    cpu = time.process_time()
    count = sum(len(segmenter.segment(d)) for d in docs)
    return round(count / (time.process_time() - cpu))


def _link_one_process(sentences: list[str], repeat: int) -> tuple[int, dict[str, Any]]:
    """Mentions found in ``repeat`` passes in this process, with mentions per sentence and speed."""
    total = len(sentences) * repeat
    wall, cpu = time.perf_counter(), time.process_time()
    mentions = sum(_link_chunk(sentences) for _ in range(repeat))
    link_wall, link_cpu = time.perf_counter() - wall, time.process_time() - cpu
    return mentions, {
        "sentences": total,
        "mentions_per_sentence": round(mentions / total, 3),
        "sentences_per_s_wall": round(total / link_wall),
        "sentences_per_s_cpu": round(total / link_cpu),
    }


def _link_in_processes(sentences: list[str], repeat: int, workers: int, mentions: int) -> dict[str, Any]:
    """Wall-clock sentences per second of the same passes in ``workers`` forked processes."""
    chunks = [sentences[i : i + 2000] for i in range(0, len(sentences), 2000)] * repeat
    # fork: the workers share the automaton copy-on-write instead of unpickling it.
    with mp.get_context("fork").Pool(workers) as pool:
        wall = time.perf_counter()
        assert sum(pool.imap_unordered(_link_chunk, chunks)) == mentions
        link_wall = time.perf_counter() - wall
    return {"sentences_per_s_wall": round(len(sentences) * repeat / link_wall)}


def main() -> None:
    """Build the dictionary linker, time splitting and linking, and print the report as JSON."""
    args = _parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    names, node_ids, result = _dictionary(args)
    result["build"] = _build_linker(names, node_ids)
    del names, node_ids
    sentences, result["splitting"] = _split(args.text, args.pysbd_docs)
    mentions, result["linking_1_process"] = _link_one_process(sentences, args.repeat)
    if args.workers > 1:
        result[f"linking_{args.workers}_processes"] = _link_in_processes(
            sentences, args.repeat, args.workers, mentions
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
