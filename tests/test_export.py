"""`bali export`: the LM round-trips through AutoModel/AutoTokenizer; graph encoder and card beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from bali.cli import main
from bali.config import dump_config, load_config
from bali.errors import BadInputError
from bali.export import export_run
from bali.lm import load_tokenizer
from bali.model.bali import BaliModel


def _fake_run(run: Path, model_dir: str, *overrides: str) -> BaliModel:
    """A run directory as `bali train` leaves it, with one checkpoint of a perturbed tiny model."""
    config = load_config(None, [f"model.name={model_dir}", "model.gnn_layers=2", *overrides])
    torch.manual_seed(0)
    model = BaliModel(config.model)
    with torch.no_grad():
        model.lm.embeddings.word_embeddings.weight.add_(1.0)  # "trained": differs from the base model
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(config))
    model.lm.config.save_pretrained(run / "base")
    load_tokenizer(model_dir).save_pretrained(run / "base")
    (run / "data_manifest.json").write_text(json.dumps({"counts": {"sentences_kept": 32}}))
    (run / "results.json").write_text(json.dumps({"linking": {"acc@1": 0.5}}))
    checkpoint = run / "checkpoints" / "step-3"
    checkpoint.mkdir(parents=True)
    save_file(
        {k: v.clone().contiguous() for k, v in model.state_dict().items()},
        str(checkpoint / "model.safetensors"),
    )
    (checkpoint / "trainer_state.json").write_text(json.dumps({"step": 3, "epoch": 0, "batches_in_epoch": 3}))
    (checkpoint / "COMPLETE").write_text("ok\n")
    return model


def test_export_round_trips_through_automodel(tmp_path: Path, tiny_bert_dir: str, no_network: None) -> None:
    model = _fake_run(tmp_path / "run", tiny_bert_dir)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "hf")]) == 0
    out = tmp_path / "hf"
    loaded = AutoModel.from_pretrained(out, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert (out / "model.safetensors").is_file()
    for key, value in model.lm.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    ids = tokenizer("aspirin relieves headache", return_tensors="pt")
    with torch.no_grad():
        model.lm.eval()
        assert torch.allclose(loaded(**ids).last_hidden_state, model.lm(**ids).last_hidden_state, atol=1e-5)
    graph = load_file(str(out / "graph_encoder.safetensors"))
    assert torch.equal(graph["head.0.weight"], model.graph_encoder.head[0].weight)
    config = json.loads((out / "graph_encoder_config.json").read_text())
    assert config["kind"] == "gat" and config["num_layers"] == 2 and config["width"] == 32
    card = (out / "README.md").read_text()
    assert (
        tiny_bert_dir in card
        and "optimiser steps: 3" in card
        and "acc@1" in card
        and "sentences_kept" in card
    )


def test_export_needs_a_run_with_a_complete_checkpoint(tmp_path: Path, tiny_bert_dir: str) -> None:
    with pytest.raises(BadInputError, match="not a `bali train` run"):
        export_run(tmp_path, tmp_path / "out")
    _fake_run(tmp_path / "run", tiny_bert_dir)
    (tmp_path / "run" / "checkpoints" / "step-3" / "COMPLETE").unlink()
    with pytest.raises(BadInputError, match="no complete checkpoint"):
        export_run(tmp_path / "run", tmp_path / "out")


def test_checkpoint_mlm_head_exports_as_a_masked_lm_and_as_an_encoder(
    tmp_path: Path, tiny_mlm_bert_dir: str, no_network: None
) -> None:
    """`model.mlm_head: checkpoint` (PubMedBERT's own head): the export loads with AutoModel (pooler
    included) and with AutoModelForMaskedLM, whose head holds the trained, untied head weights."""
    model = _fake_run(tmp_path / "run", tiny_mlm_bert_dir, "model.mlm_head=checkpoint")
    with torch.no_grad():
        model.mlm_head.predictions.decoder.weight.mul_(3.0)  # "trained" apart from the embeddings
    checkpoint = tmp_path / "run" / "checkpoints" / "step-3" / "model.safetensors"
    save_file({k: v.clone().contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    out = export_run(tmp_path / "run", tmp_path / "hf")
    encoder = AutoModel.from_pretrained(out, local_files_only=True)
    for key, value in model.lm.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key
    assert "pooler.dense.weight" in encoder.state_dict()
    masked = AutoModelForMaskedLM.from_pretrained(out, local_files_only=True)
    decoder = masked.cls.predictions.decoder.weight
    assert torch.equal(decoder, model.mlm_head.predictions.decoder.weight)
    assert not torch.equal(decoder, masked.bert.embeddings.word_embeddings.weight)
    ids = AutoTokenizer.from_pretrained(out, local_files_only=True)("aspirin", return_tensors="pt")
    model.eval()
    with torch.no_grad():
        expected = model.mlm_head(model.lm(**ids).last_hidden_state)
        assert torch.allclose(masked(**ids).logits, expected, atol=1e-5)


def test_export_of_gathered_weights_needs_no_checkpoint_weights(tmp_path: Path, tiny_bert_dir: str) -> None:
    """A DeepSpeed checkpoint holds no model.safetensors; the trainer exports the weights Accelerate
    gathered instead, and a later `bali export` names what it needs."""
    model = _fake_run(tmp_path / "run", tiny_bert_dir)
    checkpoint = tmp_path / "run" / "checkpoints" / "step-3"
    (checkpoint / "model.safetensors").unlink()
    (checkpoint / "pytorch_model").mkdir()  # DeepSpeed's layout
    out = export_run(tmp_path / "run", tmp_path / "hf", weights=model.state_dict())
    loaded = AutoModel.from_pretrained(out, local_files_only=True)
    assert torch.equal(loaded.embeddings.word_embeddings.weight, model.lm.embeddings.word_embeddings.weight)
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        with pytest.raises(BadInputError, match="pip install deepspeed"):
            export_run(tmp_path / "run", tmp_path / "hf2")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_sentence_transformers_loads_the_export_with_the_evaluation_embeddings(
    tmp_path: Path, tiny_bert_dir: str, no_network: None, pooling: str
) -> None:
    """`SentenceTransformer(export).encode(names)` is what bali's linking evaluation embeds: the
    export's modules.json carries the evaluation's pooling, normalisation and name length."""
    from sentence_transformers import SentenceTransformer

    from bali.evaluate.encode import encode_texts
    from bali.lm import load_encoder

    _fake_run(tmp_path / "run", tiny_bert_dir, f"eval.pooling=[{pooling}]")
    out = export_run(tmp_path / "run", tmp_path / "hf")
    names = ["myocardial infarction", "heart attack", "seizure", "a much longer name " * 8]
    st = SentenceTransformer(str(out), device="cpu", local_files_only=True).encode(names)
    ours = encode_texts(load_encoder(str(out)), load_tokenizer(str(out)), names, [pooling])[pooling]
    assert st.shape == ours.shape
    assert abs(st - ours).max() < 1e-5
    card = (out / "README.md").read_text()
    assert "SentenceTransformer(" in card and f"{pooling} pooling" in card
