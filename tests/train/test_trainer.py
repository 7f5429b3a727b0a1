"""`bali train`: run directory, exact resume, corrupt checkpoints, bad input, DDP on two CPU processes."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from bali.cli import main
from bali.config import BaliConfig
from bali.data.dataset import BaliDataset
from bali.errors import BadInputError
from bali.train.config import TrainConfig
from bali.train.trainer import per_device_batch_size, train, truncate_metrics

REPO = Path(__file__).resolve().parents[2]


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def _cli_train(data: Path, model: str, out: Path, eval_every: int) -> None:
    """8 steps of 5 sentences through the CLI, a checkpoint every 4, validation every ``eval_every``."""
    settings = ["model.gnn_layers=2", "train.batch_size=5", "train.max_steps=8", "train.save_every=4"]
    settings += [f"train.eval_every={eval_every}", "train.log_every=1", "train.mixed_precision=no"]
    args = ["train", "--data", str(data), "--model", model, "--out", str(out)]
    assert main(args + [arg for s in settings for arg in ("--set", s)]) == 0


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, tiny_dataset_dir: Path, tiny_bert_dir: str) -> Path:
    """8 steps of 5 sentences (fewer than 8 batches per epoch: the run crosses an epoch), via the CLI."""
    out = tmp_path_factory.mktemp("runs") / "full"
    _cli_train(tiny_dataset_dir, tiny_bert_dir, out, eval_every=4)
    return out


def test_validation_does_not_change_training(
    full_run: Path, tmp_path: Path, tiny_dataset_dir: Path, tiny_bert_dir: str
) -> None:
    """Validating only at the end (the demo preset) trains the same weights as validating at step 4:
    the validation loader has its own generator and leaves the training RNG streams alone."""
    _cli_train(tiny_dataset_dir, tiny_bert_dir, tmp_path / "once", eval_every=1000)
    records = [json.loads(line) for line in (tmp_path / "once" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "validation"] == [8]
    first, once = _weights(full_run / "final"), _weights(tmp_path / "once" / "final")
    assert first.keys() == once.keys() and all(torch.equal(first[k], once[k]) for k in first)


def _full_run_config(tiny_train_config: Callable[..., BaliConfig]) -> BaliConfig:
    """The configuration `full_run` used (through the CLI)."""
    return tiny_train_config(
        "train.batch_size=5", "train.max_steps=8", "train.save_every=4", "train.eval_every=4"
    )


def test_run_directory_layout(full_run: Path, tiny_dataset_dir: Path) -> None:
    assert (full_run / "config.yaml").is_file()
    steps = sorted(p.name for p in (full_run / "checkpoints").iterdir())
    assert steps == ["step-4", "step-8"]
    for step in steps:
        files = {p.name for p in (full_run / "checkpoints" / step).iterdir()}
        assert {"COMPLETE", "trainer_state.json", "model.safetensors", "optimizer.bin"} <= files
        assert any(name.startswith("random_states") for name in files)
    state = json.loads((full_run / "checkpoints" / "step-8" / "trainer_state.json").read_text())
    per_epoch = -(-len(BaliDataset(tiny_dataset_dir, "train")) // 5)
    assert per_epoch < 8
    assert state == {"step": 8, "epoch": 1, "batches_in_epoch": 8 - per_epoch}
    records = [json.loads(line) for line in (full_run / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train_records] == list(range(1, 9))
    assert {"loss", "mlm_loss", "align_loss", "lr_lm", "lr_other", "samples_per_s"} <= set(train_records[0])
    assert train_records[0]["lr_other"] == pytest.approx(5 * train_records[0]["lr_lm"])
    validation = [r for r in records if r["split"] == "validation"]
    assert [r["step"] for r in validation] == [4, 8]
    for record in validation:  # alignment in [0, 4], uniformity in [-4, 0] on the unit sphere
        assert 0.0 <= record["align_text_graph"] <= 4.0
        assert all(-4.0 <= record[key] <= 0.0 for key in ("uniform_text", "uniform_graph", "uniform_names"))
    assert (full_run / "final" / "model.safetensors").is_file()


def test_resume_is_exact_and_skips_a_corrupt_checkpoint(
    full_run: Path, tmp_path: Path, tiny_dataset_dir: Path, tiny_train_config, caplog
) -> None:
    """Interrupted after step 4 (the step-8 checkpoint is corrupt): resuming ends with the same weights."""
    run = tmp_path / "resumed"
    shutil.copytree(full_run, run, ignore=shutil.ignore_patterns("final"))
    (run / "checkpoints" / "step-8" / "model.safetensors").write_bytes(b"truncated")
    partial = run / "checkpoints" / "step-12"  # a crash while writing: no completion marker
    partial.mkdir()
    with caplog.at_level(logging.WARNING, logger="bali.train.checkpoints"):
        result = train(_full_run_config(tiny_train_config), tiny_dataset_dir, run, resume=True)
    messages = caplog.text
    assert "step-12" in messages and "incomplete" in messages
    assert "step-8" in messages and "cannot be loaded" in messages
    assert result["steps"] == 8
    assert _same_weights(full_run / "checkpoints" / "step-8", run / "checkpoints" / "step-8")
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [
        json.loads(line)["step"] for line in (full_run / "metrics.jsonl").read_text().splitlines()
    ]


def test_existing_run_needs_resume_or_overwrite(
    full_run: Path, tiny_dataset_dir: Path, tiny_train_config
) -> None:
    with pytest.raises(BadInputError, match="--resume"):
        train(tiny_train_config(), tiny_dataset_dir, full_run)


def test_dataset_from_another_tokenizer_is_rejected(
    tmp_path: Path, tiny_dataset_dir: Path, tiny_train_config
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset_dir, data)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["tokenizer"]["probe"] = [101, 7, 102]
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BadInputError, match="different tokenizer"):
        train(tiny_train_config(), data, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "settings",
    [
        [],
        ["model.mention_pooling=reference", "train.max_grad_norm=null"],
        [
            "model.anchor_weight=1.0",
            "model.sentence_anchor_weight=1.0",
            "model.sentence_anchor_level=token",
            "model.mlm_weight=0",
        ],
    ],
    ids=["defaults", "released-code-pooling-unclipped", "anchors-to-base"],
)
def test_two_cpu_processes_end_with_identical_weights(
    settings: list[str],
    tmp_path: Path,
    tiny_dataset_dir: Path,
    tiny_bert_dir: str,
    accelerate_launch: Callable[..., tuple[str, str]],
) -> None:
    stdout, _ = accelerate_launch(
        [
            "--config_file",
            str(REPO / "configs" / "accelerate" / "cpu.yaml"),
            "--num_processes",
            "2",
            "--main_process_port",
            "0",
            str(Path(__file__).with_name("ddp_train.py")),
            str(tiny_dataset_dir),
            tiny_bert_dir,
            str(tmp_path / "ddp"),
            *settings,
        ],
        timeout=300,
    )
    results = [
        json.loads(line[len("RESULT ") :]) for line in stdout.splitlines() if line.startswith("RESULT ")
    ]
    assert len(results) == 2
    for result in results:
        assert result["processes"] == 2 and result["replicas_identical"]
        assert result["steps"] == 3
    assert results[0]["replica_checksums"] == results[1]["replica_checksums"]
    assert (tmp_path / "ddp" / "final" / "model.safetensors").is_file()
    saved = yaml.safe_load((tmp_path / "ddp" / "config.yaml").read_text())
    for setting in settings:  # the options reached the run (null turns clipping off)
        key, value = setting.split("=")
        section, name = key.split(".")
        assert saved[section][name] == yaml.safe_load(value)


def test_unigram_prior_starts_the_fresh_mlm_head_at_the_corpus_token_frequencies(
    tmp_path: Path, tiny_dataset_dir: Path, tiny_train_config
) -> None:
    """With a negligible head learning rate, the saved bias is still the smoothed log unigram prior."""
    config = tiny_train_config(
        "model.mlm_bias_init=unigram", "train.max_steps=1", "train.save_every=1", "train.lr_other=1e-12"
    )
    train(config, tiny_dataset_dir, tmp_path / "run")
    bias = _weights(tmp_path / "run" / "checkpoints" / "step-1")["mlm_head.decoder.bias"].double()
    manifest = json.loads((tiny_dataset_dir / "manifest.json").read_text())
    special = set(manifest["special_tokens"]["special_ids"])
    counts = Counter(
        int(token)
        for shard in sorted((tiny_dataset_dir / "shards").iterdir())
        for token in np.load(shard / "input_ids.npy")
        if int(token) not in special
    )
    total = sum(counts.values()) + bias.numel()
    expected = torch.full_like(bias, math.log(1 / total))
    for token, count in counts.items():
        expected[token] = math.log((count + 1) / total)
    assert torch.allclose(bias, expected, atol=1e-5)
    assert int(bias.argmax()) == counts.most_common(1)[0][0]


@pytest.mark.parametrize(
    ("batch", "processes", "accumulation", "expected"), [(256, 4, 1, 64), (256, 4, 2, 32), (16, 1, 1, 16)]
)
def test_batch_size_is_global(batch: int, processes: int, accumulation: int, expected: int) -> None:
    """train.batch_size is the paper's global batch: 4 GPUs share 256, they do not each take 256."""
    tcfg = TrainConfig(batch_size=batch, gradient_accumulation_steps=accumulation)
    assert per_device_batch_size(tcfg, processes) == expected


