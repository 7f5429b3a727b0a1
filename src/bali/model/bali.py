"""The BALI model: a shared LM with an MLM head, a graph encoder and a cross-modal alignment loss.

One forward pass encodes the MLM-corrupted sentences once (MLM loss and textual entity embeddings
both come from it) and the batch's distinct node names once (graph node features), then runs the
graph encoder and the alignment loss (§B-§C of the specification).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bali.errors import BadInputError, BaliError
from bali.lm import load_encoder, resolve_model
from bali.model.config import ModelConfig
from bali.model.graph_encoders import GraphEncoder, build_graph_encoder
from bali.model.losses import info_nce_loss, multi_similarity_loss
from bali.model.pooling import mean_pool

# Names are sorted by length and encoded in chunks padded to the chunk's own longest name, so a
# batch of mostly short names does not pay for its longest one. On a CPU, where padding costs its
# full share of compute, chunks of 64 keep the LM calls few; on a GPU the sequential calls cost
# more than padding (names are at most `data.name_max_length` tokens), so a batch's names go in one.
NAME_CHUNK = 64
NAME_CHUNK_GPU = 4096


class MLMHead(nn.Module):
    """BERT's prediction head: Linear -> GELU -> LayerNorm -> Linear(vocab) + bias, decoder untied."""

    def __init__(self, width: int, vocab_size: int, layer_norm_eps: float, init_std: float) -> None:
        super().__init__()
        self.transform = nn.Sequential(
            nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width, eps=layer_norm_eps)
        )
        self.decoder = nn.Linear(width, vocab_size)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=init_std)
                nn.init.zeros_(module.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))

    def set_unigram_prior(self, counts: torch.Tensor) -> None:
        """Start the vocabulary bias at the log unigram distribution (add-one smoothed) of ``counts``."""
        smoothed = counts.to(torch.float64) + 1.0
        with torch.no_grad():
            self.decoder.bias.copy_(torch.log(smoothed / smoothed.sum()).to(self.decoder.bias.dtype))


def _load_checkpoint_head(name: str) -> nn.Module:
    """The checkpoint's own MLM head (from ``AutoModelForMaskedLM``), or a clear error.

    The head is untied from the input embeddings (its decoder gets its own copy) so that it trains
    with the non-LM learning rate, as the fresh head does. The encoder is loaded separately with
    ``AutoModel``: a masked-LM class drops BERT's pooler, which downstream classifiers start from.
    """
    from transformers import AutoModelForMaskedLM

    resolved = resolve_model(name)
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(
            resolved, local_files_only=True, output_loading_info=True
        )
    except (OSError, ValueError) as exc:
        raise BadInputError(f"model.mlm_head=checkpoint: '{name}' has no masked-LM head ({exc})") from exc
    base = model.base_model
    heads = [child for child in model.children() if child is not base]
    head_prefixes = [n for n, child in model.named_children() if child is not base]
    missing = [k for k in info.get("missing_keys", []) if k.split(".")[0] in head_prefixes]
    if len(heads) != 1 or missing:
        raise BadInputError(
            f"model.mlm_head=checkpoint: '{name}' has no usable masked-LM head in its weights"
            + (f" (missing {missing[:3]})" if missing else "")
            + "; use model.mlm_head=fresh"
        )
    head = heads[0]
    lm_params = {id(p) for p in base.parameters()}
    for module in head.modules():
        for key, param in list(module._parameters.items()):
            if param is not None and id(param) in lm_params:
                module._parameters[key] = nn.Parameter(param.detach().clone())
    return head


def reference_zeroed_tokens(positions: torch.Tensor, num_entities: int) -> torch.Tensor:
    """Which (token, entity) pairs the released reference code zeroes before the mention mean.

    The reference gathers the states of the batch's distinct entity tokens in row-major order
    (``H[mask == 1]``, [T, d]) and then, through an aliased in-place subtraction, zeroes rows
    ``0..N-1`` of it (N = entities in the forward pass). Flat positions ``b * L + t`` sorted
    ascending are that order, so the zeroed tokens are the N smallest distinct positions.
    """
    distinct = torch.unique(positions)  # sorted
    return torch.isin(positions, distinct[:num_entities])


