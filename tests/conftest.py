"""Shared fixtures: offline by default, no test may reach the network."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open a non-local socket fail loudly."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
            return real_connect(self, address)
        raise RuntimeError(f"test tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(
        socket,
        "create_connection",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError(f"test tried to reach the network: {a!r}")),
    )


def _write_tiny_bert(out: Path, masked_lm: bool) -> str:
    """A tiny randomly initialised BERT (2 layers, width 32) with the embedded MiniLM's real tokenizer."""
    from transformers import BertConfig, BertForMaskedLM, BertModel

    from bali.lm import load_tokenizer

    tokenizer = load_tokenizer("builtin")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    (BertForMaskedLM if masked_lm else BertModel)(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny encoder-only BERT written to disk, so model tests run in seconds."""
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), masked_lm=False)


@pytest.fixture(scope="session")
def tiny_mlm_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same tiny BERT saved as ``BertForMaskedLM``: a checkpoint with its own pretrained MLM head,
    as PubMedBERT and BioLinkBERT ship (``model.mlm_head: checkpoint``)."""
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny_mlm_bert"), masked_lm=True)


REPO = Path(__file__).resolve().parents[1]


def _start_accelerate(args: list[str]) -> subprocess.Popen[str]:
    """Start ``accelerate launch ARGS`` with one thread per process, in a new session, so that a
    timeout can kill the worker processes too, not only the launcher."""
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", *args]
    # torchrun kills its workers this long after forwarding a stop signal (default 30 s): room for a
    # loaded CI machine to finish the step and save.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "180"}
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """(stdout, stderr) of a started launch; on a timeout its whole session is killed."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise


def _accelerate_launch(args: list[str], timeout: float = 600) -> tuple[str, str]:
    """Run ``accelerate launch ARGS``; return (stdout, stderr) of a successful run."""
    proc = _start_accelerate(args)
    stdout, stderr = _finish(proc, timeout)
    assert proc.returncode == 0, stderr[-4000:]
    return stdout, stderr


@pytest.fixture(scope="session")
def accelerate_launch() -> Callable[..., tuple[str, str]]:
    """``accelerate launch`` as users run it, for the multi-process tests."""
    return _accelerate_launch


@pytest.fixture(scope="session")
def start_accelerate() -> Callable[[list[str]], subprocess.Popen[str]]:
    """``accelerate launch`` started and left running, for tests that signal it; finish it with
    :func:`finish_launch`."""
    return _start_accelerate


@pytest.fixture(scope="session")
def finish_launch() -> Callable[[subprocess.Popen[str], float], tuple[str, str]]:
    """Wait for a started launch: (stdout, stderr); a timeout kills its whole session."""
    return _finish