def test_a_global_batch_that_does_not_divide_is_refused() -> None:
    with pytest.raises(BadInputError, match=r"divisible by processes \(3\) x .*accumulation_steps \(2\) = 6"):
        per_device_batch_size(TrainConfig(batch_size=16, gradient_accumulation_steps=2), 3)


def test_resume_with_other_settings_is_refused_naming_each(
    full_run: Path, tmp_path: Path, tiny_dataset_dir: Path, tiny_train_config
) -> None:
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    changed = _full_run_config(tiny_train_config).model_copy(deep=True)
    changed.train.batch_size, changed.train.lr_lm, changed.train.max_steps = 4, 1e-3, 12
    with pytest.raises(BadInputError) as error:
        train(changed, tiny_dataset_dir, run, resume=True)
    message = str(error.value)
    assert "train.batch_size: run has 5, now 4" in message and "train.lr_lm" in message
    assert "train.max_steps: run has 8, now 12" in message
    with pytest.raises(BadInputError, match=r"train\.batch_size"):  # only max_steps/epochs may change
        train(changed, tiny_dataset_dir, run, resume=True, allow_config_change=True)
    assert _same_weights(full_run / "checkpoints" / "step-8", run / "checkpoints" / "step-8")


def test_resume_may_extend_max_steps_when_allowed(
    full_run: Path, tmp_path: Path, tiny_dataset_dir: Path, tiny_train_config
) -> None:
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    longer = tiny_train_config(
        "train.batch_size=5", "train.max_steps=10", "train.save_every=4", "train.eval_every=4"
    )
    result = train(longer, tiny_dataset_dir, run, resume=True, allow_config_change=True)
    assert result["steps"] == 10


def test_resume_of_a_missing_run_directory_is_refused(
    tmp_path: Path, tiny_dataset_dir: Path, tiny_train_config
) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        train(tiny_train_config(), tiny_dataset_dir, tmp_path / "nope", resume=True)
    assert not (tmp_path / "nope").exists()


def test_metrics_follow_the_checkpoint_resumed_from(tmp_path: Path) -> None:
    """A kill can cut the last line short, and a kill before the first checkpoint leaves lines that
    resuming from scratch will log again: both are cleaned before the run goes on."""
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"split": "train", "step": s}) for s in (1, 2, 3)]
    path.write_text("\n".join(lines) + '\n{"split": "tra')
    truncate_metrics(path, 2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    truncate_metrics(path, 0)
    assert path.read_text() == ""
