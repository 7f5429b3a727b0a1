"""BaliModel: encoders, losses, MLM positions, embeddings, and configuration errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM

from bali.data.batch import BaliBatch
from bali.errors import BadInputError
from bali.export import _split_state
from bali.model.bali import BaliModel
from bali.model.config import LOSS_KEYS, ModelConfig
from bali.model.losses import info_nce_loss


@pytest.mark.parametrize("encoder", ["gat", "sage", "linear"])
def test_each_encoder_trains_and_its_loss_decreases(
    encoder: str,
    tiny_bert_dir: str,
    make_batch: Callable[..., BaliBatch],
    tiny_model_config: Callable[..., ModelConfig],
) -> None:
    torch.manual_seed(0)
    model = BaliModel(tiny_model_config(graph_encoder=encoder), tiny_bert_dir)
    batch = make_batch(linear=encoder == "linear")
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(6):
        out = model(batch)
        assert set(out) == set(LOSS_KEYS) and out["loss"].ndim == 0
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
    assert losses[-1] < losses[0] * 0.9
    grads_seen = [p for p in model.other_parameters() if p.grad is not None]
    assert len(grads_seen) == len(model.other_parameters())  # every non-LM parameter is trained


def test_gat_encoder_follows_the_specification(tiny_bert_dir: str) -> None:
    model = BaliModel(ModelConfig(), tiny_bert_dir)
    convs = model.graph_encoder.convs
    assert len(convs) == 5
    for conv in convs:
        assert conv.heads == 2 and conv.share_weights and conv.add_self_loops and conv.lin_edge is None
        assert conv.dropout == 0.1
    assert convs[-1].out_channels * convs[-1].heads == model.width == 32
    head = model.graph_encoder.head
    assert isinstance(head[1], torch.nn.LayerNorm) and head[1].eps == 1e-12


def test_alignment_weight_is_applied(tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]) -> None:
    batch = make_batch()
    for weight in (0.0, 2.5):
        torch.manual_seed(0)
        config = ModelConfig(gnn_layers=2, alignment_weight=weight, mlm_weight=0.5)
        out = BaliModel(config, tiny_bert_dir).eval()(batch)
        expected = 0.5 * out["mlm_loss"].item() + weight * out["align_loss"].item()
        assert out["loss"].item() == pytest.approx(expected)


def test_name_alignment_contrasts_mentions_with_target_names_before_the_gnn(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    batch = make_batch()
    torch.manual_seed(0)
    model = BaliModel(ModelConfig(gnn_layers=2, name_alignment_weight=0.5), tiny_bert_dir).eval()
    out = model(batch)
    assert out["loss"].item() == pytest.approx(
        out["mlm_loss"].item() + out["align_loss"].item() + 0.5 * out["name_align_loss"].item()
    )
    with torch.no_grad():
        _, pooled = model._encode_sentences(batch)
        text = model.text_embeddings(pooled, batch)
        names = model.encode_names(batch.name_input_ids, batch.name_attention_mask)
        targets = names[batch.graph_node_names[: batch.num_entities]]
        expected = model.alignment_loss(text, targets, batch.entity_node_ids)
    assert out["name_align_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    off = BaliModel(ModelConfig(gnn_layers=2), tiny_bert_dir).eval()(batch)
    assert off["name_align_loss"].item() == 0.0


def test_centering_makes_the_losses_blind_to_a_shift_shared_by_every_row(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    """A constant added to every LM output gets no gradient: nothing pushes the LM to learn one."""
    batch = make_batch()
    for center in (False, True):
        torch.manual_seed(0)
        config = ModelConfig(gnn_layers=2, center_embeddings=center, mlm_weight=0.0)
        model = BaliModel(config, tiny_bert_dir).eval()
        shift = torch.zeros(model.width, requires_grad=True)
        model.lm.register_forward_hook(
            lambda _m, _i, out, shift=shift: out.__class__(last_hidden_state=out[0] + shift)
        )
        out = model(batch)
        (grad,) = torch.autograd.grad(out["loss"], shift)  # the alignment loss alone (mlm_weight 0)
        assert (grad.norm() < 1e-6) == center


def _seeded_model(tiny_bert_dir: str, **options: object) -> BaliModel:
    """A 2-layer GAT model in eval mode, seeded: models built with the same options are identical."""
    torch.manual_seed(0)
    return BaliModel(ModelConfig(gnn_layers=2, **options), tiny_bert_dir).eval()


def _move_lm(model: BaliModel) -> None:
    """Perturb the trained LM's encoder (not the anchor's frozen copy), as training steps would."""
    with torch.no_grad():
        for param in model.lm.encoder.parameters():
            param.add_(0.05 * torch.randn_like(param))


def _assert_anchor_term(model: BaliModel, out: dict[str, torch.Tensor], key: str, expected: float) -> None:
    """``out[key]`` is ``expected`` (non-trivial) and enters the loss at weight 0.5 beside the
    alignment; its gradient reaches the LM and never the frozen copy."""
    assert out[key].item() == pytest.approx(expected, rel=1e-4) and expected > 1e-3
    assert out["loss"].item() == pytest.approx(out["align_loss"].item() + 0.5 * expected, rel=1e-4)
    out["loss"].backward()
    assert all(p.grad is None for p in model.anchor_lm.parameters())
    assert model.lm.encoder.layer[0].attention.self.query.weight.grad is not None


def test_anchor_holds_the_names_to_the_frozen_base_encoder(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    """Zero at the start; after the LM moves, the mean cosine distance of every batch name from its
    base encoding; gradients reach the LM, never the frozen copy, which stays in eval mode."""
    batch = make_batch()
    model = _seeded_model(tiny_bert_dir, anchor_weight=0.5, mlm_weight=0.0)
    assert model(batch)["anchor_loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert _seeded_model(tiny_bert_dir)(batch)["anchor_loss"].item() == 0.0  # off by default
    with torch.no_grad():
        base = model.encode_names(batch.name_input_ids, batch.name_attention_mask)
        _move_lm(model)
        moved = model.encode_names(batch.name_input_ids, batch.name_attention_mask)
    expected = (1.0 - F.cosine_similarity(moved, base, dim=-1)).mean().item()
    model.train()
    assert not model.anchor_lm.training and model.lm.training
    model.eval()
    _assert_anchor_term(model, model(batch), "anchor_loss", expected)
    assert not {id(p) for p in model.anchor_lm.parameters()} & {id(p) for p in model.other_parameters()}
    exported = _split_state(model.state_dict())  # checkpoints hold the copy, exports do not
    assert set(exported["lm"]) == set(model.lm.state_dict())
    for bad in ({"graph_encoder": "linear"}, {"align_through": "mentions"}):
        with pytest.raises(BadInputError, match="anchor_weight"):
            BaliModel(ModelConfig(anchor_weight=0.1, **bad), tiny_bert_dir)


@pytest.mark.parametrize("level", ["sentence", "token"])
def test_sentence_anchor_holds_the_training_sentences_to_the_frozen_base_encoder(
    level: str, tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    """Zero at the start; after the LM moves, the mean cosine distance from the base's of every
    mean-pooled training sentence (level sentence) or of every real token's state (level token);
    it works without the name anchor and with the linear graph encoder, and gradients reach the
    LM, never the frozen copy."""
    batch = make_batch()
    batch.attention_mask[0, -4:] = 0  # a padded sentence: padding may not count at either level
    options = {"sentence_anchor_weight": 0.5, "sentence_anchor_level": level, "mlm_weight": 0.0}
    model = _seeded_model(tiny_bert_dir, **options)
    out = model(batch)
    assert out["sentence_anchor_loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["anchor_loss"].item() == 0.0  # the name anchor stays off
    assert _seeded_model(tiny_bert_dir)(batch)["sentence_anchor_loss"].item() == 0.0  # off by default
    _move_lm(model)
    with torch.no_grad():
        moved = model.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        base = model.anchor_lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    if level == "token":  # every real token counts once, padding never
        real = batch.attention_mask.bool()
        distances = 1.0 - F.cosine_similarity(moved, base.last_hidden_state, dim=-1)
        expected = distances[real].mean().item()
    else:
        mask = batch.attention_mask.unsqueeze(-1).float()
        pooled_moved, pooled_base = ((s * mask).sum(1) / mask.sum(1) for s in (moved, base.last_hidden_state))
        expected = (1.0 - F.cosine_similarity(pooled_moved, pooled_base, dim=-1)).mean().item()
    _assert_anchor_term(model, model(batch), "sentence_anchor_loss", expected)
    linear = BaliModel(ModelConfig(graph_encoder="linear", sentence_anchor_weight=0.1), tiny_bert_dir)
    assert linear.anchor_lm is not None


def test_neighbour_negatives_push_mentions_away_from_the_neighbours_names(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    batch = make_batch()
    losses = {}
    for on in (False, True):
        model = _seeded_model(tiny_bert_dir, neighbour_negatives=on)
        losses[on] = model(batch)["align_loss"].item()
    with torch.no_grad():
        _, pooled = model._encode_sentences(batch)
        text = model.text_embeddings(pooled, batch)
        graph, names, _ = model._graph_side(batch)
        n = batch.num_entities
        expected = model.alignment_loss(
            text, graph, batch.entity_node_ids, (names[n:], batch.neighbour_node_ids)
        )
    assert losses[True] == pytest.approx(expected.item(), rel=1e-5) and losses[True] > losses[False]
    for bad in ({"loss": "ms"}, {"graph_encoder": "linear"}):
        with pytest.raises(BadInputError, match="neighbour_negatives"):
            BaliModel(ModelConfig(neighbour_negatives=True, **bad), tiny_bert_dir)


def test_alignment_projection_starts_as_the_identity_and_trains(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    batch = make_batch()
    losses = {}
    for on in (False, True):
        model = _seeded_model(tiny_bert_dir, neighbour_negatives=True, alignment_projection=on)
        out = model(batch)
        losses[on] = out["align_loss"].item()
    assert losses[True] == pytest.approx(losses[False], rel=1e-6)
    out["loss"].backward()
    projection = model.alignment_projection
    assert projection.weight.grad.abs().sum() > 0
    # It trains at the non-LM learning rate and is saved with the model's state.
    assert {id(p) for p in projection.parameters()} <= {id(p) for p in model.other_parameters()}
    assert "alignment_projection.weight" in model.state_dict()
    with torch.no_grad():
        projection.weight[1:] = 0.0  # a map that drops all but one direction changes the loss
    assert model(batch)["align_loss"].item() != pytest.approx(losses[False], rel=1e-3)


@pytest.mark.parametrize("through", ["both", "mentions", "names"])
def test_align_through_chooses_which_side_of_the_alignment_trains_the_lm(
    through: str, tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    batch = make_batch()
    model = _seeded_model(tiny_bert_dir, align_through=through, mlm_weight=0.0)
    seen: dict[str, torch.Tensor] = {}
    encode_sentences, encode_names = model._encode_sentences, model.encode_names

    def spy_sentences(b: BaliBatch) -> tuple[torch.Tensor, torch.Tensor]:
        last, pooled = encode_sentences(b)
        pooled.retain_grad()
        seen["sentences"] = pooled
        return last, pooled

    def spy_names(*args: torch.Tensor) -> torch.Tensor:
        seen["names"] = encode_names(*args)
        return seen["names"]

    model._encode_sentences, model.encode_names = spy_sentences, spy_names
    model(batch)["loss"].backward()
    # Zeros, not None, when detached: the MLM term (weight 0) still reads the sentence states.
    assert (seen["sentences"].grad.abs().sum() > 0) == (through != "names")
    assert seen["names"].requires_grad == (through != "mentions")
    lm_grads = [p.grad for p in model.lm_parameters() if p.grad is not None]
    assert lm_grads and any(g.abs().sum() > 0 for g in lm_grads)  # either side alone trains the LM
    assert all(p.grad is not None for p in model.graph_encoder.parameters())  # the GNN always trains


def test_name_alignment_needs_a_gnn(tiny_bert_dir: str) -> None:
    with pytest.raises(BadInputError, match="name_alignment_weight"):
        BaliModel(ModelConfig(graph_encoder="linear", name_alignment_weight=1.0), tiny_bert_dir)


def test_only_masked_positions_enter_the_mlm_loss(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    model = BaliModel(ModelConfig(gnn_layers=2), tiny_bert_dir).eval()
    batch = make_batch()
    seen: list[int] = []
    model.mlm_head.decoder.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[0]))
    loss = model.mlm_forward(batch)
    selected = batch.mlm_labels != -100
    assert seen == [int(selected.sum())]  # the vocabulary projection saw masked rows only
    last = model.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    full_logits = model.mlm_head(last)
    assert loss.item() == pytest.approx(
        F.cross_entropy(full_logits[selected], batch.mlm_labels[selected]).item(), rel=1e-5
    )
    # Changing an unselected position's label value (still -100 semantics elsewhere) changes nothing.
    other = batch.mlm_labels.clone()
    other[~selected] = -100
    assert torch.equal(other, batch.mlm_labels)
    assert model(batch)["mlm_loss"].item() == pytest.approx(loss.item(), rel=1e-6)


def test_embed_returns_text_and_graph_embeddings(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    model = BaliModel(ModelConfig(gnn_layers=2), tiny_bert_dir).eval()
    batch = make_batch()
    with torch.no_grad():
        e, g, ids = model.embed(batch)
    n = batch.num_entities
    assert e.shape == g.shape == (n, 32) and torch.equal(ids, batch.entity_node_ids)
    # The text embedding is the mean of the entity's mention-token states.
    states = model.lm(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask
    ).last_hidden_state.reshape(-1, 32)
    positions, entities = batch.mention_token_index
    assert torch.allclose(e[0], states[positions[entities == 0]].mean(0), atol=1e-6)


def test_name_bucketing_matches_unbucketed_encoding(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    model = BaliModel(ModelConfig(gnn_layers=2), tiny_bert_dir).eval()
    batch = make_batch(concepts=9)
    with torch.no_grad():
        got = model.encode_names(batch.name_input_ids, batch.name_attention_mask)
        states = model.lm(
            input_ids=batch.name_input_ids, attention_mask=batch.name_attention_mask
        ).last_hidden_state
        mask = batch.name_attention_mask.unsqueeze(-1).float()
        expected = (states * mask).sum(1) / mask.sum(1)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"gnn_heads": 3}, "does not divide"),
        ({"gnn_heads": 2, "gnn_hidden": 33}, "does not divide"),
        ({"text_pooling_layer": 5}, "out of range"),
        ({"mlm_head": "checkpoint"}, "masked-LM head"),
    ],
)
def test_impossible_configurations_are_bad_input(tiny_bert_dir: str, overrides: dict, needle: str) -> None:
    with pytest.raises(BadInputError, match=needle):
        BaliModel(ModelConfig(**overrides), tiny_bert_dir)


def test_missing_model_is_bad_input(tmp_path) -> None:
    with pytest.raises(BadInputError):
        BaliModel(ModelConfig(), str(tmp_path / "nope"))


def test_checkpoint_mlm_head_is_loaded_and_untied(
    tiny_bert_dir: str, tmp_path, make_batch: Callable[..., BaliBatch]
) -> None:
    config = BertConfig.from_pretrained(tiny_bert_dir)
    masked_lm = BertForMaskedLM(config)
    masked_lm.save_pretrained(tmp_path)
    model = BaliModel(ModelConfig(gnn_layers=2, mlm_head="checkpoint"), str(tmp_path))
    decoder = model.mlm_head.predictions.decoder.weight
    assert torch.equal(decoder, masked_lm.cls.predictions.decoder.weight)
    assert decoder.data_ptr() != model.lm.embeddings.word_embeddings.weight.data_ptr()
    assert model(make_batch())["loss"].isfinite()


def _with_ambiguous_mention(batch: BaliBatch, grouped: bool) -> BaliBatch:
    """The batch plus one entity over entity 0's tokens but with another node (an ambiguous mention).

    ``grouped`` sets the labels the collator gives it (one label, one anchor); otherwise node ids.
    """
    n = batch.num_entities
    positions, entities = batch.mention_token_index
    extra = positions[entities == 0]
    node_ids = torch.cat([batch.entity_node_ids, torch.tensor([99])])
    batch = dataclasses.replace(
        batch,
        mention_token_index=torch.cat(
            [batch.mention_token_index, torch.stack([extra, torch.full_like(extra, n)])], 1
        ),
        entity_node_ids=node_ids,
        graph_node_names=torch.cat(
            [batch.graph_node_names[:n], batch.graph_node_names[:1], batch.graph_node_names[n:]]
        ),
        graph_edge_index=batch.graph_edge_index + torch.tensor([[1], [0]]),
    )
    if grouped:
        labels = node_ids.clone()
        labels[n] = labels[0]
        batch.entity_labels = labels
        batch.text_distinct = torch.arange(n + 1) != n
    return batch


def test_an_ambiguous_mention_is_not_its_own_negative(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    model = _seeded_model(tiny_bert_dir)
    batch = make_batch()
    with torch.no_grad():
        node_labelled = model(_with_ambiguous_mention(batch, grouped=False))["align_loss"].item()
        grouped = _with_ambiguous_mention(batch, grouped=True)
        loss = model(grouped)["align_loss"].item()
        _, pooled = model._encode_sentences(grouped)
        text, graph = model.text_embeddings(pooled, grouped), model.graph_embeddings(grouped)
        n = grouped.num_entities
        # One text row for the mention (the duplicate dropped), its two graph nodes positives of it.
        expected = info_nce_loss(
            torch.cat([text[: n - 1], graph]),
            torch.cat([grouped.entity_labels[: n - 1], grouped.entity_labels]),
        )
    assert torch.allclose(text[0], text[n - 1])
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    # With node ids as labels the identical rows are negatives at cosine 1 (exp(1/0.07) in the sum).
    assert node_labelled > loss


def _reference_mention_embeddings(states: torch.Tensor, batch: BaliBatch) -> torch.Tensor:
    """The released reference's pooling, line for line (bi_encoder_model.py:214-215 at f9970d0)."""
    n = batch.num_entities
    positions, entities = batch.mention_token_index
    distinct = torch.unique(positions)
    bert_entity_token_embs = states.reshape(-1, states.shape[-1])[distinct].clone()  # H[mask == 1]
    entity_embs = bert_entity_token_embs[:n]
    entity_embs -= bert_entity_token_embs[:n]  # the slice is a view: zeroes the first n token rows
    token_row = torch.searchsorted(distinct, positions)
    sums = torch.zeros(n, states.shape[-1]).index_add_(0, entities, bert_entity_token_embs[token_row])
    return sums / torch.bincount(entities, minlength=n).unsqueeze(-1)


