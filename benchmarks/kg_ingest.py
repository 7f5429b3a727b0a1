"""UMLS ingestion speed and memory: a synthetic 1M-concept release with 10M MRREL rows.

Usage (numbers in benchmarks/kg_ingest.md):

    .venv/bin/python benchmarks/kg_ingest.py --work /tmp/bali-bench-kg --concepts 1000000

The release (``bali.kg.synthetic_umls``, real RRF formats) is generated once into ``--work`` in a
child process, so that neither its time nor its memory is counted. The measured process then runs
``build_kg`` end to end (MRCONSO + MRREL + MRSTY + MRDEF -> the KG artefact, Parquet and .npy
written) and reports MRREL rows per second of wall-clock and of CPU time (the machine may be
shared: CPU seconds are the contention-free figure), peak RSS from ``resource.getrusage``, and a
linear extrapolation to a full UMLS release (sizes from the 2020AB MRFILES.RRF).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

from bali.kg.build import build_kg
from bali.kg.config import KGConfig
from bali.kg.synthetic_umls import write_synthetic_umls

# Full UMLS (MRFILES.RRF of a real release): rows and bytes of MRCONSO and MRREL.
FULL_UMLS = {"MRCONSO.RRF": (21_385_114, 2_719_518_477), "MRREL.RRF": (104_563_668, 9_493_099_961)}


def _release(work: Path, concepts: int, seed: int) -> Path:
    """The cached synthetic release, generated in a child process on first use."""
    release = work / f"umls-{concepts}-{seed}"
    stamp = release / ".complete"
    if not stamp.exists():
        shutil.rmtree(release, ignore_errors=True)
        child = mp.get_context("spawn").Process(target=write_synthetic_umls, args=(release, concepts, seed))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"generating the synthetic release failed (exit {child.exitcode})")
        stamp.write_text("ok\n")
    return release


def _file_rows(release: Path) -> dict[str, int]:
    rows = {}
    for line in (release / "MRFILES.RRF").read_text().splitlines():
        fields = line.split("|")
        rows[fields[0]] = int(fields[4])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bali-bench-kg"), help="cache for the release")
    parser.add_argument("--concepts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    release = _release(args.work, args.concepts, args.seed)
    rows = _file_rows(release)
    input_bytes = sum(
        (release / name).stat().st_size for name in ("MRCONSO.RRF", "MRREL.RRF", "MRSTY.RRF", "MRDEF.RRF")
    )
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    manifest = build_kg(KGConfig(source="umls", umls_dir=str(release)), args.work / "kg", overwrite=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_gb = after.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux
    mrrel = rows["MRREL.RRF"]
    full_bytes = sum(b for _, b in FULL_UMLS.values())
    scale = full_bytes / sum((release / n).stat().st_size for n in FULL_UMLS)
    result: dict[str, Any] = {
        "concepts_in_release": args.concepts,
        "mrconso_rows": rows["MRCONSO.RRF"],
        "mrrel_rows": mrrel,
        "input_gb": round(input_bytes / 1e9, 3),
        "kg_concepts": manifest["counts"]["concepts"],
        "kg_names": manifest["counts"]["names"],
        "kg_edges": manifest["counts"]["edges"],
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "mrrel_rows_per_second_wall": round(mrrel / wall),
        "mrrel_rows_per_cpu_second": round(mrrel / cpu),
        "peak_rss_gb": round(peak_gb, 3),
        "load_average_at_start": round(load, 2),
        "cpus": os.cpu_count(),
        "full_umls_extrapolation": {
            "input_scale_factor": round(scale, 1),
            "wall_minutes": round(wall * scale / 60, 1),
            "mrrel_rows": FULL_UMLS["MRREL.RRF"][0],
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
