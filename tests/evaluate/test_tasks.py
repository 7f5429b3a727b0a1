"""Task readers, their metrics and a fine-tuning smoke run with the tiny random BERT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bali.errors import BadInputError
from bali.evaluate.finetune import finetune_task, subsample
from bali.evaluate.tasks import all_tasks, get_task
from bali.evaluate.tasks.base import Example, hoc_document_f1, micro_prf_without, pearson


def test_every_task_reader(task_dirs: dict[str, Path]) -> None:
    assert set(all_tasks()) == set(task_dirs)
    for name, directory in task_dirs.items():
        spec = get_task(name)
        data = spec.reader(directory)
        assert data.train and data.dev and data.test, name
    hoc = get_task("hoc").reader(task_dirs["hoc"])
    assert hoc.train[2].id == "101_s0" and hoc.train[2].label == [1] and hoc.train[0].label == []
    ddi = get_task("DDI").reader(task_dirs["ddi"])
    assert [e.label for e in ddi.test[:2]] == [0, 2]  # DDI-false is class 0, DDI-effect class 2
    assert get_task("biosses").reader(task_dirs["biosses"]).test[3].label == 3.0
    medqa = get_task("medqa").reader(task_dirs["medqa"])
    assert medqa.test[1].label == 1 and len(medqa.test[1].choices) == 4
    pqa = get_task("pubmedqa").reader(task_dirs["pubmedqa"])
    assert [e.id for e in pqa.test] == ["1000", "1001", "1002", "1003"]
    assert len(pqa.train) + len(pqa.dev) == 8 and not {e.id for e in pqa.train} & {e.id for e in pqa.dev}
    assert pqa.test[0].text_pair == "ctx 0 more"
    assert get_task("pubmedqa").reader(task_dirs["pubmedqa"]).dev == pqa.dev  # deterministic split


def test_missing_split_and_bad_rows(task_dirs: dict[str, Path], tmp_path: Path) -> None:
    (task_dirs["gad"] / "test.tsv").unlink()
    with pytest.raises(BadInputError, match=r"GAD: the 'test' split is missing"):
        get_task("gad").reader(task_dirs["gad"])
    (task_dirs["medqa"] / "dev.jsonl").unlink()
    with pytest.raises(BadInputError, match=r"medqa: the 'dev' split is missing"):
        get_task("medqa").reader(task_dirs["medqa"])
    (task_dirs["bioasq"] / "train.tsv").write_text("q1\tIs it?\tctx\tperhaps\n")
    with pytest.raises(BadInputError, match=r"train\.tsv:1: unknown label 'perhaps'"):
        get_task("bioasq").reader(task_dirs["bioasq"])
    (task_dirs["pubmedqa"] / "test_ground_truth.json").unlink()
    with pytest.raises(BadInputError, match=r"test_ground_truth\.json is missing"):
        get_task("pubmedqa").reader(task_dirs["pubmedqa"])
    with pytest.raises(BadInputError, match="unknown task"):
        get_task("squad")


def test_metrics() -> None:
    ex = [
        Example(f"{d}_s{s}", "x", None, gold)
        for d, s, gold in [(1, 0, [0]), (1, 1, [1]), (2, 0, []), (3, 0, [2])]
    ]
    preds = np.zeros((4, 10), dtype=int)
    preds[0, 0] = 1  # doc 1 predicts {0} of gold {0, 1}; doc 2 nothing (correct); doc 3 misses
    m = hoc_document_f1(preds, ex)
    assert (
        m["documents"] == 3 and m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(0.5)
    )
    assert m["f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    rel = [Example(str(i), "x", None, g) for i, g in enumerate([0, 1, 2, 0])]
    prf = micro_prf_without(0)(np.array([1, 1, 0, 0]), rel)
    assert prf["precision"] == 0.5 and prf["recall"] == 0.5
    reg = [Example(str(i), "x", "y", float(i)) for i in range(4)]
    assert pearson(np.array([0.0, 1.0, 2.0, 3.5]), reg)["pearson"] > 0.99
    assert subsample(rel, 2) == subsample(rel, 2) and len(subsample(rel, 2)) == 2


@pytest.mark.parametrize("task", ["gad", "hoc", "biosses", "medqa"])
def test_finetune_smoke(task: str, task_dirs: dict[str, Path], tiny_bert_dir: str, tmp_path: Path) -> None:
    out = tmp_path / f"ft_{task}"
    result = finetune_task(
        tiny_bert_dir,
        task,
        task_dirs[task],
        out,
        seeds=2 if task == "gad" else 1,
        epochs=1,
        max_length=32,
        batch_size=4,
        subsample_train=8,
        subsample_eval=6,
        lr=1e-3,
    )
    main = result["test"][result["main_metric"]]
    n_seeds = 2 if task == "gad" else 1
    assert (
        result["seeds"] == [42, 43][:n_seeds] and len(main["values"]) == n_seeds and np.isfinite(main["mean"])
    )
    assert result["sizes"]["used"]["test"] == 6 and result["settings"]["epochs"] == 1
    saved = json.loads((out / "results.json").read_text())
    assert saved["task"] == task and "std" in saved["test"][result["main_metric"]]
    assert f"seeds {result['seeds']}" in (out / "report.md").read_text()


def test_finetune_is_reproducible(task_dirs: dict[str, Path], tiny_bert_dir: str) -> None:
    kwargs = dict(seeds=1, epochs=1, max_length=32, batch_size=4, subsample_train=8, lr=1e-3)
    first = finetune_task(tiny_bert_dir, "bioasq", task_dirs["bioasq"], **kwargs)
    second = finetune_task(tiny_bert_dir, "bioasq", task_dirs["bioasq"], **kwargs)
    assert first["runs"][0]["history"] == second["runs"][0]["history"]


def test_cli_task(
    task_dirs: dict[str, Path], tiny_bert_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bali.cli import main

    code = main(
        [
            "eval",
            "task",
            "--model",
            tiny_bert_dir,
            "--task",
            "ddi",
            "--data",
            str(task_dirs["ddi"]),
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--max-length",
            "24",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path / "ddi"),
        ]
    )
    assert code == 0 and "ddi: test f1" in capsys.readouterr().out
    assert (
        main(
            [
                "eval",
                "task",
                "--model",
                tiny_bert_dir,
                "--task",
                "ddi",
                "--data",
                str(tmp_path / "nope"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
