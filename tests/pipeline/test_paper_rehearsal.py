"""The paper's configuration as users run it, at miniature size, in `make test`.

A synthetic UMLS release (MRFILES layout, MSH/OMIM/NCBI and code-less atoms, REL/RELA, suppressed
atoms), BERN2 ``pubmed22nXXXX.json`` shards over its names, a tiny BERT saved with its own MLM head
(``model.mlm_head: checkpoint``), and ``accelerate launch`` with 2 processes over gloo and gradient
accumulation 2 through ``bali run``: kg -> corpus -> data -> train -> export -> eval, the eval
reading MedMentions-style PubTator gold (``UMLS:C...``) against the KG. The same walk runs on a GPU
from ``benchmarks/gpu_check.sh`` (``BALI_REHEARSAL_*`` select processes, precision and the
Accelerate config there).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModel, AutoModelForMaskedLM

from bali.cli import main
from bali.corpus.synthetic import write_medmentions_pubtator, write_synthetic_bern2
from bali.kg.synthetic_umls import write_synthetic_umls
from bali.pipeline.run import STAGES

REPO = Path(__file__).resolve().parents[2]
PROCESSES = int(os.environ.get("BALI_REHEARSAL_PROCESSES", "2"))
MIXED_PRECISION = os.environ.get("BALI_REHEARSAL_MIXED_PRECISION", "no")
ACCELERATE_CONFIG = REPO / os.environ.get("BALI_REHEARSAL_ACCELERATE_CONFIG", "configs/accelerate/cpu.yaml")
GLOBAL_BATCH, ACCUMULATION = 8, 2


def _config(root: Path, model: str) -> dict:
    shards = write_synthetic_bern2(
        root / "META", root / "bern2", documents=120, seed=5, documents_per_shard=60
    )
    gold = write_medmentions_pubtator(root / "META", root / "medmentions.txt", documents=30, seed=7)
    return {
        "out_dir": str(root / "run"),
        "kg": {"source": "umls", "umls_dir": str(root / "META"), "languages": ["ENG"]},
        "corpus": {"builtin": False, "format": "bern2", "inputs": [str(p) for p in shards]},
        "data": {"max_length": 64, "name_max_length": 16, "neighbours": 3, "validation_fraction": 0.05},
        "model": {"name": model, "mlm_head": "checkpoint", "graph_encoder": "gat", "gnn_layers": 2},
        "train": {
            "epochs": 1,
            "batch_size": GLOBAL_BATCH,
            "gradient_accumulation_steps": ACCUMULATION,
            "mixed_precision": MIXED_PRECISION,
            "log_every": 1,
        },
        "eval": {"linking_format": "pubtator", "linking_mentions": str(gold), "pooling": ["mean"]},
    }


@pytest.fixture(scope="module")
def rehearsal(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_mlm_bert_dir: str,
    accelerate_launch: Callable[..., tuple[str, str]],
) -> Path:
    """Run the whole pipeline once under `accelerate launch`; return the output directory."""
    root = tmp_path_factory.mktemp("paper")
    write_synthetic_umls(root / "META", 300, seed=3)
    config = root / "paper.yaml"
    config.write_text(yaml.safe_dump(_config(root, tiny_mlm_bert_dir)), encoding="utf-8")
    launch = ["--config_file", str(ACCELERATE_CONFIG), "--num_processes", str(PROCESSES)]
    stdout, _ = accelerate_launch([*launch, "--main_process_port", "0", "-m", "bali", "run", str(config)])
    (root / "launch.out").write_text(stdout, encoding="utf-8")
    return root / "run"


def test_every_stage_ran_once_and_wrote_its_artefact(rehearsal: Path) -> None:
    for stage in ("kg", "corpus", "data"):
        manifest = json.loads((rehearsal / stage / "manifest.json").read_text())
        assert manifest["stage"] == stage
    for stage in STAGES:
        assert (rehearsal / ".stamps" / f"{stage}.json").is_file()
    assert (rehearsal / "train" / "final" / "config.json").is_file()
    assert (rehearsal / "eval" / "results.json").is_file()
    assert not [p for p in rehearsal.rglob(".*tmp*")], "no temporary directory may be left behind"
    summaries = [
        line for line in (rehearsal.parent / "launch.out").read_text().splitlines() if "bali run:" in line
    ]
    assert f"bali run: {len(STAGES)} stage(s) ran, 0 up to date; artefacts in {rehearsal}" in summaries
    assert len(summaries) == PROCESSES  # one line per process, the others deferring to the main one


def test_a_second_run_finds_every_stage_up_to_date(
    rehearsal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One stamp per stage, written once: the eval's record of the training run matches the training's."""
    stamps = {s: json.loads((rehearsal / ".stamps" / f"{s}.json").read_text()) for s in STAGES}
    assert stamps["eval"]["upstream"]["train"] == stamps["train"]["run_id"]
    assert main(["run", str(rehearsal.parent / "paper.yaml")]) == 0
    assert f"0 stage(s) ran, {len(STAGES)} up to date" in capsys.readouterr().out


