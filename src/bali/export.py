"""`bali export`: a run's trained LM as a standard Hugging Face directory, plus the graph encoder.

The LM is what BALI releases (a drop-in encoder for fine-tuning); the graph encoder is written next
to it in safetensors with the config needed to rebuild it, and a README model card records where
the model came from (base model, KG, corpus, steps, hyperparameters, evaluation results).

Entity-representation models are loaded with sentence-transformers as often as with ``AutoModel``,
and without ``modules.json`` sentence-transformers guesses a pooling. The export therefore also
holds the sentence-transformers files that reproduce the evaluation's embeddings: the pooling the
run's evaluation used (``eval.pooling``, mean by default), L2 normalisation, and its name length.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from bali.artifacts import atomic_output_dir
from bali.errors import BadInputError
from bali.evaluate.config import NAME_MAX_LENGTH
from bali.train.checkpoints import STATE_FILE, latest_complete
from bali.train.rundir import BASE_DIR, CONFIG_FILE, DATA_MANIFEST, RESULTS

GRAPH_ENCODER_WEIGHTS = "graph_encoder.safetensors"
GRAPH_ENCODER_CONFIG = "graph_encoder_config.json"
DEEPSPEED_TAG = "pytorch_model"  # the sub-directory Accelerate's save_state gives DeepSpeed
POOLING_DIR = "1_Pooling"
# The modules sentence-transformers chains: the LM in the export's root, pooling, L2 normalisation
# (the format of the embedded base model's own sentence-transformers files).
ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": POOLING_DIR, "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def _read_model_state(checkpoint: Path) -> dict[str, Any]:
    """The model's state dict from an Accelerate checkpoint, whatever layout its backend wrote.

    DDP and single-process runs store ``model.safetensors`` (or a torch pickle); DeepSpeed stores
    its own layout (``pytorch_model/`` with ZeRO shards), read back with DeepSpeed's own
    consolidation (ZeRO-2 and ZeRO-3 alike).
    """
    safe = checkpoint / "model.safetensors"
    if safe.is_file():
        from safetensors.torch import load_file

        state = load_file(str(safe))
    elif (checkpoint / "pytorch_model.bin").is_file():
        import torch

        state = torch.load(checkpoint / "pytorch_model.bin", map_location="cpu", weights_only=True)
    elif (checkpoint / DEEPSPEED_TAG).is_dir():
        state = _read_deepspeed_state(checkpoint)
    else:
        raise BadInputError(
            "checkpoint holds no model weights (model.safetensors, pytorch_model.bin or a DeepSpeed "
            f"{DEEPSPEED_TAG}/ directory)",
            checkpoint,
        )
    return {key.removeprefix("module."): value for key, value in state.items()}


def _read_deepspeed_state(checkpoint: Path) -> dict[str, Any]:
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError as exc:
        raise BadInputError(
            "checkpoint was written by DeepSpeed; `pip install deepspeed` to export it", checkpoint
        ) from exc
    return dict(get_fp32_state_dict_from_zero_checkpoint(str(checkpoint), tag=DEEPSPEED_TAG))


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
    """The export's README.md: what the model is, how it was trained, on what, and how it scored."""
    base = str(config.get("model", {}).get("name", "?"))
    if base == "builtin":
        base += " (the embedded all-MiniLM-L6-v2, a 6-layer BERT of width 384)"
    lines = _card_intro(base, evaluation_pooling(config)) + _card_training(
        config, trainer_state, graph_config, base
    )
    lines += _card_counts("Training corpus", (data_manifest or {}).get("counts"))
    lines += _card_counts("Knowledge graph", _kg_summary(data_manifest))
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


def _card_intro(base: str, pooling: str) -> list[str]:
    """Front matter, title and how to load the directory, with transformers or sentence-transformers."""
    return [
        "---",
        "library_name: transformers",
        "tags: [bali, biomedical, knowledge-graph, fill-mask, feature-extraction, sentence-transformers]",
        "---",
        "",
        f"# BALI: {base} aligned with a biomedical knowledge graph",
        "",
        "Continued pre-training with masked language modelling plus cross-modal alignment (InfoNCE) between "
        "mention embeddings and graph embeddings of the same concept (Sakhovskiy & Tutubalina, SIGIR 2025). "
        "This directory holds the language model (a plain encoder: load it with `AutoModel`); the graph "
        f"encoder used during training is in `{GRAPH_ENCODER_WEIGHTS}` (config `{GRAPH_ENCODER_CONFIG}`).",
        "",
        "With transformers (pool the last hidden states yourself):",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        'model = AutoModel.from_pretrained("PATH")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH")',
        "```",
        "",
        f"With sentence-transformers, which reads `modules.json`: {pooling} pooling and L2 normalisation, "
        f"as the evaluation embedded names, truncated at {NAME_MAX_LENGTH} tokens like them (raise "
        "`model.max_seq_length` for sentences):",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        'model = SentenceTransformer("PATH")',
        'embeddings = model.encode(["myocardial infarction", "heart attack"])',
        "```",
    ]


