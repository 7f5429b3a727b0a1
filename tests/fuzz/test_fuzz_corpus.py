"""Fuzzing the corpus readers through `corpus link`: plain text, JSONL, PubTator and BERN2."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_helpers import MAX_ERRORS, check_outcome, fuzz_settings, fuzzed_bytes, workspace
from hypothesis import given

from bali.corpus.config import CorpusConfig
from bali.corpus.link import link_corpus
from bali.kg.build import build_kg
from bali.kg.config import KGConfig

TEXT = b"Aspirin relieves headache.\nHeadache (HA) and aspirin.\n"
JSONL = b'{"id": "d1", "text": "Aspirin relieves headache."}\n\n{"text": "ASA for HA \\u00e9."}\n'
PUBTATOR = (
    b"1|t|Aspirin for headache.\n"
    b"1|a|Headache again.\n"
    b"1\t0\t7\tAspirin\tChemical\tD001241\n"
    b"1\t12\t20\theadache\tDisease\tMESH:D006261|D001241\n"
    b"1\tCID\tD001241\tD006261\n"
    b"\n"
    b"2|t|ASA.\n"
    b"2\t0\t3\tASA\tChemical\t-1\n"
)
BERN2 = (
    b'{"pmid": "1", "text": "Aspirin for headache.", "annotations": [{"id": ["mesh:D001241"], '
    b'"mention": "Aspirin", "obj": "drug", "span": {"begin": 0, "end": 7}}, {"id": "mesh:D006261", '
    b'"mention": "headache", "obj": "disease", "span": {"begin": 12, "end": 20}}]}\n'
)
EXAMPLES = 50


@pytest.fixture(scope="module")
def kg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-concept KG whose ids match the seeds' gold ids."""
    root = tmp_path_factory.mktemp("kg")
    concepts, edges = root / "c.tsv", root / "e.tsv"
    concepts.write_text("MESH:D001241\tAspirin\tASA\nMESH:D006261\tHeadache\tHA\n", encoding="utf-8")
    edges.write_text("MESH:D001241\tmay_treat\tMESH:D006261\n", encoding="utf-8")
    build_kg(KGConfig(source="tsv", tsv_concepts=str(concepts), tsv_edges=str(edges)), root / "kg")
    return root / "kg"


def _fuzz_link(kg: Path, fmt: str, data: bytes, max_errors: int) -> None:
    with workspace() as root:
        path = root / "in" / f"docs.{fmt}"
        path.parent.mkdir()
        path.write_bytes(data)
        out = root / "out" / "corpus"
        config = CorpusConfig(builtin=False, inputs=[str(path)], format=fmt, max_errors=max_errors)
        check_outcome(lambda: link_corpus(kg, out, config, show_progress=False), [path], out)


@fuzz_settings(EXAMPLES)
@given(data=fuzzed_bytes(TEXT, (b"(", b")")), max_errors=MAX_ERRORS)
def test_fuzz_text(kg_dir: Path, data: bytes, max_errors: int) -> None:
    _fuzz_link(kg_dir, "text", data, max_errors)


@fuzz_settings(EXAMPLES)
@given(data=fuzzed_bytes(JSONL, (b'"text": ', b'"id": ', b"\\u", b"\\udfff")), max_errors=MAX_ERRORS)
def test_fuzz_jsonl(kg_dir: Path, data: bytes, max_errors: int) -> None:
    _fuzz_link(kg_dir, "jsonl", data, max_errors)


@fuzz_settings(EXAMPLES)
@given(data=fuzzed_bytes(PUBTATOR, (b"|t|", b"|a|", b"1\t", b"\tCID\t", b"+")), max_errors=MAX_ERRORS)
def test_fuzz_pubtator(kg_dir: Path, data: bytes, max_errors: int) -> None:
    _fuzz_link(kg_dir, "pubtator", data, max_errors)


@fuzz_settings(EXAMPLES)
@given(
    data=fuzzed_bytes(BERN2, (b'"span": ', b'"begin": ', b'"id": ', b"1.5", b"false")), max_errors=MAX_ERRORS
)
def test_fuzz_bern2(kg_dir: Path, data: bytes, max_errors: int) -> None:
    _fuzz_link(kg_dir, "bern2", data, max_errors)
