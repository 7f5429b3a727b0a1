"""Downstream task readers, one module per format; :func:`get_task` finds a task by name.

Each module defines ``SPECS: list[TaskSpec]``; a new task is a new module listed in ``MODULES``.
"""

from __future__ import annotations

import importlib

from bali.errors import BadInputError
from bali.evaluate.tasks.base import TaskSpec

MODULES = ("hoc", "blurb_relation", "biosses", "bioasq", "pubmedqa", "medqa")


def all_tasks() -> dict[str, TaskSpec]:
    """Every registered task by lower-case name."""
    tasks: dict[str, TaskSpec] = {}
    for module in MODULES:
        for spec in importlib.import_module(f"bali.evaluate.tasks.{module}").SPECS:
            tasks[spec.name.lower()] = spec
    return tasks


def get_task(name: str) -> TaskSpec:
    """The task called ``name`` (case-insensitive); an unknown name is bad input."""
    tasks = all_tasks()
    try:
        return tasks[name.lower()]
    except KeyError:
        raise BadInputError(f"unknown task '{name}' (known: {', '.join(sorted(tasks))})") from None