class BaliModel(nn.Module):
    """LM + MLM head + graph encoder; ``forward(batch)`` returns the BALI losses.

    ``lm_name_or_path`` overrides ``model_config.name`` (the CLI's ``--model``). Anything the config
    makes impossible (heads not dividing the width, a pooling layer the LM does not have) is a
    :class:`BadInputError` raised here, before any training.
    """

    def __init__(self, model_config: ModelConfig, lm_name_or_path: str | None = None) -> None:
        super().__init__()
        self.config = model_config
        self.lm_name = str(lm_name_or_path or model_config.name)
        self.lm = load_encoder(self.lm_name)
        if model_config.mlm_head == "checkpoint":
            self.mlm_head = _load_checkpoint_head(self.lm_name)
        lm_config = self.lm.config
        self.width = int(lm_config.hidden_size)
        if model_config.mlm_head == "fresh":
            self.mlm_head = MLMHead(
                self.width,
                int(lm_config.vocab_size),
                float(getattr(lm_config, "layer_norm_eps", 1e-12)),
                float(getattr(lm_config, "initializer_range", 0.02)),
            )
        layers = int(getattr(lm_config, "num_hidden_layers", 0))
        if not -(layers + 1) <= model_config.text_pooling_layer <= layers:
            raise BadInputError(
                f"model.text_pooling_layer={model_config.text_pooling_layer} is out of range for an LM "
                f"with {layers} layers (use -1 for the last)"
            )
        # The pooler is never used for training, but downstream classifiers start from it: keep its
        # pretrained weights for export, frozen, so DDP does not see it as an unused parameter.
        pooler = getattr(self.lm, "pooler", None)
        if isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)
        self.graph_encoder: GraphEncoder | None = build_graph_encoder(model_config, self.width)
        self.alignment_projection: nn.Linear | None = None
        if model_config.alignment_projection:
            self.alignment_projection = nn.Linear(self.width, self.width)
            nn.init.eye_(self.alignment_projection.weight)
            nn.init.zeros_(self.alignment_projection.bias)
        if self.graph_encoder is None and model_config.name_alignment_weight:
            raise BadInputError(
                "model.name_alignment_weight needs a GNN graph encoder (gat or sage): the linear graph "
                "encodes no target names on their own"
            )
        if model_config.neighbour_negatives and (
            self.graph_encoder is None or model_config.loss != "infonce"
        ):
            raise BadInputError(
                "model.neighbour_negatives needs model.loss=infonce and a GNN graph encoder (gat or "
                "sage): the neighbours' names join InfoNCE's denominators"
            )
        # The anchor's frozen copy of the starting LM: registered, so it follows the model to its
        # device and into checkpoints (a resumed run keeps the same targets), but export skips it.
        # A copy, not a second load: identical by construction, and no random draws for weights the
        # checkpoint lacks, so a seed gives the same dropout masks with the anchor on or off.
        self.anchor_lm: nn.Module | None = None
        if model_config.anchor_weight and (
            self.graph_encoder is None or model_config.align_through == "mentions"
        ):
            raise BadInputError(
                "model.anchor_weight needs a GNN graph encoder (gat or sage) and names encoded "
                "with gradients (not model.align_through=mentions): it trains the LM's names"
            )
        if model_config.anchor_weight or model_config.sentence_anchor_weight:
            self.anchor_lm = copy.deepcopy(self.lm).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> BaliModel:
        """Switch train/eval mode everywhere but in the anchor, whose targets dropout would blur."""
        super().train(mode)
        if self.anchor_lm is not None:
            self.anchor_lm.eval()
        return self

    # ----------------------------------------------------------------------------------- encoders
    def lm_parameters(self) -> list[nn.Parameter]:
        """Trainable LM parameters (learning rate ``lr_lm``); everything else uses ``lr_other``."""
        return [p for p in self.lm.parameters() if p.requires_grad]

    def other_parameters(self) -> list[nn.Parameter]:
        lm_ids = {id(p) for p in self.lm.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in lm_ids]

    def _encode_sentences(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-layer states (MLM) and the states of the text-pooling layer, both [B, L, d]."""
        layer = self.config.text_pooling_layer
        out = self.lm(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            output_hidden_states=layer != -1,
        )
        last = out.last_hidden_state
        return last, last if layer == -1 else out.hidden_states[layer]

    def encode_names(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lm: nn.Module | None = None
    ) -> torch.Tensor:
        """Pooled encodings of each distinct name row by ``lm`` (the trained LM by default), [U, d].

        ``mean`` pools over all non-pad tokens including [CLS]/[SEP] (the reference's setting).
        Names are bucketed by length (see ``NAME_CHUNK``); the result is in the input row order.
        """
        lengths = attention_mask.sum(dim=1)
        order = torch.argsort(lengths)
        pooled = []
        for chunk in torch.split(order, NAME_CHUNK if input_ids.device.type == "cpu" else NAME_CHUNK_GPU):
            width = int(lengths[chunk].max().clamp(min=1))
            ids, mask = input_ids[chunk, :width], attention_mask[chunk, :width]
            states = (self.lm if lm is None else lm)(input_ids=ids, attention_mask=mask).last_hidden_state
            if self.config.name_pooling == "cls":
                pooled.append(states[:, 0])
            else:
                pooled.append(mean_pool(states, mask))
        if not pooled:
            return input_ids.new_zeros((0, self.width), dtype=torch.float)
        out = torch.cat(pooled)
        return out[torch.argsort(order)]

    def text_embeddings(self, states: torch.Tensor, batch: Any) -> torch.Tensor:
        """Mean of each entity's mention-token states (scatter-mean over ``mention_token_index``).

        With ``mention_pooling: reference`` the released code's zeroed rows are reproduced first (see
        :func:`reference_zeroed_tokens`). With ``center_embeddings`` the batch mean is subtracted, as
        for the name features.
        """
        flat = states.reshape(-1, states.shape[-1])
        positions, entities = batch.mention_token_index[0], batch.mention_token_index[1]
        n = batch.num_entities
        token_states = flat[positions]
        if self.config.mention_pooling == "reference":
            zeroed = reference_zeroed_tokens(positions, n)
            token_states = torch.where(zeroed.unsqueeze(-1), token_states.new_zeros(()), token_states)
        sums = flat.new_zeros((n, flat.shape[-1])).index_add_(0, entities, token_states)
        counts = torch.bincount(entities, minlength=n).clamp(min=1).to(flat.dtype)
        text = sums / counts.unsqueeze(-1)
        return text - text.mean(dim=0, keepdim=True) if self.config.center_embeddings else text

    def graph_embeddings(self, batch: Any) -> torch.Tensor:
        """Graph embeddings of the N target concepts, [N, d]."""
        return self._graph_side(batch)[0]

    def _graph_side(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Graph embeddings of the N targets, the name features of every graph node (targets first)
        and the LM's encodings of the batch's distinct names as they left the LM (uncentred).

        Both name tensors are None for the linear graph, which encodes no names on their own.
        """
        if self.graph_encoder is None:
            if batch.linear_input_ids is None:
                raise BaliError(
                    "model.graph_encoder=linear needs batches with linear_input_ids "
                    "(collate with graph_format='linear')"
                )
            states = self.lm(
                input_ids=batch.linear_input_ids, attention_mask=batch.linear_attention_mask
            ).last_hidden_state
            return states[:, 0], None, None
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.align_through != "mentions"):
            encoded = self.encode_names(batch.name_input_ids, batch.name_attention_mask)
        names = encoded - encoded.mean(dim=0, keepdim=True) if self.config.center_embeddings else encoded
        features = names[batch.graph_node_names]
        graph = self.graph_encoder(features, batch.graph_edge_index, batch.num_entities)
        return graph, features, encoded

    def _anchor_loss(self, batch: Any, names: torch.Tensor | None) -> torch.Tensor:
        """Mean cosine distance of the LM's ``names`` from the frozen base LM's encodings of them
        (zero when the anchor is off)."""
        if self.anchor_lm is None or names is None or not self.config.anchor_weight:
            return batch.input_ids.new_zeros((), dtype=torch.float)
        with torch.no_grad():
            base = self.encode_names(batch.name_input_ids, batch.name_attention_mask, self.anchor_lm)
        return _cosine_distance(names, base)

    def _sentence_anchor_loss(self, batch: Any, last: torch.Tensor) -> torch.Tensor:
        """Mean cosine distance of the batch's sentences (``last``, the LM's last-layer states of the
        masked input) from the frozen base LM's, mean-pooled or token by token
        (``sentence_anchor_level``); zero when that anchor is off."""
        if self.anchor_lm is None or not self.config.sentence_anchor_weight:
            return last.new_zeros((), dtype=torch.float)
        with torch.no_grad():
            base = self.anchor_lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        mask = batch.attention_mask
        if self.config.sentence_anchor_level == "token":
            real = mask.bool()
            return _cosine_distance(last[real], base.last_hidden_state[real])
        return _cosine_distance(mean_pool(last, mask), mean_pool(base.last_hidden_state, mask))

    # ------------------------------------------------------------------------------------ losses
    def _mlm_loss(self, last: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy at MLM-selected positions only; the vocabulary projection sees nothing else."""
        selected = labels != -100
        logits = self.mlm_head(last[selected]).float()
        if logits.shape[0] == 0:
            return logits.sum() * 0.0
        return F.cross_entropy(logits, labels[selected])

    def alignment_loss(
        self,
        text: torch.Tensor,
        graph: torch.Tensor,
        labels: torch.Tensor,
        negatives: tuple[torch.Tensor, torch.Tensor] | None = None,
        text_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """InfoNCE (or MS) over cat(text, graph), each row labelled with its entity's ``labels``.

        ``text_rows`` (bool [N]) keeps one text row per distinct mention (see ``bali.data.labels``);
        ``negatives`` (embeddings, labels) only join InfoNCE's denominators (``neighbour_negatives``).
        """
        text_labels = labels if text_rows is None else labels[text_rows]
        embeddings = torch.cat([text if text_rows is None else text[text_rows], graph])
        labels = torch.cat([text_labels, labels])
        if self.config.loss == "ms":
            return multi_similarity_loss(
                embeddings, labels, self.config.ms_alpha, self.config.ms_beta, self.config.ms_base
            )
        extra, extra_labels = negatives if negatives is not None else (None, None)
        return info_nce_loss(embeddings, labels, self.config.temperature, extra, extra_labels)

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """Weighted sum of MLM, alignment, name alignment and anchors (``LOSS_KEYS``), plus each part."""
        last, pooled_states = self._encode_sentences(batch)
        mlm = self._mlm_loss(last, batch.mlm_labels)
        sentence_anchor = self._sentence_anchor_loss(batch, last)
        if batch.num_entities == 0:
            # Touch every graph-side parameter so DDP's gradient reduction sees them on every rank.
            align = sum((p.sum() * 0.0 for p in self.other_parameters()), mlm.new_zeros(()))
            name_align = anchor = mlm.new_zeros(())
        else:
            text = self.text_embeddings(pooled_states, batch)
            if self.config.align_through == "names":
                text = text.detach()
            graph, names, encoded = self._graph_side(batch)
            anchor = self._anchor_loss(batch, encoded)
            if self.alignment_projection is not None:  # once per tensor, shared by both losses
                text, graph = self.alignment_projection(text), self.alignment_projection(graph)
                names = None if names is None else self.alignment_projection(names)
            target_names = None if names is None else names[: batch.num_entities]
            negatives = (
                (names[batch.num_entities :], batch.negative_labels)
                if self.config.neighbour_negatives and names is not None
                else None
            )
            align = self.alignment_loss(text, graph, batch.labels, negatives, batch.text_distinct)
            name_align = (
                self.alignment_loss(text, target_names, batch.labels, negatives, batch.text_distinct)
                if self.config.name_alignment_weight and target_names is not None
                else mlm.new_zeros(())
            )
        weights = self.config
        loss = (
            weights.mlm_weight * mlm
            + weights.alignment_weight * align
            + weights.name_alignment_weight * name_align
            + weights.anchor_weight * anchor
            + weights.sentence_anchor_weight * sentence_anchor
        )
        return {
            "loss": loss,
            "mlm_loss": mlm.detach(),
            "align_loss": align.detach(),
            "name_align_loss": name_align.detach(),
            "anchor_loss": anchor.detach(),
            "sentence_anchor_loss": sentence_anchor.detach(),
        }

    def mlm_forward(self, batch: Any) -> torch.Tensor:
        """The MLM loss alone, on the same sentences (the baseline of the step benchmark)."""
        last = self.lm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        return self._mlm_loss(last, batch.mlm_labels)

    def embed(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Textual and graph embeddings of the batch's entities, ``(e [N, d], g [N, d], node_ids [N])``.

        Runs under the caller's grad mode and train/eval state (call ``model.eval()`` and
        ``torch.no_grad()`` for plots and probes).
        """
        _, pooled_states = self._encode_sentences(batch)
        return self.text_embeddings(pooled_states, batch), self.graph_embeddings(batch), batch.entity_node_ids


def _cosine_distance(trained: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos over the rows: what each anchor adds, in float32 whatever the autocast."""
    return (1.0 - F.cosine_similarity(trained.float(), base.float(), dim=-1)).mean()
