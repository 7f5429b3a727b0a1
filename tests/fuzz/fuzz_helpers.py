"""The fuzz suite's shared pieces: byte strategies grown from valid seed files, and the property.

Property, for every reader: any byte string either parses or raises :class:`BadInputError` naming
one of the inputs and a line inside it (no line only for whole-file problems, such as an empty file);
never another exception; and a stage that fails leaves no output directory, temporary directory or
manifest behind. Every test is bounded (``max_examples``) and derandomized, so CI runs the same
examples every time; ``pytest --hypothesis-show-statistics tests/fuzz`` prints, per reader, how many
examples were tried and how many parsed or were rejected.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from bali.errors import BadInputError

# Messages about a whole file or input, where no line number makes sense.
WHOLE_FILE_PROBLEMS = (
    "empty file",
    "is empty",
    "no documents were read",
    "no PubTator documents",
    "no .concept mention file",
    "no mention lines",
    "nested too deeply",
    "no concepts left",
    "would be empty",
)

# Byte sequences that mean something to at least one format, so mutations reach deeper code paths.
TOKENS: tuple[bytes, ...] = (
    b"\n",
    b"\r\n",
    b"\n\n",
    b"|",
    b"||",
    b"\t",
    b":",
    b",",
    b'"',
    b"\\",
    b"\\n",
    b"\\ud800",
    b"\\ud83d\\ude00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\x00",
    b"\xef\xbb\xbf",
    b" ",
    b"-1",
    b"0",
    b"7",
    b"\xd9\xa3",  # ARABIC-INDIC DIGIT THREE: str.isdigit() is true, int() accepts it
    b"\xc2\xb2",  # SUPERSCRIPT TWO: str.isdigit() is true, int() rejects it
    b"99999999999999999999",
    b"1e999",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b"[",
    b"{",
    b"#",
    b"!",
    b"C0000001",
    b"MESH:D000001",
)

SEPARATORS = (b"\n", b"\t", b"|", b",", b":", b" ", b'"')

# The default stops at the first bad line; a tolerant budget lets the reader carry on past bad
# lines, which exercises the recovery paths (the RRF slow pass, partial stanzas, skipped records).
MAX_ERRORS = st.sampled_from((0, 1000))


def fuzz_settings(max_examples: int) -> settings:
    """Bounded, deterministic settings (the suite's time budget is split by ``max_examples``).

    ``BALI_FUZZ_SCALE=N`` multiplies every budget, for a deeper run by hand than CI can afford.
    """
    return settings(
        max_examples=max_examples * int(os.environ.get("BALI_FUZZ_SCALE", "1")),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def _mutations(draw: st.DrawFn, seed: bytes, tokens: st.SearchStrategy[bytes]) -> bytes:
    """The seed after 1-5 edits: insert, delete, replace, truncate, duplicate a line, or replace a
    whole field (the text between two separators) by a token."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(("insert", "delete", "replace", "truncate", "duplicate", "field", "field")))
        if op == "field":
            start = max(data.rfind(sep, 0, pos) for sep in SEPARATORS) + 1
            ends = [end for end in (data.find(sep, pos) for sep in SEPARATORS) if end >= 0]
            data[start : min(ends, default=len(data))] = draw(tokens)
        elif op == "insert":
            data[pos:pos] = draw(tokens | st.binary(min_size=1, max_size=6))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "replace":
            data[pos : pos + 1] = draw(tokens | st.binary(min_size=1, max_size=1))
        elif op == "truncate":
            del data[pos:]
        else:
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end + 1
            data[end:end] = data[start:end]
    return bytes(data)


def fuzzed_bytes(seed: bytes, extra_tokens: Sequence[bytes] = ()) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, strings of format tokens, and (most often) mutations of a valid file."""
    tokens = st.sampled_from((*TOKENS, *extra_tokens))
    return st.one_of(
        _mutations(seed, tokens),
        st.binary(max_size=300),
        st.lists(tokens | st.binary(max_size=4), max_size=40).map(b"".join),
        _mutations(seed, tokens),
    )


@contextmanager
def workspace() -> Iterator[Path]:
    """A fresh directory per example (pytest's ``tmp_path`` is one per test, not per example)."""
    with tempfile.TemporaryDirectory(prefix="bali-fuzz-") as directory:
        yield Path(directory)


def _line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") + 1 if path.is_file() else 0


def check_outcome(run: Callable[[], object], inputs: Sequence[Path], out: Path | None = None) -> None:
    """Run a reader or stage and assert the property; record the outcome for the statistics.

    ``inputs`` are the files (or directories) a message may name; ``out`` is the stage's output
    directory, which must hold a manifest after success and must not exist (nor any temporary
    sibling) after a rejection.
    """
    try:
        run()
    except BadInputError as exc:
        event("rejected: BadInputError")
        assert exc.path is not None, f"no file named: {exc}"
        assert Path(exc.path) in inputs, f"names {exc.path}, not an input: {exc}"
        if exc.line is None:
            assert any(p in exc.detail for p in WHOLE_FILE_PROBLEMS), f"no line: {exc}"
        else:
            assert 1 <= exc.line <= max(_line_count(Path(exc.path)), 1), f"line out of range: {exc}"
        if out is not None:
            assert not out.parent.exists() or list(out.parent.iterdir()) == [], "debris after a rejection"
        return
    event("parsed")
    if out is not None:
        assert (out / "manifest.json").is_file()
