"""Zero-shot linking: dictionaries, mention readers, the scoring rules and the end-to-end command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bali.corpus.abbreviations import find_abbreviations
from bali.errors import BadInputError
from bali.evaluate import linking
from bali.evaluate.cache import CachedEmbeddings
from bali.evaluate.dictionary import build_dictionary, load_dictionary, load_dictionary_file
from bali.evaluate.linking import (
    MentionSet,
    evaluate_linking,
    gold_concepts,
    gold_parts,
    gold_rank,
    prepare_set,
    rank_concepts,
    score,
)
from bali.evaluate.mentions import read_biosyn, read_heldout, read_pubtator
from bali.evaluate.search import ArrayVectors, ExactIndex


def test_medic_dictionary(medic_file: Path) -> None:
    d = load_dictionary_file(medic_file)
    assert d.num_concepts == 5 and d.num_names == 10
    assert d.concept_ids[1] == ["MESH:C567755", "OMIM:613097"]
    assert d.id_index["OMIM:613097"] == [1] and d.has_id("MESH:D006333")
    assert d.stats()["unrecognised_ids"] == 1  # MEDIC's root 'C' is kept verbatim and counted


def test_kg_dictionary_has_xrefs_and_node_keys(tiny_kg: Path) -> None:
    d = load_dictionary(tiny_kg)
    assert d.num_concepts == 3 and "Epileptic fit" in d.strings
    assert d.id_index["MESH:D012640"] == [0] and d.id_index["MESH:D003920"] == [1]
    assert d.id_index["KG:2"] == [2] and d.id_index["HP:0001945"] == [2]


def test_bad_dictionaries(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("D000001||Calcimycin\nD000002 Temefos\n")
    with pytest.raises(BadInputError, match=r"bad\.txt:2"):
        load_dictionary_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(BadInputError, match="empty"):
        load_dictionary_file(empty)
    noname = tmp_path / "noname.txt"
    noname.write_text("D000001||\n")
    with pytest.raises(BadInputError, match=r"noname\.txt:1.*without any name"):
        load_dictionary_file(noname)


def test_pubtator_reader(pubtator_file: Path) -> None:
    mentions, docs = read_pubtator(pubtator_file, ["Disease"])
    assert len(mentions) == 5 and docs["1"].startswith("Heart failure (HF)")
    hf, _, alt, comp, none = mentions
    assert hf.gold == (("MESH:D006333",),) and not hf.composite
    assert alt.gold == (("MESH:D003920",), ("MESH:D999999",)) and not alt.composite
    assert comp.gold == (("MESH:D006333", "MESH:D003920"),) and comp.composite  # 7 columns = composite
    assert none.gold == ()
    assert len(read_pubtator(pubtator_file)[0]) == 6  # no type filter


def test_biosyn_reader(biosyn_file: Path) -> None:
    mentions = read_biosyn(biosyn_file, ["disease"])
    assert [m.text for m in mentions] == ["Heart failure", "diabetes", "blue tongue+HF"]
    assert mentions[1].gold == (("MESH:D003920",), ("MESH:D999999",))
    assert mentions[2].composite and mentions[2].gold == (("MESH:D001819", "MESH:D006333"),)


def test_malformed_mentions(tmp_path: Path) -> None:
    bad = tmp_path / "bad.PubTator.txt"
    bad.write_text("1|t|Title\n1\t0\tx\tTitle\tDisease\tD000001\n")
    with pytest.raises(BadInputError, match=r"bad\.PubTator\.txt:2"):
        read_pubtator(bad)
    bad_id = tmp_path / "badid.concept"
    bad_id.write_text("1||0|5||Disease||fever||D000001\n1||0|5||Disease||fever||banana\n")
    with pytest.raises(BadInputError, match=r"badid\.concept:2.*unrecognised gold id 'banana'"):
        read_biosyn(bad_id)
    with pytest.raises(BadInputError, match=r"x\.concept:1"):
        (tmp_path / "x.concept").write_text("1|0|5|Disease|fever|D000001\n")
        read_biosyn(tmp_path / "x.concept")


def test_heldout_reader_and_leakage(tiny_kg: Path, tmp_path: Path) -> None:
    mentions = read_heldout(tiny_kg)
    assert [(m.text, m.gold) for m in mentions] == [("convulsion", (("KG:0",),)), ("pyrexia", (("KG:2",),))]
    d = load_dictionary(tiny_kg)
    assert "convulsion" not in d.strings and "pyrexia" not in d.strings  # withheld names are not leaked
    leaky = tmp_path / "leaky.tsv"
    leaky.write_text("node_id\tsource_id\tname\n1\tDOID:9352\tDIABETES MELLITUS\n")
    from bali.evaluate.mentions import check_heldout_leakage

    with pytest.raises(BadInputError, match=r"leaky\.tsv:2.*leaks"):
        check_heldout_leakage(read_heldout(leaky), d, leaky)
    with pytest.raises(BadInputError, match="holdout-synonyms"):
        read_heldout(tmp_path)
    (tmp_path / "h.tsv").write_text("id\tname\n")
    with pytest.raises(BadInputError, match=r"h\.tsv:1"):
        read_heldout(tmp_path / "h.tsv")


def test_abbreviations() -> None:
    found = find_abbreviations("Heart failure (HF) is common. We studied HF in diabetes mellitus (DM).")
    assert {a.short: a.long for a in found} == {"HF": "Heart failure", "DM": "diabetes mellitus"}
    assert find_abbreviations("a value (p < 0.05) and (2011)") == []


def _dictionary() -> linking.Dictionary:
    # concepts: 0 = A, 1 = B, 2 = C; the string "shared" names both B and A (tie -> A first).
    return build_dictionary(
        "test",
        [["MESH:D000001"], ["MESH:D000002", "OMIM:100100"], ["MESH:D000003"]],
        ["alpha", "shared", "beta", "shared", "gamma"],
        [0, 1, 1, 0, 2],
    )


def test_rank_concepts_dedupes_and_breaks_ties_by_dictionary_order() -> None:
    d = _dictionary()
    assert d.strings == ["alpha", "shared", "beta", "gamma"]
    assert d.concepts_of_string(1).tolist() == [0, 1]
    vectors = np.eye(4, dtype=np.float32)
    index = ExactIndex(ArrayVectors(vectors), block_rows=3)
    # query = "shared": concepts 0 and 1 tie on the same string, 0 comes first (dictionary order)
    ranking = rank_concepts(vectors[[1]], index, d, depth=3)
    assert ranking.concepts[0].tolist()[:2] == [0, 1]
    # equal scores of different strings: lower string index first, each concept once
    query = np.array([[0.0, 0.0, 1.0, 1.0]], dtype=np.float32)
    assert rank_concepts(query, index, d, depth=3).concepts[0].tolist() == [1, 2, 0]
    _scores, ids = index.search(np.array([[1, 1, 1, 1]], np.float32), 4)
    assert ids[0].tolist() == [0, 1, 2, 3]


def test_scoring_rules_alternatives_composites_and_ids() -> None:
    from bali.evaluate.mentions import Mention

    d = _dictionary()

    def mention(gold: tuple, composite: bool = False) -> Mention:
        return Mention("1", 0, 1, "x", "Disease", gold, composite, "gold", 1)

    # '|' alternatives: any-of; normalised ids: OMIM:100100 reaches concept 1
    assert gold_concepts(mention((("MESH:D000009",), ("OMIM:100100",))), d) == {1}
    # composite: any part
    assert gold_concepts(mention((("MESH:D000001", "MESH:D000003"),), True), d) == {0, 2}
    ranked = [np.array([1, 0, 2]), np.array([2, 1]), np.array([0])]
    gold = [((frozenset({1}),),), ((frozenset({1}),),), ((frozenset({2}),),)]
    metrics = score([gold_rank(r, g) for r, g in zip(ranked, gold, strict=True)], (1, 5))
    assert metrics["acc@1"] == pytest.approx(1 / 3) and metrics["acc@5"] == pytest.approx(2 / 3)
    assert metrics["mrr"] == pytest.approx((1 + 0.5 + 0) / 3) and metrics["mentions"] == 3


@pytest.fixture
def exact_match_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the LM by an embedding where equal lower-cased strings coincide (exact-match linking)."""

    dims: dict[str, int] = {}

    def fake_encode(model, tokenizer, texts, poolings, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, dims.setdefault(t.lower(), len(dims))] = 1.0
            out[i, 255] = 0.1
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return {p: out for p in poolings}

    def fake_dictionary(encoder, tokenizer, strings, poolings, cache_dir, **kwargs):  # type: ignore[no-untyped-def]
        vectors = fake_encode(encoder, tokenizer, strings, poolings)
        return CachedEmbeddings(
            {p: ArrayVectors(v) for p, v in vectors.items()}, "encoded", 0, str(cache_dir)
        )

    monkeypatch.setattr(linking, "dictionary_embeddings", fake_dictionary)
    monkeypatch.setattr("bali.lm.load_encoder", lambda m: object())
    monkeypatch.setattr("bali.lm.load_tokenizer", lambda m: object())


