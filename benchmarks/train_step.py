"""Seconds per training step: the full BALI step against an MLM-only step on the same batches.

Synthetic but shaped like real data: 16 sentences of 128 tokens, 2-4 entities per sentence whose
mentions span 1-4 word pieces, k=3 neighbours per entity drawn from a fixed graph, concepts drawn
from a Zipf-like popularity (so frequent concepts recur within a batch, as in PubMed), 1-4 synonyms
per concept with word-piece lengths like UMLS names (mostly 2-8 pieces), one random synonym per node,
deduplicated into the name matrix exactly as the collator does. Both steps run forward, backward and
an AdamW step over the same model; the MLM-only step skips the names, the graph encoder and the
alignment loss.

    .venv/bin/python benchmarks/train_step.py --steps 12 --warmup 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch

from bali.data.batch import BaliBatch
from bali.lm import load_tokenizer
from bali.model.bali import BaliModel
from bali.model.config import ModelConfig
from bali.train.config import TrainConfig
from bali.train.trainer import build_optimizer


class SyntheticWorld:
    """A concept graph with synonyms, from which realistic batches are drawn."""

    def __init__(
        self, rng: np.random.Generator, vocab_low: int, vocab_high: int, concepts: int = 5000
    ) -> None:
        self.rng = rng
        self.vocab = (vocab_low, vocab_high)
        self.concepts = concepts
        popularity = 1.0 / np.arange(1, concepts + 1) ** 0.8
        self.popularity = popularity / popularity.sum()
        self.neighbours = [
            rng.choice(concepts, size=rng.integers(1, 12), replace=False) for _ in range(concepts)
        ]
        self.synonyms = [[self._name() for _ in range(rng.integers(1, 5))] for _ in range(concepts)]

    def _name(self) -> tuple[int, ...]:
        pieces = int(np.clip(self.rng.poisson(3.5) + 1, 1, 30))
        return tuple(int(t) for t in self.rng.integers(*self.vocab, size=pieces))

    def batch(
        self,
        sentences: int,
        length: int,
        k: int,
        mlm_probability: float,
        cls: int,
        sep: int,
        mask: int,
        pad: int,
    ) -> BaliBatch:
        """One collated batch: masked sentences, their entities' graph and the deduplicated names."""
        input_ids = torch.from_numpy(self.rng.integers(*self.vocab, size=(sentences, length)))
        input_ids[:, 0], input_ids[:, -1] = cls, sep
        positions, entity_index, node_ids = self._mentions(sentences, length)
        labels = self._mask_tokens(input_ids, mlm_probability, mask)
        rows: dict[tuple[int, ...], int] = {}
        graph_nodes, sources, targets, neighbour_ids = self._graph(node_ids, k, rows)
        names = self._name_matrix(rows, cls, sep, pad)
        return BaliBatch(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            mlm_labels=labels,
            mention_token_index=torch.tensor([positions, entity_index], dtype=torch.long),
            entity_node_ids=torch.tensor(node_ids, dtype=torch.long),
            name_input_ids=names,
            name_attention_mask=(names != pad).long(),
            graph_node_names=torch.tensor(graph_nodes, dtype=torch.long),
            graph_edge_index=torch.tensor([sources, targets], dtype=torch.long),
            graph_edge_relations=torch.zeros(len(sources), dtype=torch.long),
            neighbour_node_ids=torch.tensor(neighbour_ids, dtype=torch.long),
        )

    def _mentions(self, sentences: int, length: int) -> tuple[list[int], list[int], list[int]]:
        """2-4 popular concepts per sentence, 1-4 tokens each: flat token positions, entity, concept."""
        rng = self.rng
        positions, entity_index, node_ids = [], [], []
        for b in range(sentences):
            chosen = rng.choice(self.concepts, size=rng.integers(2, 5), replace=False, p=self.popularity)
            start = 1
            for concept in chosen:
                span = int(rng.integers(1, 5))
                start += int(rng.integers(1, 20))
                for t in range(start, min(start + span, length - 1)):
                    positions.append(b * length + t)
                    entity_index.append(len(node_ids))
                start += span
                node_ids.append(int(concept))
        return positions, entity_index, node_ids

    def _mask_tokens(self, input_ids: torch.Tensor, mlm_probability: float, mask: int) -> torch.Tensor:
        """MLM labels of a random token selection (CLS/SEP spared), masked in ``input_ids`` in place."""
        labels = torch.full_like(input_ids, -100)
        selected = torch.from_numpy(self.rng.random(tuple(input_ids.shape)) < mlm_probability)
        selected[:, 0] = selected[:, -1] = False
        labels[selected] = input_ids[selected]
        input_ids[selected] = mask
        return labels

    def _name_row(self, concept: int, rows: dict[tuple[int, ...], int]) -> int:
        """Row in the batch's name matrix of a random synonym of ``concept`` (added to ``rows`` if new)."""
        options = self.synonyms[concept]
        name = options[int(self.rng.integers(len(options)))]
        return rows.setdefault(name, len(rows))

    def _graph(
        self, node_ids: list[int], k: int, rows: dict[tuple[int, ...], int]
    ) -> tuple[list[int], list[int], list[int], list[int]]:
        """Name rows of the entity nodes, then of up to k sampled neighbours each, and the edges."""
        graph_nodes = [self._name_row(c, rows) for c in node_ids]
        sources, targets, neighbour_ids = [], [], []
        for target, concept in enumerate(node_ids):
            adjacent = self.neighbours[concept]
            for nb in self.rng.choice(adjacent, size=min(k, len(adjacent)), replace=False):
                sources.append(len(graph_nodes))
                targets.append(target)
                graph_nodes.append(self._name_row(int(nb), rows))
                neighbour_ids.append(int(nb))
        return graph_nodes, sources, targets, neighbour_ids

    @staticmethod
    def _name_matrix(rows: dict[tuple[int, ...], int], cls: int, sep: int, pad: int) -> torch.Tensor:
        """The distinct names as ``[CLS] name [SEP]`` rows, right-padded to the longest."""
        longest = max(len(name) for name in rows) + 2
        names = torch.full((len(rows), longest), pad, dtype=torch.long)
        for name, row in rows.items():
            names[row, : len(name) + 2] = torch.tensor([cls, *name, sep])
        return names