def test_reference_mention_pooling_zeroes_the_rows_the_released_code_zeroes(
    tiny_bert_dir: str, make_batch: Callable[..., BaliBatch]
) -> None:
    batch = make_batch(sentences=6)
    model = _seeded_model(tiny_bert_dir, mention_pooling="reference")
    states = torch.randn((*batch.input_ids.shape, model.width), requires_grad=True)
    text = model.text_embeddings(states, batch)
    assert torch.allclose(text, _reference_mention_embeddings(states.detach(), batch), atol=1e-6)
    n = batch.num_entities
    positions, entities = batch.mention_token_index
    zeroed = set(torch.unique(positions)[:n].tolist())
    whole = [e for e in range(n) if set(positions[entities == e].tolist()) <= zeroed]
    assert whole and all(not text[e].any() for e in whole)  # some entities vanish entirely
    (grad,) = torch.autograd.grad(text.sum(), states)
    grad_rows = grad.reshape(-1, model.width).abs().sum(1)
    assert all(grad_rows[p] == 0 for p in zeroed)  # no gradient through the zeroed tokens
    assert all(grad_rows[p] > 0 for p in set(positions.tolist()) - zeroed)
    mean = _seeded_model(tiny_bert_dir).text_embeddings(states, batch)
    assert not torch.allclose(mean, text) and all(mean[e].any() for e in whole)
