"""The linked-corpus artefact writer and reader."""

from __future__ import annotations

from pathlib import Path

from bali.artifacts import atomic_output_dir, make_manifest, write_json_atomic
from bali.corpus.artifact import CorpusWriter, LinkedCorpus


def test_roundtrip_with_small_row_groups(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    with atomic_output_dir(out) as tmp:
        with CorpusWriter(tmp, row_group=2) as writer:
            writer.add(
                "d1", 0, "Aspirin treats headache.", [(0, 7, [0], "dictionary"), (15, 23, [1, 2], "gold")]
            )
            writer.add("d1", 1, "No mention here.", [])
            writer.add("d2", 0, "Fever.", [(0, 5, [2], "gold")])
        write_json_atomic(tmp / "manifest.json", make_manifest("corpus", {}, {}, {"sentences": 3}))
    corpus = LinkedCorpus.load(out)
    assert len(corpus) == 3
    assert corpus.sentence(0) == ("Aspirin treats headache.", [(0, 7, [0]), (15, 23, [1, 2])])
    assert corpus.sentence(1) == ("No mention here.", [])
    assert list(corpus)[2] == ("Fever.", [(0, 5, [2])])
    batches = list(corpus.iter_batches(2))
    assert [len(b) for b in batches] == [2, 1] and batches[1][0] == ("Fever.", [(0, 5, [2])])
