"""Regressions of issue 14: bad inputs that ended in a traceback or with the wrong reason, and debris
that a killed stage left behind. Each test failed before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bali.artifacts import atomic_output_dir
from bali.config import load_config
from bali.corpus.config import CorpusConfig
from bali.corpus.link import link_corpus
from bali.corpus.readers import InputBudget, read_documents
from bali.errors import BadInputError
from bali.evaluate.dictionary import load_dictionary_file, load_dictionary_tsv
from bali.evaluate.mentions import read_biosyn, read_heldout, read_pubtator, read_tsv_mentions
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


@pytest.mark.parametrize("item", ["data.neighbours=-1", "kg.bogus.deeper=1"])
def test_bad_set_value_is_reported_against_the_set_argument(tmp_path: Path, item: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  max_steps: 10\n")
    with pytest.raises(BadInputError) as info:
        load_config(path, [item])
    assert info.value.path is None
    assert f"--set {item}" in str(info.value)
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


# Found by the fuzz suite (tests/fuzz).


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("dictionary.txt", load_dictionary_file),
        ("test.pubtator", read_pubtator),
        ("doc.concept", read_biosyn),
        ("heldout_synonyms.tsv", read_heldout),
        ("candidates.tsv", load_dictionary_tsv),
        ("mentions.tsv", read_tsv_mentions),
    ],
)
def test_evaluation_readers_reject_invalid_utf8_with_its_line(
    tmp_path: Path, name: str, read: Callable[[Path], object]
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xff\n")
    with pytest.raises(BadInputError, match="invalid UTF-8") as info:
        read(path)
    assert (info.value.path, info.value.line) == (str(path), 1)


@pytest.mark.parametrize(
    ("name", "text", "read"),
    [
        ("test.pubtator", "1|t|Aspirin\n1\t\u00b2\t7\tAspirin\tChemical\tD001241\n", read_pubtator),
        (
            "doc.concept",
            "1||0|7||Chemical||Aspirin||D001241\n1||\u00b2|7||Chemical||Aspirin||D001241\n",
            read_biosyn,
        ),
        ("heldout_synonyms.tsv", "node_id\tsource_id\tname\n\u00b2\tX\tY\n", read_heldout),
        ("heldout_synonyms.tsv", "node_id\tsource_id\tname\n0\tX\rZ\tY\n", read_heldout),
        ("heldout_synonyms.tsv", "node_id\tsource_id\tname\n0\tX\t" + "Y" * 200_000 + "\n", read_heldout),
        ("mentions.tsv", "C1\tache\nC2\tX\rZ\n", read_tsv_mentions),
        ("candidates.tsv", "C1\tache\nC2\t" + "Y" * 200_000 + "\n", load_dictionary_tsv),
    ],
    ids=[
        "pubtator-superscript",
        "biosyn-superscript",
        "heldout-superscript",
        "heldout-cr",
        "heldout-huge",
        "tsv-mentions-cr",
        "tsv-dictionary-huge",
    ],
)
def test_evaluation_readers_reject_odd_digits_and_tsv_lines(
    tmp_path: Path, name: str, text: str, read: Callable[[Path], object]
) -> None:
    """'²' passes str.isdigit() but not int(); a huge field breaks the csv module, and so does a carriage
    return inside a line now that lines are decoded from bytes (the one case here that passed before)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInputError) as info:
        read(path)
    assert (info.value.path, info.value.line) == (str(path), 2)


def test_mrfiles_declaring_too_few_columns_names_its_line(tmp_path: Path) -> None:
    release = tmp_path / "umls"
    release.mkdir()
    (release / "MRFILES.RRF").write_text(
        "MRSTY.RRF|Semantic Types|CUI,TUI,STN,STY,ATUI,CVF|6|1|1|\nMRCONSO.RRF|x|CUI,STR|2|1|1|\n"
    )
    (release / "MRCONSO.RRF").write_text(MRCONSO_ROW + "\n")
    (release / "MRREL.RRF").write_text(MRREL_ROW + "\n")
    with pytest.raises(BadInputError, match=r"MRCONSO.RRF is declared without its column\(s\)") as info:
        build_kg(KGConfig(source="umls", umls_dir=str(release)), tmp_path / "kg")
    assert (info.value.path, info.value.line) == (str(release / "MRFILES.RRF"), 2)


