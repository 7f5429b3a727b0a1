"""MedQA-USMLE 4-option multiple choice, jsonl: ``question``, ``options`` {A..D}, ``answer_idx``.

Accepted file names per split: ``{split}.jsonl``, ``phrases_no_exclude_{split}.jsonl`` (the MedQA
release) and ``{split}_4options.jsonl``.
"""

from __future__ import annotations

from pathlib import Path

from bali.errors import BadInputError
from bali.evaluate.tasks.base import Example, Recipe, TaskData, TaskSpec, accuracy, read_splits
from bali.jsonlines import read_json_objects

LETTERS = ("A", "B", "C", "D")
NAMES = ("{split}.jsonl", "phrases_no_exclude_{split}.jsonl", "{split}_4options.jsonl")


def _read(path: Path) -> list[Example]:
    examples = []
    for line_no, item in read_json_objects(path):
        options = item.get("options")
        if not isinstance(options, dict) or set(options) != set(LETTERS) or "question" not in item:
            raise BadInputError("expected question, options A-D and answer_idx", path, line_no)
        if item.get("answer_idx") not in LETTERS:
            raise BadInputError(f"answer_idx must be one of {LETTERS}", path, line_no)
        examples.append(
            Example(
                str(item.get("realidx", line_no)),
                item["question"],
                None,
                LETTERS.index(item["answer_idx"]),
                tuple(str(options[k]) for k in LETTERS),
            )
        )
    return examples


def read(directory: Path) -> TaskData:
    """train/dev/test jsonl files."""
    return read_splits(directory, _read, NAMES)


SPECS = [
    TaskSpec(
        name="medqa",
        kind="multiple_choice",
        labels=list(LETTERS),
        metric=accuracy,
        metric_description="accuracy over 4 options (AutoModelForMultipleChoice, softmax over options)",
        main_metric="accuracy",
        reader=read,
        recipe=Recipe(batch_size=32, lr=2e-5, epochs=2, max_length=512),
    )
]
