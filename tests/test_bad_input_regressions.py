"""Regressions of issue 14: bad inputs that ended in a traceback or with the wrong reason, and debris
that a killed stage left behind. Each test failed before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bali.artifacts import atomic_output_dir
from bali.config import load_config
from bali.corpus.readers import InputBudget, read_documents
from bali.errors import BadInputError
from bali.kg.build import build_kg
from bali.kg.config import KGConfig

MRCONSO_ROW = "C0000001|ENG|P|L1|PF|S1|Y|A1||||MSH|MH|D000001|Aspirin|0|N|256|"
MRREL_ROW = "C0000001|A1|CUI|RO|C0000001|A2|CUI|may_treat|R1||MSH|MSH|||N||"
MRSTY_ROW = "C0000001|T109|A1.4.1.2.1|Organic Chemical|AT1|256|"


@pytest.mark.parametrize("empty", ["MRCONSO.RRF", "MRREL.RRF", "MRSTY.RRF"])
def test_empty_rrf_file_is_bad_input(tmp_path: Path, empty: str) -> None:
    release = tmp_path / "umls"
    release.mkdir()
    for name, row in (("MRCONSO.RRF", MRCONSO_ROW), ("MRREL.RRF", MRREL_ROW), ("MRSTY.RRF", MRSTY_ROW)):
        (release / name).write_text("" if name == empty else row + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="empty file") as info:
        build_kg(KGConfig(source="umls", umls_dir=str(release)), tmp_path / "kg")
    assert info.value.path == str(release / empty)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["umls"]


@pytest.mark.parametrize("fmt", ["jsonl", "bern2"])
def test_lone_surrogate_in_json_is_bad_input(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"pmid": 1, "id": 1, "text": "fine"}\n{"pmid": 2, "id": 2, "text": "a \\ud800 b"}\n')
    with pytest.raises(BadInputError, match="lone surrogate") as info:
        list(read_documents([path], fmt, InputBudget()))
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_surrogate_pair_in_json_is_a_character(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "emoji \\ud83d\\ude00"}\n')
    [doc] = read_documents([path], "jsonl", InputBudget())
    assert doc.text == "emoji \U0001f600"


def test_pubtator_reversed_span_says_so(tmp_path: Path) -> None:
    path = tmp_path / "docs.pubtator"
    path.write_text("1|t|Asthma.\n1\t6\t0\tAsthma\tDisease\tD1\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="end 0 is not after its start 6") as info:
        list(read_documents([path], "pubtator", InputBudget()))
    assert info.value.line == 2
    budget = InputBudget(1)
    list(read_documents([path], "pubtator", budget))
    assert budget.counts == {"bad_span": 1}


def test_bern2_integer_id_says_so(tmp_path: Path) -> None:
    path = tmp_path / "docs.json"
    record = '{"pmid": 1, "text": "Asthma.", "annotations": [{"id": 5, "span": {"begin": 0, "end": 6}}]}'
    path.write_text(record + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match='"id" must be a string or a list of strings, got 5') as info:
        list(read_documents([path], "bern2", InputBudget()))
    assert info.value.line == 1


def test_config_error_names_the_yaml_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("out_dir: runs/x\ntrain:\n  max_steps: 10\n  bogus: 1\ndata:\n  neighbours: -1\n")
    with pytest.raises(BadInputError) as info:
        load_config(path)
    assert (info.value.path, info.value.line) == (str(path), 4)
    assert "train.bogus (line 4): unknown key" in str(info.value)
    assert "data.neighbours (line 6):" in str(info.value)


def test_bad_set_value_is_reported_against_the_set_argument(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  max_steps: 10\n")
    with pytest.raises(BadInputError) as info:
        load_config(path, ["data.neighbours=-1"])
    assert info.value.path is None
    assert "--set data.neighbours=-1" in str(info.value)
    assert str(path) not in str(info.value)


def test_config_not_utf8_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"out_dir: x\ntrain: \xff\n")
    with pytest.raises(BadInputError, match="invalid UTF-8") as info:
        load_config(path)
    assert info.value.line == 2


def _killed_stage(out: Path) -> None:
    """Run a stage in a child process and kill -9 it while its output is still a temporary dir."""
    code = (
        "import os, signal, sys\n"
        "from bali.artifacts import atomic_output_dir\n"
        "with atomic_output_dir(sys.argv[1]) as tmp:\n"
        "    (tmp / 'partial').write_text('x')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code, str(out)], env=env, check=False)
    assert result.returncode == -9


def test_next_run_removes_temporary_dirs_of_a_killed_stage(tmp_path: Path) -> None:
    out = tmp_path / "art"
    _killed_stage(out)
    assert [p.name.startswith(".art.tmp-") for p in tmp_path.iterdir()] == [True]
    (tmp_path / ".other.tmp-1-abc").mkdir()  # another output's debris is not this stage's to remove
    with atomic_output_dir(out) as tmp:
        (tmp / "done").write_text("y")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-1-abc", "art"]


def test_a_live_stage_keeps_its_temporary_dir(tmp_path: Path) -> None:
    out = tmp_path / "art"
    with atomic_output_dir(out) as running, atomic_output_dir(tmp_path / "art", overwrite=True) as second:
        assert running.is_dir() and second.is_dir()  # a live process's directory is not debris
