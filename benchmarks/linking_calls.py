"""Wall time of `bali eval linking`: two benchmarks in one call vs today's two calls, then a cache hit.

Usage (numbers in benchmarks/linking.md):

    .venv/bin/python benchmarks/linking_calls.py --work /tmp/linking_calls --names 15000 \
        --before 96d794f

Side by side, on the same machine in one run:

1. *before*: the code at commit ``--before`` (exported with ``git archive``), one call per benchmark
   (BC5CDR-disease test as PubTator, Disease mentions; BC5CDR-disease test in BioSyn's .concept
   layout), each call encoding the dictionary with both models;
2. *one call*: this checkout, both benchmarks in one call, empty embedding cache;
3. *again*: the same call once more, the cache now warm.

Models: the embedded MiniLM (``builtin``) and, standing in for a trained model of the same size and
cost, a copy of it with every weight perturbed by seeded noise (a different weights fingerprint, so
the cache cannot share its entries). The dictionary is MEDIC cut to about ``--names`` names: every
concept that is a gold answer in the test set plus a seeded random sample of the others, because
encoding all 76k names twice per call, four times over, does not fit this shared 2-core machine's
time budget. Rows of (1) and (2) are compared: the numbers must be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path("/work/shared/data")
PUBTATOR = DATA / "bc5cdr/CDR_TestSet.PubTator.txt"
BIOSYN = DATA / "biosyn_bc5cdr_disease_cl/test.concept"
MEDIC = DATA / "medic/medic_06Jul2012.txt"
# The columns of a result row compared before/after and printed.
METRIC = ("benchmark", "model", "pooling", "protocol", "subset", "mentions", "acc@1", "acc@5", "mrr")


def cut_medic(out: Path, names: int, seed: int = 0) -> int:
    """Gold concepts of BC5CDR-disease test plus random others, up to about ``names`` names."""
    from bali.evaluate.mentions import read_pubtator

    gold = {g.split(":")[-1] for m in read_pubtator(PUBTATOR, ["Disease"])[0] for g in m.gold_ids}
    lines = MEDIC.read_text(encoding="utf-8").splitlines()
    keep = [any(i.split(":")[-1] in gold for i in line.split("||")[0].split("|")) for line in lines]
    count = sum(line.count("|") - 1 for line, k in zip(lines, keep, strict=True) if k)
    for i in np.random.default_rng(seed).permutation(len(lines)):
        if count >= names:
            break
        if not keep[i]:
            keep[i] = True
            count += lines[i].count("|") - 1
    out.write_text("\n".join(line for line, k in zip(lines, keep, strict=True) if k) + "\n", encoding="utf-8")
    return count


def perturbed_builtin(out: Path, scale: float = 1e-3, seed: int = 0) -> None:
    """MiniLM with seeded noise on every weight: same architecture and cost, another fingerprint."""
    import torch

    from bali.lm import load_encoder, load_tokenizer

    model = load_encoder("builtin")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    model.save_pretrained(out)
    load_tokenizer("builtin").save_pretrained(out)


CPU_SECONDS: dict[str, float] = {}


def timed(cmd: list[str], src: Path, log: Path) -> float:
    """Wall seconds of one call; its CPU seconds (user + system, steadier under load) go to CPU_SECONDS."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as handle:
        subprocess.run(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_SECONDS[log.stem] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return time.perf_counter() - t0


def _parse_args() -> argparse.Namespace:
    """The command line: work directory, dictionary size, the 'before' commit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--names", type=int, default=15000)
    parser.add_argument("--before", required=True, help="commit whose code is 'today's'")
    return parser.parse_args()


def _export_before(repo: Path, commit: str, work: Path) -> Path:
    """The ``src`` tree of ``commit``, exported with ``git archive`` into ``work/before`` once."""
    before_src = work / "before"
    if not before_src.exists():
        before_src.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", commit, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(before_src)], input=archive.stdout, check=True)
    return before_src


def _time_calls(
    work: Path, repo: Path, before_src: Path, dictionary: Path, trained: Path
) -> dict[str, float]:
    """Wall seconds of the old code's two one-benchmark calls, then of this checkout's call, cold and warm."""
    bali = [sys.executable, "-m", "bali", "eval", "linking", "--model", "builtin", "--model", str(trained)]
    common = ["--dictionary", str(dictionary), "--device", "cpu", "--overwrite"]
    pub = ["--mentions", str(PUBTATOR), "--format", "pubtator", "--entity-type", "Disease"]
    bio = ["--mentions", str(BIOSYN), "--format", "biosyn", "--entity-type", "Disease"]
    times = {
        "before_pubtator": timed(
            [*bali, *common, *pub, "--out", str(work / "b_pub")], before_src / "src", work / "b_pub.log"
        ),
        "before_biosyn": timed(
            [*bali, *common, *bio, "--out", str(work / "b_bio")], before_src / "src", work / "b_bio.log"
        ),
    }
    both = [
        *bali,
        *common,
        "--mentions",
        str(PUBTATOR),
        "--mentions",
        str(BIOSYN),
        "--format",
        "pubtator",
        "--format",
        "biosyn",
        "--entity-type",
        "Disease",
        "--cache",
        str(work / "cache"),
    ]
    times["one_call_cold"] = timed([*both, "--out", str(work / "both")], repo / "src", work / "both.log")
    times["one_call_warm"] = timed([*both, "--out", str(work / "both2")], repo / "src", work / "both2.log")
    return times


def _rows(work: Path) -> tuple[list[dict[str, Any]], bool]:
    """The one-call result rows, and whether their metrics equal those of the two old calls."""
    before_rows = sorted(
        tuple({**r, "benchmark": source.name}[k] for k in METRIC)
        for d, source in (("b_pub", PUBTATOR), ("b_bio", BIOSYN))
        for r in json.loads((work / d / "results.json").read_text())["rows"]
    )
    after_rows = json.loads((work / "both" / "results.json").read_text())["rows"]
    return after_rows, before_rows == sorted(tuple(r[k] for k in METRIC) for r in after_rows)


def main() -> None:
    """Prepare the dictionary and the second model, time the calls and print the comparison as JSON."""
    args = _parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[1]
    before_src = _export_before(repo, args.before, work)
    dictionary = work / "medic_cut.txt"
    names = cut_medic(dictionary, args.names)
    trained = work / "minilm_perturbed"
    if not trained.exists():
        perturbed_builtin(trained)
    times = _time_calls(work, repo, before_src, dictionary, trained)
    after_rows, same = _rows(work)
    separate = times["before_pubtator"] + times["before_biosyn"]
    print(
        json.dumps(
            {
                "dictionary_names": names,
                "seconds": {k: round(v, 1) for k, v in times.items()},
                "cpu_seconds_by_log": {k: round(v, 1) for k, v in CPU_SECONDS.items()},
                "speedup_one_call_vs_two_calls": round(separate / times["one_call_cold"], 2),
                "speedup_warm_vs_cold": round(times["one_call_cold"] / times["one_call_warm"], 2),
                "speedup_warm_vs_two_calls": round(separate / times["one_call_warm"], 2),
                "rows_identical_to_before": same,
                "rows": [{k: r[k] for k in METRIC} for r in after_rows],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
