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
from yaml.reader import ReaderError

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


def _node_line(root: yaml.Node | None, loc: tuple[str, ...]) -> tuple[int | None, bool]:
    """1-based line of the deepest YAML key on the path ``loc``, and whether the whole path is there."""
    line = None
    node = root
    for depth, part in enumerate(loc):
        if not isinstance(node, yaml.MappingNode):
            return line, False
        match = next((pair for pair in node.value if str(pair[0].value) == part), None)
        if match is None:
            return line, False
        line = match[0].start_mark.line + 1
        node = match[1]
        if depth == len(loc) - 1:
            return line, True
    return line, not loc


def _yaml_error_line(exc: yaml.YAMLError, text: str) -> int | None:
    """1-based line of a YAML error: its mark, or the character position of a reader error."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return mark.line + 1
    if isinstance(exc, ReaderError):
        return text.count("\n", 0, exc.position) + 1
    return None


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """The YAML mapping of a config file and its node tree (for line numbers); bad files are bad input."""
    if not path.is_file():
        raise BadInputError("config file not found" if not path.exists() else "config is not a file", path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"invalid UTF-8 at byte {exc.start}", path, raw.count(b"\n", 0, exc.start) + 1
        ) from exc
    try:
        loader = yaml.SafeLoader(text)  # rejects non-printable characters already
        try:
            root = loader.get_single_node()
            loaded = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise BadInputError(f"not valid YAML: {exc}", path, _yaml_error_line(exc, text)) from exc
    except RecursionError as exc:
        raise BadInputError("not valid YAML: nested too deeply", path) from exc
    if loaded is None:
        return {}, root
    _check_keys(root, path)
    if not isinstance(loaded, dict):
        raise BadInputError("expected a mapping of sections at the top level", path, 1)
    return loaded, root


_KEY_TAGS = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:merge")  # a name, or ``<<: *anchor``


def _check_keys(root: yaml.Node, path: Path) -> None:
    """Every mapping key is a plain string (``? x``, ``1:`` or ``null:`` keys name no setting)."""
    seen: set[int] = set()
    stack = [root]
    while stack:  # iterative: aliases may nest deeper than the recursion limit, or loop
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if not (isinstance(key, yaml.ScalarNode) and key.tag in _KEY_TAGS):
                    raise BadInputError(
                        "expected a setting name (a string) as key", path, key.start_mark.line + 1
                    )
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _validation_error(
    exc: ValidationError, path: Path | None, root: yaml.Node | None, overrides: list[str]
) -> BadInputError:
    """One message listing every problem, each against the ``--set`` item or YAML line it came from."""
    set_items = {tuple(parse_override(item)[0]): item for item in overrides}
    lines: list[str] = []
    first_line: int | None = None
    from_file = False
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        line, in_file = _node_line(root, loc)
        # A --set item is to blame for errors inside the value it set, and for a key it created.
        item = next(
            (v for k, v in set_items.items() if loc[: len(k)] == k or (k[: len(loc)] == loc and not in_file)),
            None,
        )
        if item is not None:
            lines.append(f"  {'.'.join(loc)} (--set {item}): {msg}")
            continue
        from_file = path is not None
        if line is not None:
            first_line = line if first_line is None else min(first_line, line)
        where = f" (line {line})" if line is not None else ""
        lines.append(f"  {'.'.join(loc)}{where}: {msg}")
    # The file is the error's path (printed before the message); each line names its own source.
    message = "invalid configuration:\n" + "\n".join(lines)
    return BadInputError(message, path if from_file else None, first_line)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> BaliConfig:
    """Load a YAML config (or the defaults), apply overrides, validate.

    Errors name the YAML line of each bad key, or the ``--set`` item that supplied the value.
    Relative paths inside the YAML stay as written; stages resolve them against the working directory.
    """
    overrides = overrides or []
    data: dict[str, Any] = {}
    root: yaml.Node | None = None
    if path is not None:
        path = Path(path)
        data, root = _read_yaml(path)
    apply_overrides(data, overrides)
    try:
        return BaliConfig.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, path, root, overrides) from exc


def dump_config(config: BaliConfig) -> str:
    """The resolved config as YAML (written into every run directory)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