def _card_training(
    config: dict[str, Any], trainer_state: dict[str, Any], graph_config: dict[str, Any] | None, base: str
) -> list[str]:
    """The "Training" section: base model, graph encoder, loss, steps and the main hyperparameters."""
    model, train, data = config.get("model", {}), config.get("train", {}), config.get("data", {})
    return [
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


def _card_counts(title: str, counts: dict[str, Any] | None) -> list[str]:
    """A section listing the scalar counts (nested ones left out); nothing without counts."""
    if not counts:
        return []
    return ["", f"## {title}", ""] + [
        f"- {key}: {value}" for key, value in counts.items() if not isinstance(value, dict | list)
    ]


def _split_state(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """BaliModel's state dict by part: ``lm``, ``mlm_head`` and ``graph_encoder`` (prefixes removed)."""
    parts: dict[str, dict[str, Any]] = {"lm": {}, "mlm_head": {}, "graph_encoder": {}}
    seen: set[tuple[str, int]] = set()
    for key, value in state.items():
        part, _, rest = key.partition(".")
        if part not in parts:
            continue
        # GATv2 shares one weight under two names: store it once, as Accelerate's checkpoints do.
        storage = (str(value.device), value.data_ptr())
        if part == "graph_encoder" and storage in seen:
            continue
        seen.add(storage)
        parts[part][rest] = value.detach().to("cpu").contiguous()
    return parts


def _encoder_files(run: Path, lm_state: dict[str, Any], source: Path) -> tuple[Any, dict[str, Any]]:
    """The LM as a plain encoder (``AutoModel``): its config and its state, checked against each other."""
    from transformers import AutoConfig, AutoModel

    lm = AutoModel.from_config(AutoConfig.from_pretrained(run / BASE_DIR, local_files_only=True))
    missing, unexpected = lm.load_state_dict(lm_state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise BadInputError(
            f"checkpoint does not match the run's LM (missing {missing[:3]}, unexpected {unexpected[:3]})",
            source,
        )
    return lm.config, lm.state_dict()


def _masked_lm_files(
    run: Path, lm_state: dict[str, Any], head_state: dict[str, Any], source: Path
) -> tuple[Any, dict[str, Any]]:
    """The LM with the checkpoint's own (trained) MLM head, loadable by ``AutoModel`` and
    ``AutoModelForMaskedLM`` alike: ``PREFIX.*`` encoder weights (pooler included, which the
    masked-LM class ignores) next to the head's, untied from the embeddings as it was trained."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    config = AutoConfig.from_pretrained(run / BASE_DIR, local_files_only=True)
    config.tie_word_embeddings = False
    mlm = AutoModelForMaskedLM.from_config(config)
    base = mlm.base_model
    heads = [name for name, child in mlm.named_children() if child is not base]
    prefix = mlm.base_model_prefix
    state = {f"{prefix}.{k}": v for k, v in lm_state.items()}
    state.update({f"{heads[0]}.{k}": v for k, v in head_state.items()})
    missing, unexpected = mlm.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if ".pooler." not in k]
    if len(heads) != 1 or unexpected or [k for k in missing if "position_ids" not in k]:
        raise BadInputError(
            f"checkpoint does not match the run's masked LM (missing {missing[:3]}, unexpected {unexpected[:3]})",
            source,
        )
    config.architectures = [type(mlm).__name__]
    return config, state


def _graph_encoder_config(config: dict[str, Any], width: int) -> dict[str, Any]:
    model_cfg = config.get("model", {})
    return {
        "kind": model_cfg.get("graph_encoder"),
        "width": width,
        "hidden": model_cfg.get("gnn_hidden") or width,
        "num_layers": model_cfg.get("gnn_layers"),
        "heads": model_cfg.get("gnn_heads"),
        "dropout": model_cfg.get("dropout"),
        "attention_dropout": model_cfg.get("attention_dropout"),
        "name_pooling": model_cfg.get("name_pooling"),
    }


def evaluation_pooling(config: dict[str, Any]) -> str:
    """The pooling of the run's linking evaluation (its first, when it compared several)."""
    return str(((config.get("eval") or {}).get("pooling") or ["mean"])[0])


def write_sentence_transformers_files(directory: Path, pooling: str, width: int) -> None:
    """``modules.json`` and the module configs with which ``SentenceTransformer(directory)`` embeds
    a text exactly as bali's evaluation does: ``pooling`` over the last hidden states, L2-normalised,
    at most ``NAME_MAX_LENGTH`` tokens."""
    (directory / "modules.json").write_text(json.dumps(ST_MODULES, indent=2) + "\n", encoding="utf-8")
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": NAME_MAX_LENGTH, "do_lower_case": False}, indent=2) + "\n",
        encoding="utf-8",
    )
    pooling_config = {
        "word_embedding_dimension": width,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (directory / POOLING_DIR).mkdir()
    (directory / POOLING_DIR / "config.json").write_text(
        json.dumps(pooling_config, indent=2) + "\n", encoding="utf-8"
    )


def export_run(
    run_dir: str | Path, out_dir: str | Path, overwrite: bool = False, weights: dict[str, Any] | None = None
) -> Path:
    """Export a run to ``out_dir``: the LM (with its MLM head when it came from the checkpoint),
    the graph encoder and a model card; returns ``out_dir``.

    ``weights`` is the trained model's full state dict (the trainer passes what Accelerate gathered
    from every process); without it, the latest complete checkpoint is read. Needs nothing outside
    the run directory: the LM's config and tokenizer were saved in ``run_dir/base`` at the start.
    """
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    run = Path(run_dir)
    if not (run / CONFIG_FILE).is_file() or not (run / BASE_DIR).is_dir():
        raise BadInputError("not a `bali train` run directory (no config.yaml or base/)", run)
    checkpoint = latest_complete(run)
    if weights is None and checkpoint is None:
        raise BadInputError("run has no complete checkpoint to export", run)
    source = checkpoint if weights is None else run
    parts = _split_state(weights if weights is not None else _read_model_state(checkpoint))
    config = yaml.safe_load((run / CONFIG_FILE).read_text(encoding="utf-8"))
    if config.get("model", {}).get("mlm_head") == "checkpoint":
        lm_config, lm_state = _masked_lm_files(run, parts["lm"], parts["mlm_head"], source)
    else:
        lm_config, lm_state = _encoder_files(run, parts["lm"], source)
    graph_config = (
        _graph_encoder_config(config, int(lm_config.hidden_size)) if parts["graph_encoder"] else None
    )
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        lm_config.save_pretrained(tmp)
        # A masked LM's head may hold one tensor under two names (BERT's prediction bias): every
        # name gets its own copy, as safetensors stores no shared tensors.
        save_file(
            {k: v.clone().contiguous() for k, v in lm_state.items()},
            str(tmp / "model.safetensors"),
            metadata={"format": "pt"},
        )
        AutoTokenizer.from_pretrained(run / BASE_DIR, local_files_only=True).save_pretrained(tmp)
        write_sentence_transformers_files(tmp, evaluation_pooling(config), int(lm_config.hidden_size))
        if graph_config is not None:
            save_file(parts["graph_encoder"], str(tmp / GRAPH_ENCODER_WEIGHTS), metadata={"format": "pt"})
            (tmp / GRAPH_ENCODER_CONFIG).write_text(
                json.dumps(graph_config, indent=2) + "\n", encoding="utf-8"
            )
        write_model_card(run, tmp, checkpoint)
    return Path(out_dir)


def write_model_card(run_dir: str | Path, export_dir: str | Path, checkpoint: Path | None = None) -> Path:
    """(Re)write the export's README.md from the run: config, steps, data, KG and any results.json.

    The pipeline calls it after evaluation so the card lists the results without re-exporting weights.
    """
    run, export = Path(run_dir), Path(export_dir)
    checkpoint = checkpoint or latest_complete(run)
    config = yaml.safe_load((run / CONFIG_FILE).read_text(encoding="utf-8"))
    card = _model_card(
        config,
        (_read_json(checkpoint / STATE_FILE) if checkpoint else None) or {},
        _read_json(run / DATA_MANIFEST),
        _read_json(run / RESULTS),
        _read_json(export / GRAPH_ENCODER_CONFIG),
    )
    path = export / "README.md"
    tmp = path.with_name(".README.md.tmp")
    tmp.write_text(card, encoding="utf-8")
    tmp.replace(path)
    return path


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
