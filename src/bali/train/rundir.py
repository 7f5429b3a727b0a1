"""The layout of a `bali train` run directory, shared by the trainer, export and the pipeline.

Kept apart from the trainer so that export (which reads a run) and the trainer (which writes one and
exports at its end) both depend on this file instead of on each other.
"""

from __future__ import annotations

CONFIG_FILE = "config.yaml"
METRICS = "metrics.jsonl"
BASE_DIR = "base"  # LM config + tokenizer of the run, so export needs nothing outside the run dir
DATA_MANIFEST = "data_manifest.json"
FINAL_DIR = "final"  # the Hugging Face export written at the end of training
RESULTS = "results.json"  # evaluation results the model card lists
