"""`bali data build`: alignment, truncation, entities, names, splits and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny_data import SENTENCES, write_corpus

from bali.cli import main
from bali.data import layout
from bali.data.config import DataConfig
from bali.data.dataset import BaliDataset
from bali.data.encode import build_dataset
from bali.errors import BadInputError
from bali.lm import load_tokenizer, tokenizer_fingerprint


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("builtin")


def _build(tmp_path: Path, kg: Path, sentences, **settings) -> BaliDataset:
    corpus = write_corpus(tmp_path / "corpus", sentences)
    max_errors = settings.pop("max_errors", 0)
    config = DataConfig(validation_fraction=settings.pop("validation_fraction", 0.0), **settings)
    build_dataset(kg, corpus, "builtin", tmp_path / "ds", config, max_errors=max_errors)
    return BaliDataset(tmp_path / "ds")


def _entities(item, nodes: np.ndarray) -> dict[int, list[int]]:
    """KG node id -> sorted token positions of that entity."""
    out: dict[int, list[int]] = {}
    for position, entity in zip(item.mention_positions.tolist(), item.mention_entities.tolist(), strict=True):
        out.setdefault(int(nodes[item.entity_nodes[entity]]), []).append(position)
    return {k: sorted(v) for k, v in out.items()}


def _inside(tokenizer, text: str, start: int, end: int) -> list[int]:
    """Positions (with [CLS] at 0) of the subwords whose characters lie inside [start, end)."""
    enc = tokenizer(text, return_offsets_mapping=True)
    return [i for i, (a, b) in enumerate(enc["offset_mapping"]) if b > a and a >= start and b <= end]


def test_mention_tokens_align_with_offsets(tmp_path: Path, tiny_kg: Path, tokenizer) -> None:
    ds = _build(tmp_path, tiny_kg, SENTENCES)
    nodes = np.asarray(ds.files.array(layout.NODES))
    item = ds[0]
    text, mentions = SENTENCES[0]
    assert item.input_ids.tolist() == tokenizer(text)["input_ids"]
    expected = {ids[0]: _inside(tokenizer, text, s, e) for s, e, ids in mentions}
    assert _entities(item, nodes) == expected
    assert len(ds) == 5  # "No mention here." dropped


def test_one_entity_per_sentence_concept_and_multi_concept_tokens(
    tmp_path: Path, tiny_kg: Path, tokenizer
) -> None:
    text = "Headache fever and aspirin."
    sentences = [
        ("Aspirin or aspirin again with pain.", [(0, 7, [0]), (11, 18, [0]), (30, 34, [4])]),
        ("Paracetamol relieves nausea.", [(0, 11, [3, 0]), (21, 27, [5])]),
        # Nested spans of the same concept: the shared "headache" tokens must count once.
        (text, [(0, 14, [1]), (0, 8, [1, 1]), (9, 14, [2]), (19, 26, [0])]),
    ]
    ds = _build(tmp_path, tiny_kg, sentences)
    nodes = np.asarray(ds.files.array(layout.NODES))
    pooled = _entities(ds[0], nodes)
    assert pooled[0] == _inside(tokenizer, sentences[0][0], 0, 7) + _inside(
        tokenizer, sentences[0][0], 11, 18
    )
    assert len(ds[0].entity_nodes) == 2
    multi = _entities(ds[1], nodes)
    assert multi[3] == multi[0] == _inside(tokenizer, sentences[1][0], 0, 11)
    nested = _entities(ds[2], nodes)
    assert nested[1] == _inside(tokenizer, text, 0, 14)  # union, no duplicate (token, entity) pair
    assert nested[2] == _inside(tokenizer, text, 9, 14)
    for i in range(len(ds)):
        pairs = list(zip(ds[i].mention_positions.tolist(), ds[i].mention_entities.tolist(), strict=True))
        assert len(pairs) == len(set(pairs))
        assert len(set(ds[i].entity_nodes.tolist())) == len(ds[i].entity_nodes)


def test_offsets_are_characters_not_bytes(tmp_path: Path, tiny_kg: Path, tokenizer) -> None:
    text = "Les β-bloquants et l’aspirine 😀 contre la fièvre."
    a, f = text.index("aspirine"), text.index("fièvre")
    ds = _build(tmp_path, tiny_kg, [(text, [(a, a + 8, [0]), (f, f + 6, [2])])])
    nodes = np.asarray(ds.files.array(layout.NODES))
    assert _entities(ds[0], nodes) == {
        0: _inside(tokenizer, text, a, a + 8),
        2: _inside(tokenizer, text, f, f + 6),
    }
    assert ds[0].input_ids.tolist() == tokenizer(text)["input_ids"]


def test_truncation_drops_cut_mentions_whole(tmp_path: Path, tiny_kg: Path, tokenizer) -> None:
    text = "Aspirin helps " + "and " * 5 + "acetylsalicylic acid and fever."
    a = text.index("acetylsalicylic")
    f = text.index("fever")
    sentences = [(text, [(0, 7, [0]), (a, a + 20, [0, 3]), (f, f + 5, [2])])]
    full = tokenizer(text)["input_ids"]
    inside = _inside(tokenizer, text, a, a + 20)
    # Cut inside the second mention: [CLS] + tokens up to its second subword + [SEP].
    max_length = inside[1] + 2
    assert max_length >= 8
    ds = _build(tmp_path, tiny_kg, sentences, max_length=max_length)
    item = ds[0]
    assert len(item.input_ids) == max_length
    assert item.input_ids[:-1].tolist() == full[: max_length - 1]
    assert item.input_ids[-1] == tokenizer.sep_token_id
    nodes = np.asarray(ds.files.array(layout.NODES))
    assert _entities(item, nodes) == {0: _inside(tokenizer, text, 0, 7)}  # no partial mention left
    counts = ds.manifest["counts"]
    assert counts["mentions_dropped"]["truncated"] == 2
    assert counts["sentences_truncated"] == 1


def test_sentences_without_mentions_and_unaligned_spans(tmp_path: Path, tiny_kg: Path) -> None:
    sentences = [
        ("Nothing here.", []),
        ("Aspirin", [(1, 3, [0])]),  # "sp" covers no whole subword (as ##pi ##rin)
        ("", []),
        ("Pain.", [(0, 4, [4])]),
    ]
    ds = _build(tmp_path / "a", tiny_kg, sentences)
    counts = ds.manifest["counts"]
    assert len(ds) == 1
    assert counts["sentences_dropped"] == {"empty": 1, "no_mentions": 1, "no_aligned_mentions": 1}
    assert counts["mentions_dropped"]["no_whole_token"] == 1
    kept = _build(tmp_path / "b", tiny_kg, sentences, drop_sentences_without_mentions=False)
    assert len(kept) == 3 and kept.manifest["counts"]["sentences_dropped"]["empty"] == 1


def test_names_graph_and_manifest(tmp_path: Path, tiny_kg: Path, tokenizer) -> None:
    # Only "headache" is mentioned: aspirin (its neighbour) must come with all its names.
    ds = _build(tmp_path, tiny_kg, [("Headache.", [(0, 8, [1])])])
    files = ds.files
    nodes = np.asarray(files.array(layout.NODES)).tolist()
    assert nodes == [1, 0]  # mentioned first, then neighbour-only nodes
    indptr = np.asarray(files.array(layout.NODE_NAMES_INDPTR))
    flat, offsets = files.array(layout.NAME_INPUT_IDS), files.array(layout.NAME_OFFSETS)
    rows = np.asarray(files.array(layout.NODE_NAME_ROWS))
    decoded = [
        [tokenizer.decode(flat[offsets[r] : offsets[r + 1]]) for r in rows[indptr[i] : indptr[i + 1]]]
        for i in range(len(nodes))
    ]
    assert decoded[0] == ["[CLS] headache [SEP]", "[CLS] cephalgia [SEP]"]
    assert decoded[1] == ["[CLS] aspirin [SEP]", "[CLS] acetylsalicylic acid [SEP]", "[CLS] asa drug [SEP]"]
    assert np.asarray(files.array(layout.GRAPH_INDPTR)).tolist() == [0, 1]
    assert np.asarray(files.array(layout.GRAPH_INDICES)).tolist() == [1]  # local id of aspirin
    manifest = ds.manifest
    assert manifest["stage"] == "data"
    assert manifest["tokenizer"] == tokenizer_fingerprint(tokenizer)
    assert {"kg", "corpus"} <= set(manifest["inputs"])
    assert manifest["counts"]["nodes"] == 2 and manifest["counts"]["neighbour_only_nodes"] == 1
    phrases = files.array(layout.RELATION_INPUT_IDS), files.array(layout.RELATION_OFFSETS)
    assert tokenizer.decode(phrases[0][phrases[1][0] : phrases[1][1]]) == "may treat"


def test_validation_split_is_deterministic_and_disjoint(tmp_path: Path, tiny_kg: Path) -> None:
    sentences = SENTENCES * 100
    train = _build(tmp_path / "a", tiny_kg, sentences, validation_fraction=0.25)
    validation = BaliDataset(tmp_path / "a" / "ds", split="validation")
    again = BaliDataset(_build(tmp_path / "b", tiny_kg, sentences, validation_fraction=0.25).files.directory)
    ti, vi = np.asarray(train.indices), np.asarray(validation.indices)
    assert not set(ti) & set(vi) and len(ti) + len(vi) == 500
    assert 0.15 < len(vi) / 500 < 0.35
    assert np.array_equal(ti, np.asarray(again.indices))
    with pytest.raises(BadInputError, match="split"):
        BaliDataset(tmp_path / "a" / "ds", split="test")


def test_bad_spans_and_unknown_ids_name_file_and_row(tmp_path: Path, tiny_kg: Path) -> None:
    bad_span = [("Pain.", [(0, 4, [4])]), ("Fever.", [(2, 40, [2])])]
    with pytest.raises(BadInputError, match=r"mentions\.parquet:2: mention row 1 .*outside") as info:
        _build(tmp_path / "a", tiny_kg, bad_span)
    assert info.value.line == 2
    unknown = [("Pain.", [(0, 4, [4, 99])])]
    with pytest.raises(BadInputError, match=r"mentions\.parquet:1: .*\[99\] unknown to the KG"):
        _build(tmp_path / "b", tiny_kg, unknown)
    tolerated = _build(tmp_path / "c", tiny_kg, bad_span + unknown, max_errors=2)
    counts = tolerated.manifest["counts"]
    assert counts["bad_input"]["by_reason"] == {"span_outside_text": 1, "unknown_node_id": 1}
    assert len(tolerated) == 1


def test_corpus_file_problems(tmp_path: Path, tiny_kg: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SENTENCES[:3])  # mentions of sentences 0 and 2
    path = corpus / "mentions.parquet"
    table = pq.read_table(path)
    pq.write_table(table.take(pa.array([3, 0, 1, 2, 4, 5])), path)
    with pytest.raises(BadInputError, match="out of order"):
        build_dataset(tiny_kg, corpus, "builtin", tmp_path / "ds", DataConfig())
    shifted = table.set_column(0, "sentence_id", pa.array([0, 0, 0, 2, 2, 7], pa.int64()))
    pq.write_table(shifted, path)
    with pytest.raises(BadInputError, match="past the last"):
        build_dataset(tiny_kg, corpus, "builtin", tmp_path / "ds", DataConfig())
    with pytest.raises(BadInputError, match="manifest"):
        build_dataset(tiny_kg, tmp_path, "builtin", tmp_path / "ds", DataConfig())


def test_tokenizer_without_offsets_is_bad_input(
    tmp_path: Path, tiny_kg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import BertTokenizerLegacy

    from bali.lm import builtin_model_path

    slow = BertTokenizerLegacy(str(builtin_model_path() / "vocab.txt"))  # pure Python, no offsets
    monkeypatch.setattr("bali.data.encode.load_tokenizer", lambda model: slow)
    corpus = write_corpus(tmp_path / "corpus", SENTENCES[:1])
    with pytest.raises(BadInputError, match="offset mapping"):
        build_dataset(tiny_kg, corpus, "builtin", tmp_path / "ds", DataConfig())


def test_cli_build_json_and_exit_codes(tmp_path: Path, tiny_kg: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = write_corpus(tmp_path / "corpus", SENTENCES)
    args = ["data", "build", "--kg", str(tiny_kg), "--corpus", str(corpus), "--out", str(tmp_path / "ds")]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stage"] == "data" and result["counts"]["sentences_kept"] == 5
    assert main(args) == 2  # exists without --overwrite
    assert main([*args, "--overwrite", "--max-length", "4"]) == 2
    bad = write_corpus(tmp_path / "bad", [("Pain.", [(0, 9, [4])])])
    assert (
        main(["data", "build", "--kg", str(tiny_kg), "--corpus", str(bad), "--out", str(tmp_path / "x")]) == 2
    )
    assert "mentions.parquet:1" in capsys.readouterr().err


def test_node_without_names_falls_back_to_preferred_name(tmp_path: Path, tokenizer) -> None:
    from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
    from bali.kg.graph import Relation, write_kg

    kg = tmp_path / "kg"
    with atomic_output_dir(kg) as tmp:
        counts = write_kg(
            tmp,
            concepts=pa.table({"source_id": ["A", "B"], "preferred_name": ["Alpha", "Beta Name"]}),
            name_node_ids=np.array([0]),
            names=["Alpha"],
            edges=(np.array([0]), np.array([1]), np.array([0])),
            relations=[Relation("related")],
        )
        write_json_atomic(tmp / "manifest.json", make_manifest("kg", {}, {}, counts))
    ds = _build(tmp_path, kg, [("Alpha.", [(0, 5, [0])])])
    files = ds.files
    rows = np.asarray(files.array(layout.NODE_NAME_ROWS))
    flat, offsets = files.array(layout.NAME_INPUT_IDS), files.array(layout.NAME_OFFSETS)
    assert tokenizer.decode(flat[offsets[rows[1]] : offsets[rows[1] + 1]]) == "[CLS] beta name [SEP]"
    assert ds.manifest["counts"]["nodes_named_by_fallback"] == 1
