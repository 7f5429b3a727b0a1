"""PubMedQA PQA-L: ``ori_pqal.json`` (1,000 labelled questions) and ``test_ground_truth.json`` (the
official 500 test ids with labels).

The other 500 questions are split into train/dev deterministically: ids sorted, shuffled with a
fixed seed, the first 10% are dev (the size of one of the official split script's 10 folds).
Input: ``question [SEP] " ".join(CONTEXTS)``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from bali.errors import BadInputError
from bali.evaluate.tasks.base import Example, Recipe, TaskData, TaskSpec, accuracy, label_index

LABELS = ["yes", "no", "maybe"]
DEV_FRACTION = 0.1
SPLIT_SEED = 0


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BadInputError(f"{path.name} is missing from the PubMedQA directory", path.parent)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"not valid JSON: {exc.msg}", path, exc.lineno) from exc
    if not isinstance(data, dict):
        raise BadInputError("expected a JSON object keyed by PMID", path, 1)
    return data


def read(directory: Path) -> TaskData:
    """Test = the official ids; train/dev = a seeded split of the remaining questions."""
    if not directory.is_dir():
        raise BadInputError("task data directory not found", directory)
    questions_path, truth_path = directory / "ori_pqal.json", directory / "test_ground_truth.json"
    questions, truth = _load_json(questions_path), _load_json(truth_path)

    def example(pmid: str, label: str, path: Path) -> Example:
        item = questions.get(pmid)
        if not isinstance(item, dict) or "QUESTION" not in item or "CONTEXTS" not in item:
            raise BadInputError(f"question {pmid} is missing or lacks QUESTION/CONTEXTS", questions_path)
        return Example(
            pmid, item["QUESTION"], " ".join(item["CONTEXTS"]), label_index(LABELS, label, path, 0)
        )

    test = [example(pmid, label, truth_path) for pmid, label in truth.items()]
    rest = sorted(set(questions) - set(truth))
    random.Random(SPLIT_SEED).shuffle(rest)
    n_dev = max(1, round(DEV_FRACTION * len(rest))) if rest else 0
    pool = [example(pmid, questions[pmid].get("final_decision", ""), questions_path) for pmid in rest]
    if len(pool) < 2:
        raise BadInputError(
            "the 'train' split is empty: ori_pqal.json has no question outside the test ids", directory
        )
    return TaskData(
        pool[n_dev:], pool[:n_dev], test, {"questions": str(questions_path), "test": str(truth_path)}
    )


SPECS = [
    TaskSpec(
        name="pubmedqa",
        kind="single_label",
        labels=LABELS,
        metric=accuracy,
        metric_description="accuracy over yes/no/maybe (softmax head; BALI's script uses BCE over one-hot labels)",
        main_metric="accuracy",
        reader=read,
        recipe=Recipe(batch_size=16, lr=1e-5, epochs=50, max_length=512, warmup_ratio=0.1, weight_decay=0.01),
    )
]