def test_restrict_to_with_a_non_ascii_digit_is_bad_input(tmp_path: Path) -> None:
    release = tmp_path / "umls"
    release.mkdir()
    for name, row in (("MRCONSO.RRF", MRCONSO_ROW), ("MRREL.RRF", MRREL_ROW)):
        (release / name).write_text(row + "\n")
    restrict = tmp_path / "cuis.txt"
    restrict.write_text("C0000001\nC000000\u00b2\n")
    with pytest.raises(BadInputError, match="expected one CUI per line") as info:
        build_kg(KGConfig(source="umls", umls_dir=str(release), restrict_to=str(restrict)), tmp_path / "kg")
    assert (info.value.path, info.value.line) == (str(restrict), 2)


@pytest.mark.parametrize("source", ["obo", "tsv"])
def test_a_graph_file_without_concepts_is_named(tmp_path: Path, source: str) -> None:
    graph = tmp_path / "graph.txt"
    graph.write_text("format-version: 1.2\n" if source == "obo" else "# nothing but a comment\n")
    edges = tmp_path / "edges.tsv"
    edges.write_text("")
    files = (
        {"obo_files": [str(graph)]}
        if source == "obo"
        else {"tsv_concepts": str(graph), "tsv_edges": str(edges)}
    )
    with pytest.raises(BadInputError, match="would be empty") as info:
        build_kg(KGConfig(source=source, **files), tmp_path / "kg")
    assert info.value.path == str(graph)


def test_corpus_without_documents_names_the_input(tmp_path: Path) -> None:
    concepts, edges = tmp_path / "c.tsv", tmp_path / "e.tsv"
    concepts.write_text("A\tAspirin\n")
    edges.write_text("")
    build_kg(KGConfig(source="tsv", tsv_concepts=str(concepts), tsv_edges=str(edges)), tmp_path / "kg")
    docs = tmp_path / "docs.txt"
    docs.write_text("\n\n")
    config = CorpusConfig(builtin=False, inputs=[str(docs)], format="text")
    with pytest.raises(BadInputError, match="no documents") as info:
        link_corpus(tmp_path / "kg", tmp_path / "corpus", config, show_progress=False)
    assert info.value.path == str(docs)


def test_config_with_a_control_character_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"out_dir: x\ntrain:\n  max_steps: \x00\n")
    with pytest.raises(BadInputError, match="not valid YAML") as info:
        load_config(path)
    assert info.value.line == 3


def test_next_umls_build_removes_a_killed_builds_scratch_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = scratch_root / f"bali-umls-{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "MRREL.RRF").write_text("a cleaned copy\n")
    live = scratch_root / f"bali-umls-{os.getpid()}-def"  # a build still running in this process
    live.mkdir()
    release = tmp_path / "umls"
    release.mkdir()
    for name, row in (("MRCONSO.RRF", MRCONSO_ROW), ("MRREL.RRF", MRREL_ROW)):
        (release / name).write_text(row + "\n")
    build_kg(KGConfig(source="umls", umls_dir=str(release)), tmp_path / "kg")
    assert [p.name for p in scratch_root.iterdir()] == [live.name]


@pytest.mark.parametrize(("text", "line"), [("?\n", 1), ("train:\n  max_steps: 5\n  1: 2\n", 3)])
def test_config_key_that_is_not_a_name_is_bad_input(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(BadInputError, match="expected a setting name") as info:
        load_config(path)
    assert info.value.line == line


def test_config_merge_keys_still_work(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  <<: {max_steps: 7}\n  batch_size: 4\n")
    config = load_config(path)
    assert (config.train.max_steps, config.train.batch_size) == (7, 4)


def test_json_nested_too_deeply_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "x", "a": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(BadInputError, match="nested too deeply") as info:
        list(read_documents([path], "jsonl", InputBudget()))
    assert info.value.line == 1


def test_yaml_nested_too_deeply_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("out_dir: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(BadInputError, match="nested too deeply"):
        load_config(path)
