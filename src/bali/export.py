"""`bali export`: a run's trained LM as a standard Hugging Face directory, plus the graph encoder.

The LM is what BALI releases (a drop-in encoder for fine-tuning); the graph encoder is written next
to it in safetensors with the config needed to rebuild it, and a README model card records where
the model came from (base model, KG, corpus, steps, hyperparameters, evaluation results).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from bali.artifacts import atomic_output_dir
from bali.errors import BadInputError

GRAPH_ENCODER_WEIGHTS = "graph_encoder.safetensors"
GRAPH_ENCODER_CONFIG = "graph_encoder_config.json"


def _read_model_state(checkpoint: Path) -> dict[str, Any]:
    """The model's state dict from an Accelerate checkpoint (safetensors, or torch pickle)."""
    safe = checkpoint / "model.safetensors"
    if safe.is_file():
        from safetensors.torch import load_file

        state = load_file(str(safe))
    elif (checkpoint / "pytorch_model.bin").is_file():
        import torch

        state = torch.load(checkpoint / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise BadInputError("checkpoint holds no model weights (model.safetensors)", checkpoint)
    return {key.removeprefix("module."): value for key, value in state.items()}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _kg_summary(data_manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """Counts of the KG the dataset was built from, when its manifest is still reachable."""
    if not data_manifest:
        return None
    kg_input = (data_manifest.get("inputs") or {}).get("kg")
    if isinstance(kg_input, dict) and kg_input.get("path"):
        manifest = _read_json(Path(kg_input["path"]) / "manifest.json")
        if manifest is not None:
            return {"path": kg_input["path"], **(manifest.get("counts") or {})}
    return None


def _model_card(
    config: dict[str, Any],
    trainer_state: dict[str, Any],
    data_manifest: dict[str, Any] | None,
    results: dict[str, Any] | None,
    graph_config: dict[str, Any] | None,
) -> str:
    model, train, data = config.get("model", {}), config.get("train", {}), config.get("data", {})
    base = str(model.get("name", "?"))
    if base == "builtin":
        base += " (the embedded all-MiniLM-L6-v2, a 6-layer BERT of width 384)"
    lines = [
        "---",
        "library_name: transformers",
        "tags: [bali, biomedical, knowledge-graph, fill-mask, feature-extraction]",
        "---",
        "",
        f"# BALI: {base} aligned with a biomedical knowledge graph",
        "",
        "Continued pre-training with masked language modelling plus cross-modal alignment (InfoNCE) between "
        "mention embeddings and graph embeddings of the same concept (Sakhovskiy & Tutubalina, SIGIR 2025). "
        "This directory holds the language model (a plain encoder: load it with `AutoModel`); the graph "
        f"encoder used during training is in `{GRAPH_ENCODER_WEIGHTS}` (config `{GRAPH_ENCODER_CONFIG}`).",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        'model = AutoModel.from_pretrained("PATH")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH")',
        "```",
        "",
        "## Training",
        "",
        f"- base model: {base}",
        f"- graph encoder: {model.get('graph_encoder', '?')}"
        + (f" ({json.dumps(graph_config)})" if graph_config else " (the LM reads the linearised subgraph)"),
        f"- alignment loss: {model.get('loss', '?')} (temperature {model.get('temperature')}, "
        f"weight {model.get('alignment_weight')})",
        f"- optimiser steps: {trainer_state.get('step', '?')} (epoch {trainer_state.get('epoch', '?')})",
        f"- batch size {train.get('batch_size')} x gradient accumulation {train.get('gradient_accumulation_steps')}; "
        f"learning rates LM {train.get('lr_lm')}, other {train.get('lr_other')}; weight decay "
        f"{train.get('weight_decay')}; warm-up ratio {train.get('warmup_ratio')} (max {train.get('max_warmup_steps')}); "
        f"seed {train.get('seed')}",
        f"- data: {data.get('neighbours')} neighbours per concept, MLM probability {data.get('mlm_probability')}, "
        f"sentences up to {data.get('max_length')} tokens",
    ]
    counts = (data_manifest or {}).get("counts") or {}
    if counts:
        lines += ["", "## Training corpus", ""]
        lines += [f"- {key}: {value}" for key, value in counts.items() if not isinstance(value, dict | list)]
    kg = _kg_summary(data_manifest)
    if kg:
        lines += ["", "## Knowledge graph", ""]
        lines += [f"- {key}: {value}" for key, value in kg.items() if not isinstance(value, dict | list)]
    if results:
        lines += ["", "## Evaluation", "", "```json", json.dumps(results, indent=2, default=str), "```"]
    lines += [
        "",
        "Full configuration:",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def export_run(run_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Export the latest complete checkpoint of ``run_dir`` to ``out_dir``; returns ``out_dir``.

    Needs nothing outside the run directory: the LM's config and tokenizer were saved in
    ``run_dir/base`` when training started.
    """
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from bali.train.checkpoints import STATE_FILE, latest_complete
    from bali.train.trainer import BASE_DIR, DATA_MANIFEST

    run = Path(run_dir)
    if not (run / "config.yaml").is_file() or not (run / BASE_DIR).is_dir():
        raise BadInputError("not a `bali train` run directory (no config.yaml or base/)", run)
    checkpoint = latest_complete(run)
    if checkpoint is None:
        raise BadInputError("run has no complete checkpoint to export", run)
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    state = _read_model_state(checkpoint)
    lm_state = {k.removeprefix("lm."): v for k, v in state.items() if k.startswith("lm.")}
    graph_state = {
        k.removeprefix("graph_encoder."): v.contiguous()
        for k, v in state.items()
        if k.startswith("graph_encoder.")
    }
    lm = AutoModel.from_config(AutoConfig.from_pretrained(run / BASE_DIR, local_files_only=True))
    missing, unexpected = lm.load_state_dict(lm_state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise BadInputError(
            f"checkpoint does not match the run's LM (missing {missing[:3]}, unexpected {unexpected[:3]})",
            checkpoint,
        )
    tokenizer = AutoTokenizer.from_pretrained(run / BASE_DIR, local_files_only=True)
    graph_config = None
    if graph_state:
        model_cfg = config.get("model", {})
        graph_config = {
            "kind": model_cfg.get("graph_encoder"),
            "width": int(lm.config.hidden_size),
            "hidden": model_cfg.get("gnn_hidden") or int(lm.config.hidden_size),
            "num_layers": model_cfg.get("gnn_layers"),
            "heads": model_cfg.get("gnn_heads"),
            "dropout": model_cfg.get("dropout"),
            "attention_dropout": model_cfg.get("attention_dropout"),
            "name_pooling": model_cfg.get("name_pooling"),
        }
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        lm.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if graph_state:
            save_file(graph_state, str(tmp / GRAPH_ENCODER_WEIGHTS), metadata={"format": "pt"})
            (tmp / GRAPH_ENCODER_CONFIG).write_text(
                json.dumps(graph_config, indent=2) + "\n", encoding="utf-8"
            )
        card = _model_card(
            config,
            _read_json(checkpoint / STATE_FILE) or {},
            _read_json(run / DATA_MANIFEST),
            _read_json(run / "results.json"),
            graph_config,
        )
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return Path(out_dir)


def _handle(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    out = export_run(args.run_dir, args.out, overwrite=args.overwrite)
    return f"exported {args.run_dir} to {out}", {"run_dir": str(args.run_dir), "out": str(out)}


def register(subparsers: Any) -> None:
    """`bali export RUN_DIR --out DIR`."""
    from bali.cli import add_json_flag

    parser = subparsers.add_parser(
        "export", help="export a training run as a Hugging Face model directory (+ graph encoder)"
    )
    parser.add_argument("run_dir", help="a `bali train` run directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    add_json_flag(parser)
    parser.set_defaults(handler=_handle)
