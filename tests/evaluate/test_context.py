"""The in-context linking protocol: each mention pooled over its tokens in its own sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bali.errors import BadInputError
from bali.evaluate.context import IN_CONTEXT, Context, _window, encode_in_context, mention_contexts
from bali.evaluate.encode import Device, encode_texts
from bali.evaluate.mentions import Mention
from bali.lm import load_encoder, load_tokenizer

DOC = "Aspirin was given. Fever fell within a day."


def _mention(start: int, end: int, doc: str = "1") -> Mention:
    return Mention(doc, start, end, DOC[start:end], "Disease", (("D005334",),), False, "gold", 7)


def test_contexts_are_the_mentions_sentences() -> None:
    fever = DOC.index("Fever")
    got = mention_contexts([_mention(fever, fever + 5), _mention(0, 7)], {"1": DOC}, "x.txt")
    assert got == [Context("Fever fell within a day.", 0, 5), Context("Aspirin was given.", 0, 7)]
    across = mention_contexts([_mention(DOC.index("given"), fever + 5)], {"1": DOC}, "x.txt")[0]
    assert across.sentence == DOC and across.sentence[across.start : across.end] == "given. Fever"
    with pytest.raises(BadInputError, match=r"x\.txt:7: .*no document text"):
        mention_contexts([_mention(0, 7, doc="2")], {"1": DOC}, "x.txt")


def test_long_sentences_keep_a_window_around_the_mention(tiny_bert_dir: str) -> None:
    tokenizer = load_tokenizer(tiny_bert_dir)
    sentence = " ".join(["word"] * 300) + " chronic fever " + " ".join(["word"] * 300)
    start = sentence.index("chronic")
    ids, positions = _window(tokenizer, Context(sentence, start, start + len("chronic fever")), 32)
    assert ids is not None and len(ids) == 32
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.decode([ids[i] for i in positions]) == "chronic fever"


def test_vectors_are_the_mean_of_the_mention_tokens_in_the_sentence(tiny_bert_dir: str) -> None:
    import torch

    tokenizer, model = load_tokenizer(tiny_bert_dir), load_encoder(tiny_bert_dir)
    contexts = [Context("a chronic fever today", 2, 15), Context("fever", 0, 5)]
    got = encode_in_context(model, tokenizer, contexts, 32, 4, Device("cpu"))
    with torch.inference_mode():
        hidden = model(**tokenizer(contexts[0].sentence, return_tensors="pt")).last_hidden_state[0]
    expected = torch.nn.functional.normalize(hidden[2:4].mean(0), dim=-1).numpy()  # [CLS] a |chronic fever|
    assert tokenizer.decode(tokenizer(contexts[0].sentence)["input_ids"][2:4]) == "chronic fever"
    assert np.allclose(got[0], expected, atol=1e-5)
    plain = encode_texts(model, tokenizer, ["fever"], ["mean"])["mean"][0]
    assert not np.allclose(got[1], plain, atol=1e-4)  # [CLS] and [SEP] are not pooled in context


def test_cli_adds_in_context_rows_paired_with_the_plain_ones(
    tiny_bert_dir: str, medic_file: Path, pubtator_file: Path, tmp_path: Path
) -> None:
    from bali.cli import main

    out = tmp_path / "el"
    args = ["eval", "linking", "--model", tiny_bert_dir, "--dictionary", str(medic_file)]
    assert main([*args, "--mentions", str(pubtator_file), "--in-context", "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    plain = [r for r in result["rows"] if r["protocol"] == "zero-shot" and r["subset"] == "all"]
    context = [r for r in result["rows"] if r["protocol"] == IN_CONTEXT and r["subset"] == "all"]
    assert len(context) == 1 and context[0]["mentions"] == plain[0]["mentions"] > 0
    assert result["settings"]["in_context"] is True
    tsv = tmp_path / "m.tsv"
    tsv.write_text("fever\tD005334\n")
    assert (
        main([*args, "--mentions", str(tsv), "--format", "tsv", "--in-context", "--out", str(tmp_path / "t")])
        == 2
    )