def _parse_args() -> argparse.Namespace:
    """The command line: model, batch shape, graph encoder, step counts, threads, seed, device."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--neighbours", type=int, default=3)
    parser.add_argument("--graph-encoder", default="gat", choices=["gat", "sage"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (times include a device synchronise)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast, as training uses on GPUs")
    return parser.parse_args()


def _batches(args: argparse.Namespace, tokenizer: Any, device: torch.device) -> list[BaliBatch]:
    """The warm-up and timed batches, drawn from one seeded synthetic world, on ``device``."""
    world = SyntheticWorld(np.random.default_rng(args.seed), 1000, len(tokenizer))
    batches = [
        world.batch(
            args.batch_size,
            args.length,
            args.neighbours,
            0.15,
            tokenizer.cls_token_id,
            tokenizer.sep_token_id,
            tokenizer.mask_token_id,
            tokenizer.pad_token_id,
        )
        for _ in range(args.steps + args.warmup)
    ]
    return [batch.to(device) for batch in batches]


def _time_steps(
    model: BaliModel,
    optimizer: torch.optim.Optimizer,
    batches: list[BaliBatch],
    device: torch.device,
    bf16: bool,
    warmup: int,
) -> tuple[list[float], list[float]]:
    """Seconds of each post-warm-up BALI step and MLM-only step, both run on every batch."""

    def step(batch: BaliBatch, full: bool) -> None:
        """One optimiser step: the full BALI loss, or only the MLM loss when not ``full``."""
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(batch)["loss"] if full else model.mlm_forward(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    # Interleave the two so that thermal or background drift hits both alike.
    bali_times: list[float] = []
    mlm_times: list[float] = []
    for i, batch in enumerate(batches):
        for full, times in ((False, mlm_times), (True, bali_times)):
            start = time.perf_counter()
            step(batch, full)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return bali_times, mlm_times


def _batch_shapes(batches: list[BaliBatch]) -> dict[str, float]:
    """Mean entities, graph nodes, distinct names, name tokens and padded name width per batch."""
    return {
        "entities_per_batch": statistics.mean(b.num_entities for b in batches),
        "graph_nodes_per_batch": statistics.mean(int(b.graph_node_names.numel()) for b in batches),
        "distinct_names_per_batch": statistics.mean(int(b.name_input_ids.shape[0]) for b in batches),
        "name_tokens_per_batch": statistics.mean(int(b.name_attention_mask.sum()) for b in batches),
        "padded_name_width": statistics.mean(int(b.name_input_ids.shape[1]) for b in batches),
    }


def _result(
    args: argparse.Namespace,
    device: torch.device,
    batches: list[BaliBatch],
    bali_times: list[float],
    mlm_times: list[float],
) -> dict[str, Any]:
    """The report: settings, median step seconds and their ratio, mean batch shapes, GPU figures."""
    bali, mlm = statistics.median(bali_times), statistics.median(mlm_times)
    result = {
        "model": args.model,
        "device": args.device,
        "bf16": args.bf16,
        "graph_encoder": args.graph_encoder,
        "batch_size": args.batch_size,
        "length": args.length,
        "neighbours": args.neighbours,
        "threads": torch.get_num_threads(),
        "steps_timed": len(bali_times),
        "bali_step_s": round(bali, 4),
        "mlm_step_s": round(mlm, 4),
        "ratio": round(bali / mlm, 3),
        **{k: round(v, 1) for k, v in _batch_shapes(batches).items()},
    }
    if device.type == "cuda":
        result["sentences_per_s"] = round(args.batch_size / bali, 1)
        result["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def main() -> None:
    """Time both steps on the same synthetic batches and print the report as JSON."""
    args = _parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.model)
    device = torch.device(args.device)
    batches = _batches(args, tokenizer, device)
    model = BaliModel(ModelConfig(name=args.model, graph_encoder=args.graph_encoder)).to(device)
    model.train()
    optimizer = build_optimizer(model, TrainConfig())  # the trainer's optimizer, default settings
    bali_times, mlm_times = _time_steps(model, optimizer, batches, device, args.bf16, args.warmup)
    print(json.dumps(_result(args, device, batches, bali_times, mlm_times), indent=2))


if __name__ == "__main__":
    main()
