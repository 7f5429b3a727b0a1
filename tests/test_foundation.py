"""The foundation: CLI, config, artefact helpers, offline model resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bali import __version__
from bali.artifacts import atomic_output_dir, is_up_to_date, make_manifest, read_manifest, write_json_atomic
from bali.cli import main
from bali.config import load_config
from bali.errors import BadInputError, ErrorBudget
from bali.lm import load_tokenizer, resolve_model


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_config_defaults_follow_the_paper() -> None:
    cfg = load_config()
    assert cfg.train.lr_lm == 2e-5 and cfg.train.lr_other == 1e-4
    assert cfg.model.temperature == 0.07 and cfg.data.neighbours == 3 and cfg.data.max_length == 128


def test_config_overrides_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batch_size: 8\n")
    cfg = load_config(path, ["train.max_steps=12", "model.graph_encoder=sage", "data.neighbours=0"])
    assert cfg.train.batch_size == 8 and cfg.train.max_steps == 12
    assert cfg.model.graph_encoder == "sage" and cfg.data.neighbours == 0


@pytest.mark.parametrize(
    "override,needle",
    [
        ("train.bogus=1", "unknown key"),
        ("data.neighbours=-1", "data.neighbours"),
        ("model.loss=xx", "model.loss"),
    ],
)
def test_config_rejects_bad_values(override: str, needle: str) -> None:
    with pytest.raises(BadInputError, match=needle):
        load_config(None, [override])


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1,\n")
    with pytest.raises(BadInputError, match=r"bad\.yaml"):
        load_config(bad)


def test_atomic_output_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "art"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        (tmp / "partial.txt").write_text("x")
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("x")
    assert (out / "a.txt").read_text() == "x"
    with pytest.raises(BadInputError, match="--overwrite"), atomic_output_dir(out):
        pass
    with atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]


def test_manifest_up_to_date(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("hello")
    out = tmp_path / "art"
    out.mkdir()
    write_json_atomic(out / "manifest.json", make_manifest("kg", {"src": src}, {"a": 1}, {"n": 1}))
    assert read_manifest(out, "kg")["counts"] == {"n": 1}
    assert is_up_to_date(out, {"src": src}, {"a": 1})
    assert not is_up_to_date(out, {"src": src}, {"a": 2})
    src.write_text("hello, longer")
    assert not is_up_to_date(out, {"src": src}, {"a": 1})
    with pytest.raises(BadInputError, match="stage 'corpus'"):
        read_manifest(out, "corpus")
    json.loads((out / "manifest.json").read_text())


def test_error_budget_counts_then_stops() -> None:
    budget = ErrorBudget(max_errors=2)
    budget.record("columns", "expected 18 columns", "MRCONSO.RRF", 3)
    budget.record("columns", "expected 18 columns", "MRCONSO.RRF", 9)
    assert budget.as_dict()["by_reason"] == {"columns": 2}
    with pytest.raises(BadInputError, match=r"MRCONSO.RRF:12"):
        budget.record("utf8", "bad UTF-8", "MRCONSO.RRF", 12)
    with pytest.raises(BadInputError, match=r"f.txt:1: nope"):
        ErrorBudget().record("x", "nope", "f.txt", 1)


def test_builtin_model_resolves_offline(no_network: None) -> None:
    assert Path(resolve_model("builtin"), "config.json").exists()
    tok = load_tokenizer("builtin")
    assert tok.is_fast and tok.cls_token_id is not None


def test_missing_model_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match=r"config\.json"):
        resolve_model(str(tmp_path / "empty"))


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("D012345", "MESH:D012345"),
        ("MESH:D012345", "MESH:D012345"),
        ("mesh:C000123456", "MESH:C000123456"),
        ("MIM:601234", "OMIM:601234"),
        ("601234", "OMIM:601234"),
        ("NCBITaxon:txid9606", "NCBITAXON:9606"),
        ("HP_0001250", "HP:0001250"),
        ("UMLS:C0000005", "C0000005"),
        ("FOO:bar", "FOO:bar"),
        ("SNOMEDCT_US:123", "SNOMEDCT:123"),
        ("NCI_CELLOSAURUS:CVCL_0030", "CVCL:CVCL_0030"),
    ],
)
def test_normalise_id(raw: str, expected: str) -> None:
    from bali.ids import normalise_id

    assert normalise_id(raw) == expected


def test_split_gold_ids() -> None:
    from bali.ids import split_gold_ids

    assert split_gold_ids("D000001|D000002") == ([["MESH:D000001"], ["MESH:D000002"]], False)
    assert split_gold_ids("D000001+D000002") == ([["MESH:D000001", "MESH:D000002"]], True)
    assert split_gold_ids("-1") == ([], False)
