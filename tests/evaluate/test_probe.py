"""`bali eval task --mode probe`: frozen embeddings + a linear model, baselines beside every score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bali.errors import BadInputError
from bali.evaluate import probe
from bali.evaluate.probe import probe_task
from bali.evaluate.tasks import get_task
from bali.evaluate.tasks.base import Example, baselines


def test_probe_learns_what_a_constant_cannot_and_is_deterministic(
    task_dirs: dict[str, Path], tiny_bert_dir: str, tmp_path: Path
) -> None:
    # GAD fixture: the label is "causes" (1) vs "is unrelated to" (0); train = dev = test.
    kwargs = dict(max_length=32, cache_dir=tmp_path / "cache")
    first = probe_task(tiny_bert_dir, "gad", task_dirs["gad"], tmp_path / "out", **kwargs)
    b = first["baselines"]
    assert b["majority"] == 0.0 and b["best_constant"] == pytest.approx(2 / 3)  # always "1": P 0.5, R 1
    assert first["test"]["f1"]["values"] == [1.0] and first["mode"] == "probe" and first["seeds"] == []
    report = (tmp_path / "out" / "report.md").read_text()
    assert (
        "Frozen-encoder probe: gad" in report and "baseline: best constant, always 1 (f1) | 0.6667" in report
    )
    second = probe_task(tiny_bert_dir, "gad", task_dirs["gad"], **kwargs)
    assert second["runs"][0] == first["runs"][0]


def test_probe_reuses_cached_embeddings(
    task_dirs: dict[str, Path], tiny_bert_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bali.lm

    loads: list[str] = []
    real_load = bali.lm.load_encoder
    monkeypatch.setattr(bali.lm, "load_encoder", lambda model: loads.append(model) or real_load(model))
    cache = tmp_path / "cache"
    first = probe_task(tiny_bert_dir, "biosses", task_dirs["biosses"], max_length=32, cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 2  # first sentences, second sentences
    assert loads == [tiny_bert_dir]  # one load for every text list of the probe

    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr("bali.evaluate.encode.encode_texts", no_encoding)
    again = probe_task(tiny_bert_dir, "biosses", task_dirs["biosses"], max_length=32, cache_dir=cache)
    assert again["test"] == first["test"] and "zero_shot_cosine_pearson" in first["test"]
    assert first["settings"]["features"] == "[u, v, |u - v|, u * v]"


def test_pair_features_and_multiple_choice_refused(task_dirs: dict[str, Path], tiny_bert_dir: str) -> None:
    u, v = np.array([[1.0, 2.0]]), np.array([[3.0, -1.0]])
    assert probe.features(u, v).tolist() == [[1.0, 2.0, 3.0, -1.0, 2.0, 3.0, 3.0, -2.0]]
    assert probe.features(u, None) is u
    with pytest.raises(BadInputError, match="multiple-choice"):
        probe_task(tiny_bert_dir, "medqa", task_dirs["medqa"])


def test_baselines_of_each_kind() -> None:
    single = [Example(str(i), "t", label=label) for i, label in enumerate([0, 1, 1, 2])]
    result = baselines(get_task("pubmedqa"), single, single)  # labels yes / no / maybe, accuracy
    assert (
        result["majority"] == 0.5
        and result["best_constant"] == 0.5
        and result["best_constant_is"] == "always no"
    )
    hoc = [Example(f"{i}_s0", "t", label=labels) for i, labels in enumerate([[1], [1, 2], [], [1]])]
    result = baselines(get_task("hoc"), hoc, hoc)
    assert result["majority"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)  # predicts {1}
    regression = [Example(str(i), "a", "b", float(i)) for i in range(4)]
    assert baselines(get_task("biosses"), regression, regression)["majority"] == 0.0


def test_cli_probe(
    task_dirs: dict[str, Path], tiny_bert_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bali.cli import main

    args = ["eval", "task", "--mode", "probe", "--model", tiny_bert_dir, "--task", "bioasq"]
    code = main(
        [*args, "--data", str(task_dirs["bioasq"]), "--max-length", "24", "--out", str(tmp_path / "b")]
    )
    out = capsys.readouterr().out
    assert code == 0 and "(probe, deterministic); majority 0.5000, best constant 0.5000" in out
    assert json.loads((tmp_path / "b" / "results.json").read_text())["baselines"]["metric"] == "accuracy"
    data = ["--data", str(task_dirs["bioasq"]), "--max-length", "24", "--split", "dev"]
    assert main([*args, *data, "--out", str(tmp_path / "d")]) == 0
    assert "bioasq: dev accuracy" in capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "results.json").read_text())["split"] == "dev"


def test_dev_probe_never_embeds_test_and_its_embeddings_serve_the_test_run(
    task_dirs: dict[str, Path], tiny_bert_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bali.evaluate import encode

    data = task_dirs["gad"]
    test_rows = (data / "test.tsv").read_text().splitlines()
    (data / "test.tsv").write_text(
        "\n".join([test_rows[0], *(row.replace("variant", "TESTONLY") for row in test_rows[1:])]) + "\n"
    )
    encoded: list[str] = []
    real_encode = encode.encode_texts

    def recording_encode(encoder: object, tokenizer: object, texts: list[str], **kwargs: object) -> object:
        encoded.extend(texts)
        return real_encode(encoder, tokenizer, texts, **kwargs)

    monkeypatch.setattr(encode, "encode_texts", recording_encode)
    kwargs = dict(max_length=32, cache_dir=tmp_path / "cache")
    dev = probe_task(tiny_bert_dir, "gad", data, tmp_path / "dev", split="dev", **kwargs)
    assert encoded and not any("TESTONLY" in text for text in encoded)
    assert "test" not in dev and "test" not in dev["sizes"]["used"] and dev["split"] == "dev"
    assert dev["dev"]["f1"]["values"] == [dev["dev_best"]["mean"]]
    assert "| dev f1 |" in (tmp_path / "dev" / "report.md").read_text()

    encoded.clear()
    test = probe_task(tiny_bert_dir, "gad", data, split="test", **kwargs)
    assert encoded and all("TESTONLY" in text for text in encoded)  # train and dev from the cache
    assert test["runs"][0]["dev"] == dev["runs"][0]["dev"] and test["split"] == "test"
    with pytest.raises(BadInputError, match="expected 'dev' or 'test'"):
        probe_task(tiny_bert_dir, "gad", data, split="train")


def test_cli_refuses_a_dev_split_for_finetuning(task_dirs: dict[str, Path], tmp_path: Path) -> None:
    from bali.cli import main

    args = ["eval", "task", "--model", "builtin", "--task", "gad", "--data", str(task_dirs["gad"])]
    assert main([*args, "--split", "dev", "--out", str(tmp_path / "o")]) != 0
    assert not (tmp_path / "o").exists()