def test_corpus_reached_the_kg_through_cross_references(rehearsal: Path) -> None:
    counts = json.loads((rehearsal / "corpus" / "manifest.json").read_text())["counts"]
    assert counts["mentions"] > 100


def test_optimiser_steps_follow_the_global_batch(rehearsal: Path) -> None:
    """2 processes x accumulation 2 share a global batch of 8: one epoch is ceil(N / 8) steps."""
    data_counts = json.loads((rehearsal / "data" / "manifest.json").read_text())["counts"]
    expected = math.ceil(data_counts["splits"]["train"] / GLOBAL_BATCH)
    steps = sorted(int(p.name.split("-")[1]) for p in (rehearsal / "train" / "checkpoints").glob("step-*"))
    assert steps[-1] == expected
    state = json.loads(
        (rehearsal / "train" / "checkpoints" / f"step-{expected}" / "trainer_state.json").read_text()
    )
    assert state["epoch"] == 0
    settings = json.loads((rehearsal / "train" / "resume_settings.json").read_text())
    assert settings["processes"] == PROCESSES
    records = [json.loads(line) for line in (rehearsal / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, expected + 1))


def test_export_is_a_trained_encoder_and_masked_lm(rehearsal: Path, tiny_mlm_bert_dir: str) -> None:
    final = rehearsal / "train" / "final"
    encoder = AutoModel.from_pretrained(final, local_files_only=True)
    masked = AutoModelForMaskedLM.from_pretrained(final, local_files_only=True)
    base = AutoModelForMaskedLM.from_pretrained(tiny_mlm_bert_dir, local_files_only=True)
    assert torch.equal(
        encoder.embeddings.word_embeddings.weight, masked.bert.embeddings.word_embeddings.weight
    )
    assert not torch.equal(
        masked.bert.embeddings.word_embeddings.weight, base.bert.embeddings.word_embeddings.weight
    )
    trained_head = masked.cls.predictions.transform.dense.weight
    assert not torch.equal(trained_head, base.cls.predictions.transform.dense.weight)
    assert "acc@1" in (final / "README.md").read_text(), "the eval stage adds its results to the card"


def test_eval_links_umls_gold_and_matches_a_single_process_evaluation(
    rehearsal: Path, tmp_path: Path
) -> None:
    results = json.loads((rehearsal / "eval" / "results.json").read_text())
    rows = {r["model"]: r for r in results["rows"] if r["subset"] == "all"}
    concepts = json.loads((rehearsal / "kg" / "manifest.json").read_text())["counts"]["concepts"]
    assert rows["bali"]["acc@1"] > 10 / concepts, "UMLS:C... gold must match the KG's CUIs"
    config = yaml.safe_load((rehearsal.parent / "paper.yaml").read_text())
    out = tmp_path / "single"
    code = main(
        [
            "eval",
            "linking",
            "--model",
            str(rehearsal / "train" / "final"),
            "--kg",
            str(rehearsal / "kg"),
            "--mentions",
            config["eval"]["linking_mentions"],
            "--format",
            "pubtator",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    single = json.loads((out / "results.json").read_text())
    row = next(r for r in single["rows"] if r["subset"] == "all")
    assert (row["acc@1"], row["acc@5"], row["mrr"]) == pytest.approx(
        (rows["bali"]["acc@1"], rows["bali"]["acc@5"], rows["bali"]["mrr"]), abs=1e-9
    )
