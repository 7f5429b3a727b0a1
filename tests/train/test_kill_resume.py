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

from bali.train.checkpoints import is_complete

REPO = Path(__file__).resolve().parents[2]
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


def _wait_until(proc: subprocess.Popen, run: Path, when: Callable[[Path], bool]) -> None:
    """Poll the running training until ``when(run)``; fail if it ends or takes 4 minutes first."""
    deadline = time.monotonic() + 240
    while proc.poll() is None and not when(run):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the training never reached its signal point")
        time.sleep(0.001)
    assert proc.poll() is None, "the training finished before its signal point"


def _run_until_killed(command: list[str], run: Path, when: Callable[[Path], bool]) -> None:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    _wait_until(proc, run, when)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "final" / "model.safetensors"))


# The stop-signal runs: long enough that the signal, sent once two steps are logged, always lands
# mid-run (with 6 steps a loaded machine could finish the run between the check and the signal).
STOP_STEPS = 40
STOP_RUN = ["--set", f"train.max_steps={STOP_STEPS}", "--set", "train.save_every=100"]


def _uninterrupted(factory: pytest.TempPathFactory, data: Path, model: str, *extra: str) -> Path:
    run = factory.mktemp("kill") / "uninterrupted"
    done = subprocess.run(_command(data, model, run, *extra), capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr[-2000:]
    return run


@pytest.fixture(scope="module")
def uninterrupted(
    tmp_path_factory: pytest.TempPathFactory, tiny_dataset_dir: Path, tiny_bert_dir: str
) -> Path:
    return _uninterrupted(tmp_path_factory, tiny_dataset_dir, tiny_bert_dir)


@pytest.fixture(scope="module")
def uninterrupted_long(
    tmp_path_factory: pytest.TempPathFactory, tiny_dataset_dir: Path, tiny_bert_dir: str
) -> Path:
    return _uninterrupted(tmp_path_factory, tiny_dataset_dir, tiny_bert_dir, *STOP_RUN)


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


def _the_stop_checkpoint(run: Path) -> int:
    """The step of the run's only checkpoint, which must be complete and the last step it logged."""
    saved = sorted((run / "checkpoints").glob("step-*"))
    assert len(saved) == 1 and is_complete(saved[0]), saved
    stopped_at = int(saved[0].name.removeprefix("step-"))
    assert stopped_at == _logged_steps(run), "the saved step is the last one run"
    return stopped_at


STOPS = {
    # a cluster's time limit: SIGTERM to the training process alone
    "SIGTERM": (signal.SIGTERM, "process", []),
    # SLURM's time limit signals every process of the job step, a DataLoader worker included
    "SIGTERM to the group, with a loader worker": (signal.SIGTERM, "group", ["--set", "train.num_workers=1"]),
    # Ctrl-C in a terminal: SIGINT to the whole process group
    "Ctrl-C, with a loader worker": (signal.SIGINT, "group", ["--set", "train.num_workers=1"]),
}


@pytest.mark.parametrize("stop", list(STOPS))
def test_a_stop_signal_saves_the_step_it_stopped_at(
    stop: str, uninterrupted_long: Path, tmp_path: Path, tiny_dataset_dir: Path, tiny_bert_dir: str
) -> None:
    """A stop signal mid-run: the run saves the step it was on, exits 128 + signal, and `--resume`
    ends with the uninterrupted weights. Checkpoints are set 100 steps apart, so the one on disk can
    only come from the stop."""
    signum, target, extra = STOPS[stop]
    run = tmp_path / "run"
    command = _command(tiny_dataset_dir, tiny_bert_dir, run, *STOP_RUN, *extra)
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    _wait_until(proc, run, lambda run: _logged_steps(run) >= 2)
    if target == "group":
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "--resume" in stderr
    assert 2 <= _the_stop_checkpoint(run) < STOP_STEPS
    assert not (run / "final").exists()
    resumed = subprocess.run(
        _command(tiny_dataset_dir, tiny_bert_dir, run, *STOP_RUN, "--resume"),
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = _final_weights(uninterrupted_long), _final_weights(run)
    assert all(torch.equal(expected[k], got[k]) for k in expected), "weights differ after a stop signal"


def test_sigterm_to_the_launcher_stops_both_processes_at_one_saved_step(
    tmp_path: Path,
    tiny_dataset_dir: Path,
    tiny_bert_dir: str,
    start_accelerate: Callable[[list[str]], subprocess.Popen[str]],
    finish_launch: Callable[[subprocess.Popen[str], float], tuple[str, str]],
    accelerate_launch: Callable[..., tuple[str, str]],
) -> None:
    """The cluster path: SIGTERM to `accelerate launch` (torchrun passes it to each worker), two
    processes over gloo. Both agree on one step, save it together, and a 2-process `--resume`
    finishes the run with every step logged once."""
    run = tmp_path / "run"
    launch = ["--config_file", str(REPO / "configs" / "accelerate" / "cpu.yaml"), "--num_processes", "2"]
    launch += ["--main_process_port", "0", "-m"]
    train = _command(tiny_dataset_dir, tiny_bert_dir, run, "--set", "train.max_steps=20")[2:]
    train += ["--set", "train.save_every=100"]
    proc = start_accelerate(launch + train)
    _wait_until(proc, run, lambda run: _logged_steps(run) >= 2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = finish_launch(proc, 240)
    assert proc.returncode != 0 and "stopped by SIGTERM" in stderr, stderr[-3000:]
    assert 2 <= _the_stop_checkpoint(run) < 20
    accelerate_launch(launch + train + ["--resume"], timeout=300)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 21))
    assert (run / "final" / "model.safetensors").is_file()
