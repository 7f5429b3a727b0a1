"""Run under ``accelerate launch``: train the tiny model and print each rank's summary as one JSON line.

Usage: ddp_train.py DATASET_DIR MODEL_DIR RUN_DIR [SECTION.KEY=VALUE ...]
"""

from __future__ import annotations

import json
import os
import sys

from bali.config import load_config
from bali.train.trainer import train


def main() -> None:
    data_dir, model_dir, run_dir = sys.argv[1:4]
    config = load_config(
        None,
        [
            f"model.name={model_dir}",
            "model.gnn_layers=2",
            "train.batch_size=4",
            "train.max_steps=3",
            "train.save_every=3",
            "train.eval_every=3",
            "train.mixed_precision=no",
            *sys.argv[4:],
        ],
    )
    result = train(config, data_dir, run_dir)
    if result["processes"] > 1 and not result["replicas_identical"]:
        raise SystemExit(f"replicas diverged: {result['replica_checksums']}")
    # Both ranks share the launcher's stdout pipe: one write() below PIPE_BUF (4 KiB) is atomic, so
    # their RESULT lines cannot interleave the way print()'s buffered writes sometimes did.
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), f"RESULT {json.dumps(result)}\n".encode())


if __name__ == "__main__":
    main()
