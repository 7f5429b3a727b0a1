"""kill -9 at several points of a training run, then `--resume`: the same weights as no kill at all.

With one CPU thread (OMP_NUM_THREADS=1) training is bit-reproducible, so "the same" means equal,
not close. Kill points: before the first checkpoint, while a checkpoint is being written (its
temporary directory holds some files but no completion marker), and between two checkpoints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

STEPS = ["--set", "train.max_steps=6", "--set", "train.save_every=2", "--set", "train.eval_every=100"]


def _command(data: Path, model: str, run: Path, *extra: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "bali",
        "train",
        "--data",
        str(data),
        "--model",
        model,
        "--out",
        str(run),
    ]
    for setting in (
        "model.gnn_layers=2",
        "train.batch_size=4",
        "train.log_every=1",
        "train.mixed_precision=no",
    ):
        command += ["--set", setting]
    return command + STEPS + list(extra)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _logged_steps(run: Path) -> int:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if '"split": "train"' in line)


def _writing_checkpoint(run: Path) -> bool:
    return (
        any(any(tmp.iterdir()) for tmp in (run / "checkpoints").glob(".tmp-step-*"))
        if (run / "checkpoints").is_dir()
        else False
    )


KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    "before the first checkpoint": lambda run: _logged_steps(run) >= 1,
    "during a checkpoint write": _writing_checkpoint,
    "between checkpoints": lambda run: _logged_steps(run) >= 3,
}


def _run_until_killed(command: list[str], run: Path, when: Callable[[Path], bool]) -> None:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    deadline = time.monotonic() + 240
    while proc.poll() is None and not when(run):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the training never reached its kill point")
        time.sleep(0.001)
    assert proc.poll() is None, "the training finished before its kill point"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "final" / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory, tiny_dataset_dir: Path, tiny_bert_dir: str
) -> Path:
    run = tmp_path_factory.mktemp("kill") / "uninterrupted"
    done = subprocess.run(
        _command(tiny_dataset_dir, tiny_bert_dir, run), capture_output=True, text=True, env=_env()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return run


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_resume_after_kill_gives_the_uninterrupted_weights(
    point: str, uninterrupted: Path, tmp_path: Path, tiny_dataset_dir: Path, tiny_bert_dir: str
) -> None:
    run = tmp_path / "run"
    _run_until_killed(_command(tiny_dataset_dir, tiny_bert_dir, run), run, KILL_POINTS[point])
    assert not (run / "final").exists()
    resumed = subprocess.run(
        _command(tiny_dataset_dir, tiny_bert_dir, run, "--resume"), capture_output=True, text=True, env=_env()
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = _final_weights(uninterrupted), _final_weights(run)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), f"weights differ after a kill {point}"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 7)), "each step logged once"
    assert not list((run / "checkpoints").glob(".tmp-*")), "the killed write's temporary directory is gone"
