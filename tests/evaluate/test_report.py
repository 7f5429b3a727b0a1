"""Report generation: training curves, linking bars, t-SNE of text vs graph embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bali.errors import BadInputError
from bali.evaluate.report import write_report


def _linking_result(models: list[str]) -> dict:
    rows = [
        {
            "model": m,
            "model_path": m,
            "pooling": p,
            "protocol": "zero-shot",
            "subset": s,
            "mentions": 10,
            "acc@1": 0.5 + 0.1 * i,
            "acc@5": 0.7 + 0.1 * i,
            "mrr": 0.6,
        }
        for i, m in enumerate(models)
        for p in ("mean", "cls")
        for s in ("all", "no-composite")
    ]
    return {
        "task": "linking",
        "protocol": "zero-shot test protocol",
        "dictionary": {
            "source": "d.txt",
            "concepts": 3,
            "names": 5,
            "distinct_name_strings": 5,
            "ids": 3,
            "unrecognised_ids": 0,
        },
        "mentions": {
            "source": "m.txt",
            "format": "pubtator",
            "entity_types": ["Disease"],
            "total": 11,
            "scored": 10,
            "without_gold_id": 1,
            "composite": 1,
            "with_alternatives": 0,
            "distinct_gold_ids": 3,
            "unmapped_gold_ids": 1,
            "mentions_with_all_gold_unmapped": 1,
            "abbreviations_expanded": 0,
        },
        "settings": {
            "pooling": ["mean", "cls"],
            "ks": [1, 5],
            "mrr_depth": 64,
            "batch_size": 8,
            "max_length": 32,
            "device": "cpu",
        },
        "rows": rows,
        "timing": {"total_seconds": 1.0},
    }


def test_report_with_all_parts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with (run / "metrics.jsonl").open("w") as handle:
        for step in range(1, 21):
            handle.write(
                json.dumps(
                    {
                        "step": step,
                        "loss": 3 - step / 10,
                        "mlm_loss": 2 - step / 20,
                        "align_loss": 1 - step / 40,
                        "lr": 1e-4 * step / 20,
                    }
                )
                + "\n"
            )
            if step % 10 == 0:
                handle.write(
                    json.dumps({"step": step, "split": "validation", "loss": 2.5 - step / 20}) + "\n"
                )
    rng = np.random.default_rng(0)
    text = rng.normal(size=(40, 16)).astype(np.float32)
    np.savez(
        tmp_path / "emb.npz",
        text=text,
        graph=text + 0.1 * rng.normal(size=text.shape),
        labels=np.array([f"c{i}" for i in range(40)]),
    )
    out = tmp_path / "report"
    path = write_report(out, _linking_result(["base", "bali"]), run / "metrics.jsonl", tmp_path / "emb.npz")
    text_md = path.read_text()
    for needle in (
        "zero-shot test protocol",
        "training_curves.png",
        "linking_acc.png",
        "embeddings_tsne.png",
        "1 without a gold id",
    ):
        assert needle in text_md
    for png in ("training_curves.png", "linking_acc.png", "embeddings_tsne.png"):
        assert (out / png).stat().st_size > 2000


def test_report_cli_and_bad_inputs(tmp_path: Path) -> None:
    from bali.cli import main

    results = tmp_path / "el"
    results.mkdir()
    (results / "results.json").write_text(json.dumps(_linking_result(["base"])))
    assert main(["eval", "report", "--results", str(results), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "linking_acc.png").exists()
    bad = tmp_path / "metrics.jsonl"
    bad.write_text('{"step": 1, "loss": 2}\nnot json\n')
    with pytest.raises(BadInputError, match=r"metrics\.jsonl:2"):
        write_report(tmp_path / "r2", metrics_path=bad)
    np.savez(tmp_path / "bad.npz", text=np.zeros((4, 3)))
    with pytest.raises(BadInputError, match="lacks arrays"):
        write_report(tmp_path / "r3", embeddings_path=tmp_path / "bad.npz")
    assert main(["eval", "report", "--results", str(tmp_path), "--out", str(tmp_path / "r4")]) == 2


def test_heldout_tsne_reads_the_evaluation_cache_and_plots_base_next_to_bali(
    tiny_bert_dir: str, tiny_kg: Path, tmp_path: Path
) -> None:
    from bali.evaluate.heldout_sample import heldout_panels
    from bali.evaluate.linking import evaluate_linking
    from bali.evaluate.report import write_report

    cache_dir = tmp_path / "cache"
    evaluate_linking(
        [tiny_bert_dir], tiny_kg, tiny_kg, ["mean"], mention_format="heldout", cache_dir=cache_dir
    )
    panels, status = heldout_panels([tiny_bert_dir, tiny_bert_dir], ["base", "bali"], tiny_kg, cache_dir)
    assert status == {"base": "reused", "bali": "reused"}  # no second dictionary encoding
    synonyms, names, labels = panels["base"]
    assert synonyms.shape == names.shape == (2, 32) and labels == [
        "convulsion -> Seizure",
        "pyrexia -> Fever",
    ]
    write_report(tmp_path / "r", heldout_tsne=panels)
    assert (tmp_path / "r" / "heldout_tsne.png").stat().st_size > 1000
    assert "## Held-out concepts: base next to bali" in (tmp_path / "r" / "report.md").read_text()


def test_training_curves_plot_only_the_losses_the_run_trained(tmp_path: Path) -> None:
    from bali.evaluate.report import trained_losses

    records = [
        {"step": s, "loss": 2.0, "mlm_loss": 1.5, "align_loss": 0.5, "name_align_loss": 0.0} for s in (1, 2)
    ]
    records.append({"step": 2, "split": "validation", "loss": 2.0, "name_align_loss": 0.0})
    # Without the run's config: a component that is 0 at every step was off.
    assert trained_losses(records, None) == ["loss", "mlm_loss", "align_loss"]
    # With it, the weights decide: an alignment weight of 0 leaves a non-zero but untrained align_loss.
    weights = {"model": {"mlm_weight": 1.0, "alignment_weight": 0.0, "name_alignment_weight": 0.0}}
    assert trained_losses(records, weights) == ["loss", "mlm_loss"]

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    (run / "config.yaml").write_text("model:\n  name_alignment_weight: 0.0\n")
    text = write_report(tmp_path / "r", metrics_path=run / "metrics.jsonl").read_text()
    assert "Not plotted (weight 0, not trained): name_align_loss." in text
    assert (tmp_path / "r" / "training_curves.png").is_file()


def test_report_names_each_model_by_role_and_path_and_links_the_run_config(tmp_path: Path) -> None:
    result = _linking_result(["base", "bali"])
    for row in result["rows"]:
        row["model_path"] = "builtin" if row["model"] == "base" else "runs/demo/train/final"
    out = tmp_path / "eval"
    roles = {"base": "the base model", "bali": "the BALI-trained model"}
    text = write_report(out, result, roles=roles, run_config=tmp_path / "train" / "config.yaml").read_text()
    assert "| base | the base model | `builtin` |" in text
    assert "| bali | the BALI-trained model | `runs/demo/train/final` |" in text
    assert "](../train/config.yaml)" in text


def test_training_curves_add_a_geometry_panel_when_validation_logged_it(tmp_path: Path) -> None:
    import struct

    from bali.evaluate.report import plot_training_curves

    records = [{"step": s, "loss": 2.0 / s, "lr": 1e-4} for s in (1, 2, 3)]

    def png_width(path: Path) -> int:
        return struct.unpack(">I", path.read_bytes()[16:20])[0]

    plain = plot_training_curves(
        [*records, {"step": 3, "split": "validation", "loss": 1.0}], tmp_path / "a.png"
    )
    geometry = {"align_text_graph": 0.9, "uniform_text": -2.1, "uniform_names": -1.5}
    with_geometry = plot_training_curves(
        records + [{"step": s, "split": "validation", "loss": 1.0, **geometry} for s in (2, 3)],
        tmp_path / "b.png",
    )
    assert png_width(with_geometry) == pytest.approx(1.5 * png_width(plain), rel=0.02)  # 3 panels, not 2
