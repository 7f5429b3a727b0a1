"""Typed configuration: one pydantic model per stage, YAML presets and dotted ``--set`` overrides.

Each stage owns its settings class in ``bali/<stage>/config.py``; this module only composes them, so
a stage can grow options without touching the others. Unknown keys and impossible values are
rejected before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bali.corpus.config import CorpusConfig
from bali.data.config import DataConfig
from bali.errors import BadInputError
from bali.evaluate.config import EvalConfig
from bali.kg.config import KGConfig
from bali.model.config import ModelConfig
from bali.train.config import TrainConfig


class BaliConfig(BaseModel):
    """The whole pipeline: where artefacts go and the settings of every stage."""

    model_config = ConfigDict(extra="forbid")

    out_dir: str = "runs/bali"
    kg: KGConfig = KGConfig()
    corpus: CorpusConfig = CorpusConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value (so ``3`` is an int)."""
    if "=" not in item:
        raise BadInputError(f"--set expects key=value, got '{item}'")
    key, raw = item.split("=", 1)
    if not key.strip():
        raise BadInputError(f"--set expects key=value, got '{item}'")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides to a nested dict (in place) and return it."""
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BadInputError(f"--set {item}: '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return data


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {loc}: {msg}")
    return f"invalid configuration in {source}:\n" + "\n".join(lines)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> BaliConfig:
    """Load a YAML config (or the defaults), apply overrides, validate.

    Relative paths inside the YAML stay as written; stages resolve them against the working directory.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.exists():
            raise BadInputError("config file not found", path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise BadInputError(
                f"not valid YAML: {exc}", path, None if mark is None else mark.line + 1
            ) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise BadInputError("expected a mapping of sections at the top level", path, 1)
        data = loaded
    apply_overrides(data, overrides or [])
    try:
        return BaliConfig.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(_format_validation_error(exc, source)) from exc


def dump_config(config: BaliConfig) -> str:
    """The resolved config as YAML (written into every run directory)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
