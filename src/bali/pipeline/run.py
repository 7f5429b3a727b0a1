"""`bali run CONFIG.yaml`: every stage in order, skipping what is up to date.

Each stage writes one artefact directory under ``config.out_dir``. Beside them, a stamp per stage
(``.stamps/<stage>.json``) records the hash of the stage's settings (source files' fingerprints
included), a fresh run id, and the run ids of the upstream stages it was built from; a stage whose
stamp matches and whose artefact exists is skipped. Rebuilding a stage gives it a new run id, so
everything downstream reruns. Training is
the one stage that resumes instead of restarting: an interrupted run continues from its latest
checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bali.artifacts import MANIFEST, fingerprint, settings_hash, write_json_atomic
from bali.errors import BadInputError, BaliError
from bali.pipeline import stages
from bali.pipeline.layout import PipelineLayout
from bali.train.distributed import end_distributed, is_distributed, process_state

logger = logging.getLogger(__name__)

STAGES = ("kg", "corpus", "data", "train", "eval")


@dataclass(frozen=True)
class StagePlan:
    """What a stage reads, what it writes and the settings that decide whether it must rerun."""

    name: str
    output: Path
    upstream: tuple[str, ...]  # stage names
    settings: dict[str, Any]
    done_marker: str  # a file inside ``output`` that exists only when the stage completed


class Pipeline(PipelineLayout):
    """Runs the stages of one layout in order, skipping those whose stamps match."""

    def plan(self, stage: str) -> StagePlan:
        c = self.config
        model = {"name": c.model.name}
        if stage == "kg":
            return StagePlan(
                "kg", self.kg_dir, (), {"kg": c.kg.model_dump(mode="json"), **self._kg_inputs()}, MANIFEST
            )
        if stage == "corpus":
            return StagePlan(
                "corpus",
                self.corpus_dir,
                ("kg",),
                {"corpus": c.corpus.model_dump(mode="json")},
                MANIFEST,
            )
        if stage == "data":
            return StagePlan(
                "data",
                self.data_dir,
                ("kg", "corpus"),
                {"data": c.data.model_dump(mode="json"), "model": model},
                MANIFEST,
            )
        if stage == "train":
            return StagePlan(
                "train",
                self.run_dir,
                ("data",),
                {"model": c.model.model_dump(mode="json"), "train": c.train.model_dump(mode="json")},
                "final/config.json",
            )
        if stage == "eval":
            return StagePlan(
                "eval",
                self.eval_dir,
                ("kg", "train"),
                {"eval": c.eval.model_dump(mode="json"), "model": model},
                "results.json",
            )
        raise BadInputError(f"unknown stage '{stage}'; expected one of {', '.join(STAGES)}")

    def _kg_inputs(self) -> dict[str, Any]:
        """Fingerprints of the KG's source files, so editing an ontology rebuilds the graph."""
        kg = self.config.kg
        paths = [
            *kg.obo_files,
            kg.umls_dir,
            kg.tsv_concepts,
            kg.tsv_edges,
            kg.restrict_to,
            kg.dictionary_concepts,
        ]
        return {"sources": {str(p): fingerprint(p) for p in paths if p}}

    def _read_stamp(self, stage: str) -> dict[str, Any] | None:
        path = self.stamp_dir / f"{stage}.json"
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None

    def _expected(self, plan: StagePlan) -> dict[str, Any]:
        upstream = {name: (self._read_stamp(name) or {}).get("run_id") for name in plan.upstream}
        return {"settings": settings_hash(plan.settings), "upstream": upstream}

    def is_up_to_date(self, plan: StagePlan) -> bool:
        stamp = self._read_stamp(plan.name)
        if stamp is None or not (plan.output / plan.done_marker).exists():
            return False
        expected = self._expected(plan)
        return stamp.get("settings") == expected["settings"] and stamp.get("upstream") == expected["upstream"]

    def mark_done(self, plan: StagePlan) -> None:
        stamp = {**self._expected(plan), "run_id": time.time_ns()}
        write_json_atomic(self.stamp_dir / f"{plan.name}.json", stamp)

    def run(
        self,
        stages: tuple[str, ...] = STAGES,
        force_from: str | None = None,
        progress: Callable[[str], None] = print,
    ) -> dict[str, Any]:
        """Run ``stages`` in order. ``force_from`` reruns that stage and every later one.

        Under ``accelerate launch`` every rank runs this: the data stages and the evaluation run on
        the main process while the others wait at a barrier and reuse what it wrote; training runs on
        all ranks. The process group is taken down at the end.
        """
        if force_from is not None and force_from not in stages:
            raise BadInputError(f"--from {force_from}: expected one of {', '.join(stages)}")
        forced = False
        process = int(process_state().process_index) if is_distributed() else 0
        report: dict[str, Any] = {"out_dir": str(self.root), "process_index": process, "stages": {}}
        for stage in stages:
            forced = forced or stage == force_from
            plan = self.plan(stage)
            if not is_distributed():
                report["stages"][stage] = self._run_stage(plan, forced, progress)
            elif stage == "train":
                report["stages"][stage] = self._run_on_all(plan, forced, progress)
            else:
                report["stages"][stage] = self._run_on_main(plan, forced, progress)
        end_distributed()
        return report

    def _run_on_main(self, plan: StagePlan, forced: bool, progress: Callable[[str], None]) -> dict[str, Any]:
        """The main process runs the stage; the others wait for it and reuse its artefact."""
        state = process_state()
        if state.is_main_process:
            try:
                return self._run_stage(plan, forced, progress)
            finally:  # release the waiting ranks even when the stage fails, so they exit too
                state.wait_for_everyone()
        state.wait_for_everyone()
        if not self.is_up_to_date(plan):
            raise BaliError(f"[{plan.name}] the main process did not finish this stage; see its error")
        return {"status": "main process", "output": str(plan.output)}

    def _run_on_all(self, plan: StagePlan, forced: bool, progress: Callable[[str], None]) -> dict[str, Any]:
        """Every rank runs the stage (training); the main process alone reports and stamps it."""
        state = process_state()
        main = bool(state.is_main_process)
        result = self._run_stage(plan, forced, progress if main else lambda _: None, stamp=main)
        state.wait_for_everyone()  # the stamp is on disk before any rank goes on
        return result

    def _run_stage(
        self, plan: StagePlan, forced: bool, progress: Callable[[str], None], stamp: bool = True
    ) -> dict[str, Any]:
        if not forced and self.is_up_to_date(plan):
            progress(f"[{plan.name}] up to date: {plan.output}")
            return {"status": "skipped", "output": str(plan.output)}
        progress(f"[{plan.name}] running -> {plan.output}")
        start = time.perf_counter()
        result = stages.RUNNERS[plan.name](self, forced)
        elapsed = time.perf_counter() - start
        if stamp:
            self.mark_done(plan)
        progress(f"[{plan.name}] done in {elapsed:.1f}s")
        return {"status": "ran", "output": str(plan.output), "seconds": round(elapsed, 1), "result": result}
