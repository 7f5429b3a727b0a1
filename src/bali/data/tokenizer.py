"""What ``bali data build`` needs from the tokenizer, checked and read once.

The sentence encoder and the name tokeniser share the fast tokenizer's Rust backend, and the
manifest records the special tokens so that the collator never has to load the tokenizer.
"""

from __future__ import annotations

from typing import Any

from bali.errors import BadInputError


def special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Special tokens the tokenizer puts before and after a single sequence ([CLS] / [SEP] for BERT).

    Sentences are tokenised without special tokens and cut by us (so a mention cut by truncation can
    be detected and dropped whole); the template is then added back exactly as the model expects.
    """
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare) :])
    raise BadInputError("cannot locate the text inside the tokenizer's special-token template")


def backend_tokenizer(tokenizer: Any, max_length: int | None) -> Any:
    """A private copy of the fast tokenizer's Rust backend, truncating at ``max_length`` or not at all.

    ``tokenizer(texts)`` runs exactly this backend and then converts every encoding into Python
    dicts, which costs about a quarter of the build time; reading ``ids``/``offsets`` straight from
    the encodings gives identical tokens. A copy, so the caller's tokenizer state is left alone.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    if max_length is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(max_length=max_length)
    backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return backend


def check_offsets(tokenizer: Any, model: str) -> None:
    """Mention alignment needs character offsets: refuse a tokenizer that cannot produce them."""
    if not getattr(tokenizer, "is_fast", False):
        raise BadInputError(
            f"the tokenizer of '{model}' has no offset mapping (not a fast tokenizer); "
            "mention tokens cannot be aligned"
        )
    try:
        probe = tokenizer(["ab cd"], add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise BadInputError(f"the tokenizer of '{model}' cannot return an offset mapping: {exc}") from exc
    if "offset_mapping" not in probe:
        raise BadInputError(f"the tokenizer of '{model}' returned no offset mapping")


def special_tokens(tokenizer: Any, prefix: list[int], suffix: list[int]) -> dict[str, Any]:
    """What the collator needs from the tokenizer, recorded so it never has to load it."""
    return {
        "prefix": prefix,
        "suffix": suffix,
        "cls_token_id": tokenizer.cls_token_id if tokenizer.cls_token_id is not None else prefix[0],
        "sep_token_id": tokenizer.sep_token_id if tokenizer.sep_token_id is not None else suffix[-1],
        "pad_token_id": tokenizer.pad_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "special_ids": sorted(set(tokenizer.all_special_ids)),
        "vocab_size": len(tokenizer),
    }
