"""Mentions encoded in their sentence: the representation BALI trains, as a second linking protocol.

BALI aligns the mean of a mention's token states *in its sentence* with the concept's graph
embedding; zero-shot linking encodes the mention string *alone*. A model can improve the first and
not the second (benchmarks/budget.md), so ``bali eval linking --in-context`` adds rows in which each
PubTator mention is the mean of its tokens' last-layer states in the sentence that contains it
(no masking), searched against the same context-free dictionary vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bali.corpus.sentences import split_sentences
from bali.errors import BadInputError
from bali.evaluate.encode import Device, pad_batch, pool
from bali.evaluate.mentions import Mention

IN_CONTEXT = "in-context"


@dataclass(frozen=True)
class Context:
    """A mention's sentence and the mention's character span inside it."""

    sentence: str
    start: int
    end: int


def mention_contexts(mentions: Sequence[Mention], documents: dict[str, str], source: str) -> list[Context]:
    """The sentence(s) holding each mention; a mention across a boundary keeps both sentences."""
    spans_by_doc: dict[str, list[tuple[int, int]]] = {}
    contexts = []
    for m in mentions:
        text = documents.get(m.doc_id)
        if text is None or m.end > len(text) or m.start >= m.end:
            raise BadInputError(
                f"mention '{m.text}' ({m.doc_id} {m.start}-{m.end}) has no document text to take its "
                "sentence from; --in-context needs PubTator title and abstract lines",
                source,
                m.line,
            )
        spans = spans_by_doc.setdefault(m.doc_id, split_sentences(text))
        first = min((s for s, e in spans if e > m.start), default=0)
        last = max((e for s, e in spans if s < m.end), default=len(text))
        first, last = min(first, m.start), max(last, m.end)
        contexts.append(Context(text[first:last], m.start - first, m.end - first))
    return contexts


def _window(
    tokenizer: Any, context: Context, max_length: int
) -> tuple[list[int], list[int]] | tuple[None, None]:
    """Input ids (with the model's special tokens) and the mention's token positions in them.

    A sentence longer than ``max_length`` tokens keeps a window centred on the mention, between the
    special tokens the tokenizer puts around a sequence ([CLS] ... [SEP], <s> ... </s>).
    """
    encoded = tokenizer(
        context.sentence, return_offsets_mapping=True, return_special_tokens_mask=True, truncation=False
    )
    ids, offsets, special = encoded["input_ids"], encoded["offset_mapping"], encoded["special_tokens_mask"]
    head = next((i for i, flag in enumerate(special) if not flag), len(ids))
    tail = next((i for i in range(len(ids), head, -1) if not special[i - 1]), head)
    inside = [i for i in range(head, tail) if offsets[i][1] > context.start and offsets[i][0] < context.end]
    if not inside:
        return None, None
    room = max(max_length - head - (len(ids) - tail), 1)
    centre = (inside[0] + inside[-1]) // 2
    lo = max(head, min(centre - room // 2, tail - room))
    hi = min(lo + room, tail)
    window = ids[:head] + ids[lo:hi] + ids[tail:]
    return window, [i - lo + head for i in inside if lo <= i < hi]


def encode_in_context(
    model: Any,
    tokenizer: Any,
    contexts: Sequence[Context],
    max_length: int,
    batch_size: int,
    device: Device,
    desc: str = "mentions in context",
) -> np.ndarray:
    """L2-normalised ``[len(contexts), hidden]``: the mean of each mention's token states."""
    out = np.zeros((len(contexts), int(model.config.hidden_size)), dtype=np.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    model.to(device.name)
    with torch.inference_mode(), device.context():
        for lo in tqdm(
            range(0, len(contexts), batch_size), desc=desc, unit="batch", disable=None, leave=False
        ):
            windows = [_window(tokenizer, c, max_length) for c in contexts[lo : lo + batch_size]]
            input_ids, attention = pad_batch([w[0] or [pad_id] for w in windows], pad_id)
            mention_mask = torch.zeros_like(attention)
            for row, (_, positions) in enumerate(windows):
                mention_mask[row, positions or []] = 1
            hidden = model(
                input_ids=input_ids.to(device.name), attention_mask=attention.to(device.name)
            ).last_hidden_state.float()
            pooled = pool(hidden, mention_mask.to(hidden.device), "mean")  # over the mention's tokens
            out[lo : lo + len(windows)] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
    return out