def test_evaluate_linking_counts_and_rows(
    exact_match_encoder: None, medic_file: Path, pubtator_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "el"
    result = evaluate_linking(
        ["m1", "m2"],
        medic_file,
        pubtator_file,
        ["mean", "cls"],
        out,
        entity_types=["Disease"],
        abbreviations=True,
    )
    (m,) = result["mention_sets"]
    assert m["total"] == 5 and m["scored"] == 4 and m["without_gold_id"] == 1 and m["composite"] == 1
    assert m["unmapped_gold_ids"] == 1 and m["unmapped_gold_id_examples"] == ["MESH:D999999"]
    assert m["abbreviations_expanded"] == 1
    assert len(result["rows"]) == 2 * 2 * 2 * 2  # models x poolings x protocols x subsets
    row = next(
        r
        for r in result["rows"]
        if r["model"] == "m1" and r["subset"] == "all" and r["protocol"] == "zero-shot"
    )
    # Heart failure, HF, diabetes hit; the composite "heart failure and diabetes" misses (no such name)
    assert row["acc@1"] == pytest.approx(3 / 4) and row["mentions"] == 4
    nocomp = next(r for r in result["rows"] if r["model"] == "m1" and r["subset"] == "no-composite")
    assert nocomp["mentions"] == 3 and nocomp["acc@1"] == 1.0
    saved = json.loads((out / "results.json").read_text())
    assert "ANY of its parts" in saved["protocol"]
    assert (out / "report.md").read_text().count("Acc@1") >= 1
    assert (out / "linking_acc.png").stat().st_size > 1000
    assert len(list((out / "predictions").glob("*.jsonl"))) == 2 * 2 * 2
    assert [(c["model"], c["won"], c["lost"], c["p_value"]) for c in saved["paired"]] == [
        ("m2", 0, 0, 1.0)
    ] * 4  # the same encoder twice: no discordant mention, per pooling and protocol
    assert [(c["distinct_won"], c["distinct_lost"]) for c in saved["paired"]] == [(0, 0)] * 4
    # "HF" expands to "Heart failure": one searched string, one pair, under abbreviation expansion
    pairs = {"zero-shot": 4, "zero-shot+abbreviation-expansion": 3}
    assert m["distinct_string_gold_pairs"] == pairs
    report = (out / "report.md").read_text()
    assert "exact McNemar p = 1" in report and "over distinct (string, gold) pairs 0 / 0, p = 1" in report
    assert "4 (zero-shot), 3 (zero-shot+abbreviation-expansion)" in report


def test_distinct_pairs_keep_each_string_and_gold_once(medic_file: Path) -> None:
    from bali.evaluate.mentions import Mention

    def mention(text: str, gold: str) -> Mention:
        return Mention("1", 0, 1, text, "Disease", ((gold,),), False, "gold", 1)

    mentions = [
        mention("HF", "D006333"),
        mention("HF", "D006333"),  # the same decision again
        mention("HF", "D003920"),  # same string, other gold: its own pair
        mention("heart failure", "D006333"),
        mention("HF", "D006333"),
    ]
    prepared = prepare_set(MentionSet(mentions), "m", load_dictionary(medic_file), False, None, 0, None)
    assert prepared.first_of_pair["zero-shot"].tolist() == [True, False, True, True, False]
    assert prepared.stats["distinct_string_gold_pairs"] == {"zero-shot": 3}


def test_evaluate_linking_heldout(exact_match_encoder: None, tiny_kg: Path) -> None:
    result = evaluate_linking(["m"], tiny_kg, tiny_kg, ["mean"], mention_format="heldout")
    assert result["mention_sets"][0]["scored"] == 2 and result["mention_sets"][0]["unmapped_gold_ids"] == 0
    assert result["rows"][0]["mentions"] == 2


def test_named_subsets_add_rows_scored_on_their_mentions_only(
    exact_match_encoder: None, medic_file: Path, pubtator_file: Path
) -> None:
    """A named filter gives one more row per model and pooling, scored on the mentions it keeps."""
    result = evaluate_linking(
        ["m"],
        medic_file,
        pubtator_file,
        ["mean"],
        entity_types=["Disease"],
        subsets={"diabetes only": lambda m: m.text == "diabetes"},
    )
    rows = {r["subset"]: r for r in result["rows"]}
    assert list(rows) == ["all", "no-composite", "diabetes only"]
    assert rows["diabetes only"]["mentions"] == 1 and rows["diabetes only"]["acc@1"] == 1.0
    assert rows["all"]["mentions"] == 4


def test_real_encoder_end_to_end(
    tiny_bert_dir: str, medic_file: Path, biosyn_file: Path, tmp_path: Path
) -> None:
    from bali.cli import main

    out = tmp_path / "el"
    code = main(
        [
            "eval",
            "linking",
            "--model",
            tiny_bert_dir,
            "--dictionary",
            str(medic_file),
            "--mentions",
            str(biosyn_file),
            "--format",
            "biosyn",
            "--entity-type",
            "Disease",
            "--pooling",
            "mean",
            "cls",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r["pooling"] for r in rows} == {"mean", "cls"} and all(0 <= r["acc@5"] <= 1 for r in rows)
    assert (
        main(
            [
                "eval",
                "linking",
                "--model",
                tiny_bert_dir,
                "--dictionary",
                str(medic_file),
                "--mentions",
                str(biosyn_file),
                "--format",
                "biosyn",
                "--out",
                str(out),
            ]
        )
        == 2
    )  # exists, no --overwrite
    assert (
        main(
            [
                "eval",
                "linking",
                "--model",
                tiny_bert_dir,
                "--mentions",
                str(biosyn_file),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )  # no dictionary


def test_encode_matches_unsorted_forward(tiny_bert_dir: str) -> None:
    import torch

    from bali.evaluate.encode import encode_texts
    from bali.lm import load_encoder, load_tokenizer

    tok, model = load_tokenizer(tiny_bert_dir), load_encoder(tiny_bert_dir)
    texts = ["heart failure", "a much longer disease name with words", "HF"]
    got = encode_texts(model, tok, texts, ["mean", "cls"], batch_size=2)
    with torch.inference_mode():
        enc = tok(texts[1], return_tensors="pt")
        hidden = model(**enc).last_hidden_state[0]
    expected = torch.nn.functional.normalize(hidden.mean(0), dim=-1).numpy()
    assert np.allclose(got["mean"][1], expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(got["cls"], axis=1), 1.0, atol=1e-5)


def test_cli_heldout_from_kg_dir(exact_match_encoder: None, tiny_kg: Path, tmp_path: Path) -> None:
    from bali.cli import main

    out = tmp_path / "held"
    assert (
        main(
            [
                "eval",
                "linking",
                "--model",
                "m",
                "--kg",
                str(tiny_kg),
                "--format",
                "heldout",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads((out / "results.json").read_text())
    assert result["mention_sets"][0]["format"] == "heldout" and result["rows"][0]["mentions"] == 2
    dev = ["eval", "linking", "--model", "m", "--kg", str(tiny_kg), "--format", "heldout", "--split", "dev"]
    assert main([*dev, "--out", str(tmp_path / "dev")]) == 0
    result = json.loads((tmp_path / "dev" / "results.json").read_text())
    assert result["rows"][0]["mentions"] == 1 and result["mention_sets"][0]["source"].endswith(".dev.tsv")
    assert main(["eval", "linking", "--model", "m", "--kg", str(tiny_kg), "--out", str(tmp_path / "x")]) == 2


def test_composites_all_needs_every_part_any_needs_one() -> None:
    from bali.evaluate.mentions import Mention

    d = _dictionary()
    both = Mention("1", 0, 1, "x", "Disease", (("MESH:D000001", "MESH:D000003"),), True, "gold", 1)
    gold = gold_parts(both, d)
    assert gold_rank(np.array([0, 1, 2]), gold, "any") == 0
    assert gold_rank(np.array([0, 1, 2]), gold, "all") == 2  # linked once its last part (C) is found
    assert gold_rank(np.array([0, 1]), gold, "all") is None
    # alternatives: the best one wins; a single-part mention is the same under both rules
    alt = Mention(
        "1", 0, 1, "x", "Disease", (("MESH:D000001", "MESH:D000003"), ("MESH:D000002",)), True, "gold", 1
    )
    assert gold_rank(np.array([0, 1, 2]), gold_parts(alt, d), "all") == 1
    single = Mention("1", 0, 1, "x", "Disease", (("MESH:D000003",),), False, "gold", 1)
    assert gold_rank(np.array([2]), gold_parts(single, d), "all") == gold_rank(
        np.array([2]), gold_parts(single, d)
    )


def test_evaluate_linking_composites_all_is_stated_and_stricter(
    exact_match_encoder: None, medic_file: Path, biosyn_file: Path
) -> None:
    rows = {}
    for rule in ("any", "all"):
        result = evaluate_linking(
            ["m"], medic_file, biosyn_file, ["mean"], mention_format="biosyn", composites=rule, ks=(1, 2, 5)
        )
        assert f"composites: {rule}" in result["protocol"] and result["settings"]["composites"] == rule
        rows[rule] = next(r for r in result["rows"] if r["subset"] == "all")
    # "blue tongue+HF" (gold Bluetongue + Heart Failure): no name matches the whole string exactly
    assert rows["all"]["acc@5"] <= rows["any"]["acc@5"] and rows["all"]["mrr"] <= rows["any"]["mrr"]


TSV_MENTIONS = 'C0011849\tdiabetes\n"D006333"\t"became ""flat"""\n22298006||heart failure\nC0011849|D001819\tblue tongue\n-1\tunknown\n'
TSV_DICTIONARY = 'C0011849\tDiabetes Mellitus\nC0011849\tdiabetes\nD006333\t"became ""flat"""\n22298006\tHeart failure\nD001819\tBluetongue\n'


def test_tsv_mentions_and_dictionary_with_csv_quoting_and_bare_ids(tmp_path: Path) -> None:
    from bali.evaluate.dictionary import load_dictionary
    from bali.evaluate.mentions import read_tsv_mentions

    mentions_file, dict_file = tmp_path / "m.tsv", tmp_path / "d.tsv"
    mentions_file.write_text(TSV_MENTIONS)
    dict_file.write_text(TSV_DICTIONARY)
    mentions = read_tsv_mentions(mentions_file)
    assert [m.text for m in mentions] == [
        "diabetes",
        'became "flat"',
        "heart failure",
        "blue tongue",
        "unknown",
    ]
    assert mentions[0].gold == (("C0011849",),)  # a CUI without prefix is kept as it is
    assert mentions[3].gold == (("C0011849",), ("MESH:D001819",)) and mentions[4].gold == ()
    d = load_dictionary(dict_file, "tsv")
    assert d.num_concepts == 4 and d.num_names == 5 and 'became "flat"' in d.strings
    assert all(d.has_id(g) for m in mentions for g in m.gold_ids)  # the same normalisation on both sides
    bad = tmp_path / "bad.tsv"
    bad.write_text("C0011849\tdiabetes\nC0011849 diabetes\n")
    with pytest.raises(BadInputError, match=r"bad\.tsv:2.*ID<TAB>mention"):
        read_tsv_mentions(bad)
    with pytest.raises(BadInputError, match=r"bad\.tsv:2.*ID<TAB>name"):
        load_dictionary(bad, "tsv")


def test_several_mention_sets_share_one_encoding_and_one_table(
    exact_match_encoder: None,
    medic_file: Path,
    pubtator_file: Path,
    biosyn_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bali.evaluate.linking import MentionSet

    calls: list[int] = []
    real = linking.dictionary_embeddings
    monkeypatch.setattr(linking, "dictionary_embeddings", lambda *a, **k: calls.append(1) or real(*a, **k))
    sets = [
        MentionSet(pubtator_file, "pubtator", ("Disease",)),
        MentionSet(biosyn_file, "biosyn", ("Disease",)),
    ]
    out = tmp_path / "el"
    together = evaluate_linking(["m1", "m2"], medic_file, sets, ["mean"], out)
    assert len(calls) == 4  # names and mention strings once per model, not per model x set
    names = [m["name"] for m in together["mention_sets"]]
    assert names == ["test.PubTator.txt", "test.concept"]
    for name, source, fmt in zip(names, (pubtator_file, biosyn_file), ("pubtator", "biosyn"), strict=True):
        alone = evaluate_linking(
            ["m1", "m2"], medic_file, source, ["mean"], mention_format=fmt, entity_types=["Disease"]
        )
        strip = ("mentions", "acc@1", "acc@5", "mrr", "model", "subset")
        assert [{k: r[k] for k in strip} for r in together["rows"] if r["benchmark"] == name] == [
            {k: r[k] for k in strip} for r in alone["rows"]
        ]
    assert {c["benchmark"] for c in together["paired"]} == set(names)
    report = (out / "report.md").read_text()
    assert "**Mentions test.PubTator.txt.**" in report and "**Mentions test.concept.**" in report


def test_cli_several_mention_sets_with_their_formats(
    exact_match_encoder: None, medic_file: Path, pubtator_file: Path, tmp_path: Path
) -> None:
    from bali.cli import main

    tsv = tmp_path / "m.tsv"
    tsv.write_text("D006333\tHeart Failure\nD003920||diabetes\n")
    out = tmp_path / "el"
    args = ["eval", "linking", "--model", "m", "--dictionary", str(medic_file), "--out", str(out)]
    sets = ["--mentions", str(pubtator_file), "--mentions", str(tsv)]
    formats = ["--format", "pubtator", "--format", "tsv", "--entity-type", "Disease", "--entity-type", ""]
    assert main([*args, *sets, *formats, "--composites", "all", "--device", "cpu"]) == 0
    result = json.loads((out / "results.json").read_text())
    assert [(m["format"], m["entity_types"], m["scored"]) for m in result["mention_sets"]] == [
        ("pubtator", ["Disease"], 4),
        ("tsv", [], 2),
    ]
    assert result["settings"]["composites"] == "all" and result["settings"]["device_used"] == "cpu"
    assert "composites: all" in (out / "report.md").read_text()
    bad = [
        *args[:-1],
        str(tmp_path / "x"),
        *sets,
        "--format",
        "pubtator",
        "--format",
        "tsv",
        "--format",
        "biosyn",
    ]
    assert main(bad) == 2  # three formats for two mention sets


def test_cli_and_config_offer_exactly_the_formats_the_readers_accept() -> None:
    """The CLI spells the format lists out (importing the readers would slow every `bali` start)."""
    import typing

    from bali.cli import build_parser
    from bali.evaluate.config import EvalConfig
    from bali.evaluate.dictionary import DICTIONARY_FORMATS
    from bali.evaluate.linking import FORMATS

    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]  # type: ignore[union-attr]
    linking = eval_parser._subparsers._group_actions[0].choices["linking"]  # type: ignore[union-attr]
    choices = {a.dest: tuple(a.choices) for a in linking._actions if a.choices}
    assert choices["format"] == FORMATS
    assert choices["dictionary_format"] == DICTIONARY_FORMATS
    assert typing.get_args(EvalConfig.model_fields["linking_format"].annotation) == FORMATS


def test_cli_splits_rows_into_mentions_seen_and_unseen_in_a_training_corpus(
    exact_match_encoder: None, medic_file: Path, pubtator_file: Path, tmp_path: Path
) -> None:
    from bali.cli import main
    from bali.evaluate.seen import SEEN, UNSEEN, UNSEEN_TAUGHT, UNSEEN_UNTAUGHT

    train = tmp_path / "train.PubTator.txt"  # "heart-failure" normalises to the test's "Heart failure"
    train.write_text("9|t|Heart-failure.\n9|a|x\n9\t0\t13\theart-failure\tDisease\tD006333\n\n")
    out = tmp_path / "el"
    args = ["eval", "linking", "--model", "m", "--dictionary", str(medic_file), "--out", str(out)]
    assert main([*args, "--mentions", str(pubtator_file), "--train-mentions", str(train)]) == 0
    rows = {r["subset"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows[SEEN]["mentions"] == 1  # "Heart failure"; "HF", "diabetes" and the composite are unseen
    assert rows[SEEN]["mentions"] + rows[UNSEEN]["mentions"] == rows["all"]["mentions"]
    # "HF" is a new string of the training concept D006333; the composite "heart failure and
    # diabetes" is not taught, one of its parts (D003920) never being a training concept.
    assert rows[UNSEEN_TAUGHT]["mentions"] == 1
    assert rows[UNSEEN_TAUGHT]["mentions"] + rows[UNSEEN_UNTAUGHT]["mentions"] == rows[UNSEEN]["mentions"]


def test_trained_models_are_labelled_by_their_run_not_by_final(tmp_path: Path) -> None:
    from bali.evaluate.linking import _model_label

    folders = ("anchor-s29/final", "anchor-s30/final", "my-encoder", "again/my-encoder")
    for folder in folders:
        (tmp_path / folder).mkdir(parents=True)
    used: set[str] = set()
    labels = [_model_label(str(tmp_path / folder), used) for folder in folders]
    assert labels == ["anchor-s29", "anchor-s30", "my-encoder", "my-encoder-2"]
    assert _model_label("builtin", used) == "builtin"  # not a folder: the name as given


def test_cli_splits_rows_by_whether_the_training_kg_has_the_gold_concept(
    exact_match_encoder: None, medic_file: Path, pubtator_file: Path, tiny_kg: Path, tmp_path: Path
) -> None:
    from bali.cli import main
    from bali.evaluate.seen import IN_KG, NOT_IN_KG

    out = tmp_path / "el"
    args = ["eval", "linking", "--model", "m", "--dictionary", str(medic_file), "--out", str(out)]
    assert main([*args, "--mentions", str(pubtator_file), "--train-kg", str(tiny_kg)]) == 0
    rows = {r["subset"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    # The KG carries D003920 (diabetes, one of its mention's two gold alternatives) and D012640; the
    # composite "heart failure and diabetes" needs a node for both parts, and D006333 has none.
    assert rows[IN_KG]["mentions"] == 1 and rows[IN_KG]["acc@1"] == 1.0
    assert rows[IN_KG]["mentions"] + rows[NOT_IN_KG]["mentions"] == rows["all"]["mentions"] == 5
