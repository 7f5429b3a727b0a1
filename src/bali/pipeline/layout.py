"""Where one pipeline's stages read and write: the directories of ``config.out_dir``.

Both the orchestration (:mod:`bali.pipeline.run`, which decides what runs) and the stage adapters
(:mod:`bali.pipeline.stages`, which call each stage) need this and nothing else of each other, so it
sits below both and the dependency runs one way: run -> stages -> layout.
"""

from __future__ import annotations

from pathlib import Path

from bali.config import BaliConfig


class PipelineLayout:
    """The config of a run and the artefact directory of each stage under ``config.out_dir``."""

    def __init__(self, config: BaliConfig) -> None:
        self.config = config
        self.root = Path(config.out_dir)
        self.kg_dir = self.root / "kg"
        self.corpus_dir = self.root / "corpus"
        self.data_dir = self.root / "data"
        self.run_dir = self.root / "train"
        self.eval_dir = self.root / "eval"
        self.stamp_dir = self.root / ".stamps"
