"""Settings of the BALI model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# What ``BaliModel.forward`` returns: the total loss and its parts (the trainer and report log them).
LOSS_KEYS = ("loss", "mlm_loss", "align_loss", "name_align_loss", "anchor_loss", "sentence_anchor_loss")
# What each validation adds (bali.model.geometry): alignment and uniformity of the embeddings.
GEOMETRY_KEYS = ("align_text_graph", "uniform_text", "uniform_graph", "uniform_names")


class ModelConfig(BaseModel):
    """LM, graph encoder and losses; defaults follow the published PubMedBERT + GAT command."""

    model_config = ConfigDict(extra="forbid")

    name: str = "builtin"
    graph_encoder: Literal["gat", "sage", "linear"] = "gat"
    loss: Literal["infonce", "ms"] = "infonce"
    temperature: float = Field(default=0.07, gt=0.0)
    alignment_weight: float = Field(default=1.0, ge=0.0)
    # The reference sums MLM and alignment 1:1. An LM that ships without an MLM head starts from a
    # random head whose early gradients only disturb the encoder; a smaller weight limits that.
    mlm_weight: float = Field(default=1.0, ge=0.0)
    # The reference's optional T-TCL task (`--textual_contrastive_task`, off in the published command):
    # InfoNCE between mention embeddings and the LM encodings of the target concepts' own names,
    # before the graph encoder. It trains the name space that zero-shot linking searches directly.
    name_alignment_weight: float = Field(default=0.0, ge=0.0)
    # Anchor to the base encoder (not in the reference): the mean cosine distance between each of
    # the batch's name encodings and the same name encoded by a frozen copy of the starting LM.
    # The alignment only reaches the concepts a batch mentions; the names of all other concepts,
    # which zero-shot linking searches too, drift with the shared layers (benchmarks/budget.md).
    # The batch's names include sampled neighbours the corpus may never mention, so the term holds
    # the name space where the alignment does not look. Costs one gradient-free pass of the names
    # per step and a second copy of the LM in memory and in checkpoints (export leaves it out).
    anchor_weight: float = Field(default=0.0, ge=0.0)
    # The same anchor for the training sentences: the mean cosine distance between each (masked)
    # sentence's mean-pooled last-layer state and the frozen base's. The name anchor holds the name
    # space only; probes and task heads read pooled sentences, which the alignment still moves
    # through the mention tokens (ChemProt -2.0 with the name anchor, benchmarks/budget.md). It
    # pools the whole sentence, so a mention's own tokens may still move towards its concept.
    # Costs one more gradient-free pass of the sentences per step.
    sentence_anchor_weight: float = Field(default=0.0, ge=0.0)
    # What that anchor holds: the mean-pooled sentence, or every real token (the mean, over all
    # real tokens of the batch, of each token state's cosine distance from the base's state of the
    # same token). A relation probe reads the mention tokens inside the sentence, which the pooled
    # sentence lets move (ChemProt -1.4 with the sentence level, benchmarks/budget.md rule 16); the
    # token level holds them too, and so also resists the alignment's pull on the mentions.
    sentence_anchor_level: Literal["sentence", "token"] = "sentence"
    # Add the names of the sampled neighbours (parents, children, related concepts) to InfoNCE's
    # negatives (not in the reference). In-batch negatives are mostly unrelated concepts, so the
    # alignment can succeed on coarse topic features while blurring a concept with its siblings,
    # the very distinction synonym linking needs (benchmarks/demo.md).
    neighbour_negatives: bool = False
    # The reference's optional `--intermodal_alignment_network` (off in its published command): one
    # shared Linear(d, d) maps every embedding the alignment loss sees, so the LM has to agree with
    # the graph only up to a linear map, as a projection head spares a contrastive backbone. It
    # starts as the identity, so the first step's loss is the unprojected one.
    alignment_projection: bool = False
    # Which side of the alignment trains the LM: both (the reference), only the mention embeddings
    # (the names are encoded without gradients, the reference's optional `--concept_encoder_nograd`;
    # the GNN still trains), or only the names (the sentence states change through the MLM alone).
    align_through: Literal["both", "mentions", "names"] = "both"
    # Mention embedding: the paper's mean of each entity's mention-token states, or what the released
    # code computes (textkb/modeling/bi_encoder_model.py:214-215 at f9970d0): an aliased in-place
    # subtraction zeroes the first N entity-token states of the batch (N = entities, tokens in
    # row-major order) before the mean, so about a third of the entities get a zero or shrunken
    # embedding and no alignment gradient through those tokens. For reproducing the released models
    # and for ablations only.
    mention_pooling: Literal["mean", "reference"] = "mean"
    ms_alpha: float = 2.0
    ms_beta: float = 50.0
    ms_base: float = 0.5
    gnn_layers: int = Field(default=5, ge=1)
    gnn_heads: int = Field(default=2, ge=1)
    gnn_hidden: int | None = Field(default=None, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    attention_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    text_pooling_layer: int = -1
    name_pooling: Literal["mean", "cls"] = "mean"
    mlm_head: Literal["fresh", "checkpoint"] = "fresh"
    # Subtract the batch mean from the name features (before the graph encoder) and from the mention
    # embeddings (before the loss). Without it, the gradient of every row adds up on one shared
    # direction, and the LM learns to add that direction to every output: after 200 demo steps the
    # mean cosine of two unrelated HPO names rose from 0.15 to 0.70 (benchmarks/demo.md).
    center_embeddings: bool = False
    # Bias of a fresh head's vocabulary projection: zeros (the reference) or the log unigram
    # frequencies of the training sentences. With zeros, the cheapest early MLM gain is the unigram
    # prior, which the slow head cannot learn in time, so the LM learns it instead by adding one
    # shared direction to every token state; mean-pooled names then all look alike (benchmarks/demo.md).
    mlm_bias_init: Literal["zeros", "unigram"] = "zeros"
