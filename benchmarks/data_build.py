"""Throughput of `bali data build` (sentences per second, end to end) on real PubMed text.

The corpus is BC5CDR (1,500 PubMed abstracts, gold chemical/disease mentions), split into sentences
with a simple regex and repeated ``--repeat`` times to reach a realistic size. MeSH ids are mapped
to the nodes of a synthetic KG (``--nodes`` concepts, 3 synonyms each, ``--degree`` random
neighbours), so the name and neighbour stages see a graph of realistic shape. Only
``build_dataset`` is timed: the corpus and KG are written beforehand.

    .venv/bin/python benchmarks/data_build.py --repeat 8
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.corpus.artifact import CorpusWriter
from bali.data.config import DataConfig
from bali.data.encode import build_dataset
from bali.data.tokenizer import backend_tokenizer
from bali.kg.graph import Relation, write_kg
from bali.lm import load_tokenizer

BC5CDR = Path(__file__).resolve().parents[2] / "shared" / "data" / "bc5cdr"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


def read_pubtator(path: Path) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """Documents as (title + " " + abstract, [(start, end, mesh id), ...])."""
    docs: dict[str, list] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "|t|" in line[:20] or "|a|" in line[:20]:
            pmid, kind, text = line.split("|", 2)
            doc = docs.setdefault(pmid, ["", []])
            doc[0] = text if kind == "t" else doc[0] + " " + text
        elif line.strip():
            parts = line.split("\t")
            if len(parts) >= 6 and parts[1].isdigit():
                docs[parts[0]][1].append((int(parts[1]), int(parts[2]), parts[5].split("|")[0]))
    return [(text, mentions) for text, mentions in docs.values()]


def sentences_of(text: str, mentions: list[tuple[int, int, str]]):
    """Split on sentence-final punctuation; keep mentions that fall inside one sentence."""
    starts = [0] + [m.end() for m in SENTENCE_END.finditer(text)]
    ends = [*starts[1:], len(text)]
    for a, b in zip(starts, ends, strict=True):
        inside = [(s - a, e - a, mesh) for s, e, mesh in mentions if s >= a and e <= b and mesh != "-1"]
        yield text[a:b].rstrip(), inside


def write_inputs(root: Path, repeat: int, nodes: int, degree: int, seed: int) -> int:
    """Write the synthetic KG and the repeated BC5CDR corpus; return the number of sentences."""
    rng = np.random.default_rng(seed)
    docs = [d for name in sorted(BC5CDR.glob("*.PubTator.txt")) for d in read_pubtator(name)]
    mesh_ids = sorted({m for _, ms in docs for *_, m in ms})
    node_of = {
        m: int(i) for m, i in zip(mesh_ids, rng.choice(nodes, len(mesh_ids), replace=False), strict=True)
    }
    syllables = np.array(
        ["ac", "al", "am", "an", "ar", "bi", "co", "di", "en", "ep", "ex", "fe", "gl", "hy", "in"]
    )
    words = np.array(["".join(rng.choice(syllables, rng.integers(2, 6))) for _ in range(20000)])
    names = [" ".join(rng.choice(words, rng.integers(1, 4))) for _ in range(3 * nodes)]
    src = np.repeat(np.arange(nodes), degree)
    with atomic_output_dir(root / "kg") as tmp:
        counts = write_kg(
            tmp,
            concepts=pa.table(
                {"source_id": [f"C{i:07d}" for i in range(nodes)], "preferred_name": names[::3]}
            ),
            name_node_ids=np.repeat(np.arange(nodes), 3),
            names=names,
            edges=(src, rng.integers(0, nodes, src.size), rng.integers(0, 4, src.size)),
            relations=[
                Relation("isa"),
                Relation("inverse_isa"),
                Relation("may_treat"),
                Relation("may_be_treated_by"),
            ],
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {}, {}, counts))
    total = 0
    with atomic_output_dir(root / "corpus") as tmp:
        with CorpusWriter(tmp) as writer:
            for r in range(repeat):
                for d, (text, mentions) in enumerate(docs):
                    for i, (sentence, inside) in enumerate(sentences_of(text, mentions)):
                        spans = [(s, e, [node_of[m]], "gold") for s, e, m in inside if m in node_of]
                        writer.add(f"{r}-{d}", i, sentence, spans)
                        total += 1
        write_json_atomic(tmp / "manifest.json", make_manifest("corpus", {}, {}, {"sentences": total}))
    return total


def tokenizer_only(corpus: Path, model: str) -> float:
    """Seconds the Rust tokenizer alone needs for the same sentences: the ceiling of the build."""
    backend = backend_tokenizer(load_tokenizer(model), None)
    texts = pq.read_table(corpus / "sentences.parquet", columns=["text"]).column("text").to_pylist()
    start = time.perf_counter()
    for i in range(0, len(texts), 4096):
        backend.encode_batch(texts[i : i + 4096], add_special_tokens=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=8, help="copies of BC5CDR (about 14k sentences each)")
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument("--degree", type=int, default=10)
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = write_inputs(root, args.repeat, args.nodes, args.degree, args.seed)
        load_tokenizer(args.model)  # one-off import and load cost, not throughput
        start = time.perf_counter()
        manifest = build_dataset(root / "kg", root / "corpus", args.model, root / "ds", DataConfig())
        seconds = time.perf_counter() - start
        ceiling = tokenizer_only(root / "corpus", args.model)
    counts = manifest["counts"]
    print(
        json.dumps(
            {
                "sentences": total,
                "seconds": round(seconds, 2),
                "sentences_per_second": round(total / seconds),
                "tokenizer_only_sentences_per_second": round(total / ceiling),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "kept": counts["sentences_kept"],
                "entities": counts["entities"],
                "mention_tokens": counts["mention_tokens"],
                "nodes": counts["nodes"],
                "names": counts["names"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
