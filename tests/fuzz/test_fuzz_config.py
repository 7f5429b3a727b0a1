"""Fuzzing the configuration: YAML files and ``--set`` items."""

from __future__ import annotations

from fuzz_helpers import check_outcome, fuzz_settings, fuzzed_bytes, workspace
from hypothesis import event, given
from hypothesis import strategies as st

from bali.config import load_config
from bali.errors import BadInputError

YAML = b"""# a run
out_dir: runs/demo
kg:
  source: builtin
  holdout_synonyms: 1000
corpus:
  builtin: true
data:
  neighbours: 3
model:
  graph_encoder: gat
  center_embeddings: true
train:
  max_steps: 200
  batch_size: 16
eval:
  pooling: [mean]
"""
YAML_TOKENS = (b"  ", b": ", b"- ", b"&a ", b"*a", b"!!python/object ", b"<<: ", b"? ", b"---\n", b"'", b"~")
SET_KEYS = (
    "train.max_steps",
    "train",
    "data.neighbours",
    "model.loss",
    "eval.pooling",
    "bogus",
    "kg.source.x",
)


@fuzz_settings(150)
@given(fuzzed_bytes(YAML, YAML_TOKENS))
def test_fuzz_yaml_config(data: bytes) -> None:
    with workspace() as root:
        path = root / "run.yaml"
        path.write_bytes(data)
        check_outcome(lambda: load_config(path), [path])


@fuzz_settings(150)
@given(
    st.one_of(
        st.text(max_size=40),
        st.tuples(st.sampled_from(SET_KEYS), st.text(max_size=20) | st.integers(-5, 500).map(str)).map(
            "=".join
        ),
    )
)
def test_fuzz_set_items(item: str) -> None:
    """A ``--set`` item is not a file: a rejection names the item instead of a path and line."""
    try:
        load_config(None, [item])
    except BadInputError as exc:
        event("rejected: BadInputError")
        assert exc.path is None and exc.line is None
        assert "--set" in str(exc), exc
    else:
        event("parsed")
